/* The one ABI between strata's BPF programs (bpf/<probe>.bpf.c) and the agent
 * (receivers/ebpf/ebpf_decode.c): every record the kernel side writes into the ring buffer.
 *
 * Rules: fixed-width fields only, naturally aligned, no pointers; every event starts with
 * struct st_ev_header whose `size` is the whole record, so that the reader can check it and
 * skip kinds it does not know; variable-length data (paths, argv) follows the fixed part and
 * its lengths are in the fixed part. Changing a struct means bumping ST_EV_ABI_VERSION.
 *
 * Include <linux/types.h> (user space) or vmlinux.h (BPF) before this file. */
#ifndef STRATA_BPF_EVENTS_H
#define STRATA_BPF_EVENTS_H

#define ST_EV_ABI_VERSION 3

#define ST_TASK_COMM_LEN 16
#define ST_PATH_MAX 256        /* executable path kept per exec */
#define ST_ARGS_MAX 4096       /* upper bound of the argv bytes per exec (config: max_args_bytes) */

enum st_ev_type {
        ST_EV_FORK = 1,  /* a new process (not a thread) */
        ST_EV_EXEC = 2,
        ST_EV_EXIT = 3,  /* the last thread of a process exited */
        ST_EV_CONNECT = 4, /* an outbound TCP connection was established */
        ST_EV_ACCEPT = 5,  /* an inbound TCP connection was accepted */
        ST_EV_CLOSE = 6,   /* a TCP connection seen by CONNECT or ACCEPT was closed */
        ST_EV_CODE = 7,    /* a file mapped executable, or a package file opened */
        ST_EV_DNS = 8,     /* a UDP datagram sent to port 53: a DNS query */
        ST_EV_TYPE_MAX,
};

/* Who did it: the task current when the event fired (for FORK the parent). */
struct st_ev_header {
        __u16 type;           /* enum st_ev_type */
        __u16 size;           /* bytes of the whole record, header included */
        __u32 cpu;
        __u64 ts_ns;          /* CLOCK_BOOTTIME (bpf_ktime_get_boot_ns) */
        __u32 pid;            /* tgid */
        __u32 tid;
        __u64 start_ns;       /* the process's start, CLOCK_BOOTTIME ns (task->group_leader->start_boottime):
                               * with pid, the key that pid reuse cannot mix up */
        __u64 cgroup_id;      /* cgroup v2 id (0 when the process is in no v2 cgroup) */
        __u32 uid, gid;
        char comm[ST_TASK_COMM_LEN];
};

struct st_ev_fork {
        struct st_ev_header h;
        __u32 child_pid;
        __u32 _pad;
        __u64 child_start_ns;
};

/* Followed by path_len bytes of executable path (no NUL), then args_len bytes of argv
 * (each argument NUL-terminated, as in /proc/PID/cmdline). */
struct st_ev_exec {
        struct st_ev_header h;
        __u32 ppid;
        __u32 old_pid;        /* the pid before exec (differs when a non-leader thread exec'd) */
        __u16 path_len;
        __u16 args_len;
        __u8 path_truncated;
        __u8 args_truncated;
        __u8 script;          /* path is a script; the file exec'd (below) is its interpreter */
        __u8 _pad;
        __u64 exe_inode;      /* the file exec'd: the path above is only what exec was given */
        __u32 exe_dev;        /* its st_dev, kernel encoding (major << 20 | minor) */
        __u32 _pad2;
        __u64 memcg_id;       /* the id of its cgroup in the memory controller's v1 hierarchy
                               * on hybrid hosts, where the v2 id alone names no container
                               * (0: no v1 memory hierarchy) */
};

struct st_ev_exit {
        struct st_ev_header h;
        __u32 ppid;
        __s32 exit_code;      /* as wait(2) gives it: (status << 8) | signal */
};

enum st_conn_dir { ST_CONN_OUTBOUND = 1, ST_CONN_INBOUND = 2 };

/* CONNECT, ACCEPT, CLOSE. The header is the socket's owner — the process that connected or
 * accepted, captured in its own context — not whichever task the kernel ran at the time (a
 * handshake completes in softirq). ts_ns is the event's time. */
struct st_ev_conn {
        struct st_ev_header h;
        __u16 family;         /* AF_INET, AF_INET6 */
        __u8 direction;       /* enum st_conn_dir */
        __u8 _pad;
        __u16 local_port, remote_port; /* host byte order */
        __u8 local_addr[16], remote_addr[16]; /* network order; IPv4 in the first 4 bytes */
        __u64 bytes_sent;     /* CLOSE: payload bytes the peer acknowledged */
        __u64 bytes_received; /* CLOSE: payload bytes received */
        __u64 duration_ns;    /* CLOSE: since CONNECT/ACCEPT */
};

#define ST_DNS_PAYLOAD_MAX 300 /* the query's first bytes: header, question (a name is <= 255) */

/* A DNS query as it left: where to, and its first bytes, parsed in user space (ebpf_decode.c). */
struct st_ev_dns {
        struct st_ev_header h;
        __u16 family;         /* AF_INET, AF_INET6 */
        __u16 remote_port;    /* host order: 53 */
        __u16 payload_len;    /* bytes of payload that are the datagram's (<= ST_DNS_PAYLOAD_MAX) */
        __u16 _pad;
        __u8 remote_addr[16]; /* network order; IPv4 in the first 4 bytes */
        __u8 payload[ST_DNS_PAYLOAD_MAX];
        __u8 _pad2[4];
};

/* Connections to strata's own TCP ports, so that receivers can tell which local process sent
 * a request: net.bpf.c fills the `peer_conns` map (not the ring buffer: a receiver looks a
 * connection up as its first request arrives, before any batched event would be read), for
 * the ports user space put in `own_ports`. Host byte order ports; addresses as in st_ev_conn. */
struct st_peer_key {
        __u16 family;
        __u16 client_port;
        __u16 server_port;
        __u16 _pad;
        __u8 client_addr[16];
};

struct st_peer_owner {
        __u32 pid, tid, uid, _pad;
        __u64 start_ns, cgroup_id;
};

#define ST_MAX_OWN_PORTS 16

enum st_code_kind { ST_CODE_MMAP_EXEC = 1, ST_CODE_OPEN = 2 };

#define ST_CODE_PATH_MAX 2048 /* bytes of path components kept per code event */

/* Followed by path_len bytes: the path's components from the file up to the root of the
 * mount tree, each NUL-terminated (the reader joins them in reverse with '/'). The path is the
 * file's in the mount namespace it was opened in (a container's file shows its path there). */
struct st_ev_code {
        struct st_ev_header h;
        __u8 kind;            /* enum st_code_kind */
        __u8 path_truncated;
        __u16 path_len;
        __u32 _pad;
        __u64 inode;
        __u32 dev;            /* st_dev of the file (kernel encoding) */
        __u32 _pad2;
};

/* Losses, per CPU (map `lost`): the ring buffer was full when an event of that CPU wanted in. */
struct st_ev_loss {
        __u64 count;
        __u64 first_ns, last_ns; /* CLOCK_BOOTTIME of the first and last loss since start */
};

#endif
