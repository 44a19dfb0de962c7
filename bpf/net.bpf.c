// SPDX-License-Identifier: GPL-2.0
/* TCP connections: outbound connect, inbound accept, and close with bytes and duration, each
 * attributed to the process that owns the socket.
 *
 * A handshake completes in softirq, where `current` is whoever the CPU was running; so the
 * owner is captured where it is certain — connect() moving the socket CLOSE → SYN_SENT runs in
 * the connecting task, accept() returns in the accepting task — and kept per socket in `socks`
 * until the socket closes.
 *
 * Hooks: sock:inet_sock_set_state (tp_btf, else raw_tp); accept's return through
 * syscalls:sys_exit_accept{,4} (tp: needs tracefs, fires for accept only), else raw_tp/sys_exit
 * (fires for every syscall of the host: costlier, the last resort). */
#include "common.bpf.h"
#include "syscalls.bpf.h"

/* 1 in sample_every connections is followed (decided once per socket, at connect or accept):
 * for hosts whose connection churn is too hot to report one by one. */
const volatile __u32 sample_every = 1;

static __always_inline bool sampled_out(void) {
        return sample_every > 1 && bpf_get_prandom_u32() % sample_every != 0;
}

#define AF_INET 2
#define AF_INET6 10
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_FIN_WAIT1 4
#define TCP_CLOSE 7
#define TCP_LAST_ACK 9
#define SOCK_DONE 1 /* enum sock_flags: the peer's FIN arrived (tcp_fin) */
#define IPPROTO_TCP 6
#define RCV_SHUTDOWN 1
#define SEND_SHUTDOWN 2

struct sock_owner {
        struct st_ev_header owner;
        __u64 since_ns;      /* established or accepted */
        __u8 direction;
        __u8 reported;       /* 1: CONNECT/ACCEPT sent; 2: never (followed for attribution only) */
        __u8 fin_sent;       /* we sent a FIN: the socket went through FIN_WAIT1 or LAST_ACK */
        __u8 to_own_port;    /* a connection to strata: recorded in peer_conns once established */
        /* the endpoints as they were when the connection was up: at TCP_CLOSE the local port
         * may already be released (inet_put_port) */
        __u16 family, local_port, remote_port;
        __u8 local_addr[16], remote_addr[16];
};

struct {
        __uint(type, BPF_MAP_TYPE_LRU_HASH);
        __uint(max_entries, 65536);
        __type(key, __u64); /* struct sock * */
        __type(value, struct sock_owner);
} socks SEC(".maps");

/* strata's own listening ports (host order) → 1, and who connected to them (events.h) */
struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, ST_MAX_OWN_PORTS);
        __type(key, __u16);
        __type(value, __u8);
} own_ports SEC(".maps");

/* Not removed at close: a request can be read after its sender's socket is gone (a client
 * that sends and closes). A new connection from the same client address and port overwrites
 * its entry before it can send anything; LRU bounds the rest. */
struct {
        __uint(type, BPF_MAP_TYPE_LRU_HASH);
        __uint(max_entries, 16384);
        __type(key, struct st_peer_key);
        __type(value, struct st_peer_owner);
} peer_conns SEC(".maps");

/* How many ports own_ports holds: 0 spares connect() the lookup. Written by user space. */
volatile __u32 n_own_ports;

/* scratch for building a map value without a large stack frame */
struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __uint(max_entries, 1);
        __type(key, __u32);
        __type(value, struct sock_owner);
} owner_buf SEC(".maps");

/* A field of a struct sock: a plain load where the program is BTF-typed (tp_btf: the
 * verifier turns it into a guarded load), a probe-read helper call otherwise (raw_tp, tp).
 * `btf` is a constant at every call site, so each program keeps one of the two. The hot path
 * of this file runs on every TCP state change of the host: a helper call is ~100 ns on our
 * VMs, a load a few. */
#define SK(btf, sk, field) ((btf) ? (sk)->field : BPF_CORE_READ(sk, field))

static __always_inline void read_endpoints(struct sock_owner *o, const struct sock *sk, bool btf) {
        o->family = SK(btf, sk, __sk_common.skc_family);
        o->local_port = SK(btf, sk, __sk_common.skc_num);
        o->remote_port = __builtin_bswap16(SK(btf, sk, __sk_common.skc_dport));
        __builtin_memset(o->local_addr, 0, sizeof(o->local_addr));
        __builtin_memset(o->remote_addr, 0, sizeof(o->remote_addr));
        if (o->family == AF_INET) {
                __u32 l = SK(btf, sk, __sk_common.skc_rcv_saddr), r = SK(btf, sk, __sk_common.skc_daddr);
                __builtin_memcpy(o->local_addr, &l, 4);
                __builtin_memcpy(o->remote_addr, &r, 4);
        } else if (btf) {
                for (int i = 0; i < 16; i++) {
                        o->local_addr[i] = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8[i];
                        o->remote_addr[i] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr8[i];
                }
        } else {
                BPF_CORE_READ_INTO(&o->local_addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
                BPF_CORE_READ_INTO(&o->remote_addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
        }
}

static __always_inline void emit_conn(const struct sock *sk, struct sock_owner *o, __u16 type, __u64 now, bool btf) {
        struct st_ev_conn ev = {};
        ev.h = o->owner;
        ev.h.type = type;
        ev.h.size = sizeof(ev);
        ev.h.ts_ns = now;
        ev.h.cpu = bpf_get_smp_processor_id();
        ev.direction = o->direction;
        ev.family = o->family;
        ev.local_port = o->local_port;
        ev.remote_port = o->remote_port;
        __builtin_memcpy(ev.local_addr, o->local_addr, sizeof(ev.local_addr));
        __builtin_memcpy(ev.remote_addr, o->remote_addr, sizeof(ev.remote_addr));
        if (type == ST_EV_CLOSE) {
                /* bytes_acked and bytes_received count sequence space: payload plus the SYN
                 * (ours, when we connected) and each FIN; take those out to report payload.
                 * Our FIN counts when we sent one and it was acked; theirs when it arrived
                 * (SOCK_DONE). sk_shutdown would not do: close() sets it without any FIN. */
                __u64 acked, received, ours = o->direction == ST_CONN_OUTBOUND, theirs;
                if (btf) {
                        struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *) sk);
                        if (!tp)
                                return;
                        acked = tp->bytes_acked;
                        received = tp->bytes_received;
                        ours += o->fin_sent && tp->snd_una == tp->write_seq;
                } else {
                        const struct tcp_sock *tp = (const struct tcp_sock *) sk;
                        acked = BPF_CORE_READ(tp, bytes_acked);
                        received = BPF_CORE_READ(tp, bytes_received);
                        ours += o->fin_sent && BPF_CORE_READ(tp, snd_una) == BPF_CORE_READ(tp, write_seq);
                }
                theirs = (SK(btf, sk, __sk_common.skc_flags) >> SOCK_DONE) & 1;
                ev.bytes_sent = acked > ours ? acked - ours : 0;
                ev.bytes_received = received > theirs ? received - theirs : 0;
                ev.duration_ns = o->since_ns && now > o->since_ns ? now - o->since_ns : 0;
        }
        st_emit(&ev, sizeof(ev), now);
}

static __always_inline bool v4mapped(const __u8 *a) {
        for (int i = 0; i < 10; i++)
                if (a[i])
                        return false;
        return a[10] == 0xff && a[11] == 0xff;
}

/* A connection to strata on this host: to a loopback address, or to the host's own address
 * (a client port may be shared by connections to other hosts' same port: those are not
 * strata's, and must not take its entry). */
static __always_inline bool to_this_host(const struct sock_owner *o) {
        const __u8 *r = o->remote_addr;
        if (o->family == AF_INET || v4mapped(r)) {
                const __u8 *r4 = o->family == AF_INET ? r : r + 12;
                const __u8 *l4 = o->family == AF_INET ? o->local_addr : o->local_addr + 12;
                return r4[0] == 127 || (r4[0] == l4[0] && r4[1] == l4[1] && r4[2] == l4[2] && r4[3] == l4[3]);
        }
        bool loopback = r[15] == 1, same = true;
        for (int i = 0; i < 15; i++)
                loopback = loopback && r[i] == 0;
        for (int i = 0; i < 16; i++)
                same = same && r[i] == o->local_addr[i];
        return loopback || same;
}

static __always_inline void record_peer(const struct sock_owner *o) {
        struct st_peer_key k = {};
        struct st_peer_owner v = {};
        if (!to_this_host(o))
                return;
        k.family = o->family;
        k.client_port = o->local_port;
        k.server_port = o->remote_port;
        if (o->family == AF_INET6 && v4mapped(o->local_addr)) {
                /* an IPv6 socket talking IPv4 (Java, .NET): receivers see an IPv4 client */
                k.family = AF_INET;
                __builtin_memcpy(k.client_addr, o->local_addr + 12, 4);
        } else
                __builtin_memcpy(k.client_addr, o->local_addr, sizeof(k.client_addr));
        v.pid = o->owner.pid;
        v.tid = o->owner.tid;
        v.uid = o->owner.uid;
        v.start_ns = o->owner.start_ns;
        v.cgroup_id = o->owner.cgroup_id;
        bpf_map_update_elem(&peer_conns, &k, &v, BPF_ANY);
}

static __always_inline int on_state(const struct sock *sk, int oldstate, int newstate, bool btf) {
        __u64 key = (__u64) sk, now;
        struct sock_owner *o;
        __u32 zero = 0;

        __u16 family = SK(btf, sk, __sk_common.skc_family);
        if ((family != AF_INET && family != AF_INET6) || SK(btf, sk, sk_protocol) != IPPROTO_TCP)
                return 0; /* MPTCP's parent sockets pass here too, and are no tcp_sock */
        if (oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT) {
                /* connect(): the caller's context. A socket struct is reused memory: whatever an
                 * earlier socket at this address left is not this one's, followed or not. */
                bpf_map_delete_elem(&socks, &key);
                /* the destination is set before connect() changes the state (not the source
                 * port: that is chosen after) */
                __u16 dport = __builtin_bswap16(SK(btf, sk, __sk_common.skc_dport));
                bool own = n_own_ports && bpf_map_lookup_elem(&own_ports, &dport);
                bool wanted = st_wanted() && !sampled_out();
                if (!wanted && !own)
                        return 0;
                o = bpf_map_lookup_elem(&owner_buf, &zero);
                if (!o)
                        return 0;
                now = bpf_ktime_get_boot_ns();
                st_fill_header_x(&o->owner, 0, 0, now, btf);
                o->since_ns = 0;
                o->direction = ST_CONN_OUTBOUND;
                /* followed for attribution only (filtered or sampled out): reported = 2
                 * keeps it from ever being reported */
                o->reported = wanted ? 0 : 2;
                o->fin_sent = 0;
                o->to_own_port = own;
                bpf_map_update_elem(&socks, &key, o, BPF_ANY);
                return 0;
        }
        o = bpf_map_lookup_elem(&socks, &key);
        if (!o)
                return 0; /* not ours: unfiltered out, or older than strata */
        now = bpf_ktime_get_boot_ns();
        if (newstate == TCP_ESTABLISHED && o->direction == ST_CONN_OUTBOUND && o->reported != 1) {
                o->since_ns = now;
                read_endpoints(o, sk, btf);
                if (o->to_own_port)
                        record_peer(o);
                if (!o->reported) {
                        o->reported = 1;
                        emit_conn(sk, o, ST_EV_CONNECT, now, btf);
                }
        } else if (newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK) {
                o->fin_sent = 1;
        } else if (newstate == TCP_CLOSE) {
                /* a failed connect ends here too. Whoever deletes the entry reports the close,
                 * so that a close racing an accept (below) is reported once. */
                struct sock_owner copy = *o;
                if (bpf_map_delete_elem(&socks, &key) == 0 && copy.reported == 1)
                        emit_conn(sk, &copy, ST_EV_CLOSE, now, btf);
        }
        return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(state_btf, const struct sock *sk, const int oldstate, const int newstate) {
        return on_state(sk, oldstate, newstate, true);
}
SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(state_raw, const struct sock *sk, const int oldstate, const int newstate) {
        return on_state(sk, oldstate, newstate, false);
}

/* The struct sock behind a descriptor of the current task, or NULL. cast: the file, the
 * socket and the sock through bpf_rdonly_cast (st_cast), and plain loads (the accept hook was
 * 1.4 µs a run with a probe read for each). */
static __always_inline struct sock *fd_sock(long fd, bool cast) {
        struct file *f = st_fd_file_x(fd, cast);
        if (!f)
                return NULL;
        if (cast) {
                void *priv = st_cast(f, struct file)->private_data;
                return priv ? st_cast(priv, struct socket)->sk : NULL;
        }
        struct socket *sock = BPF_CORE_READ(f, private_data);
        return sock ? BPF_CORE_READ(sock, sk) : NULL;
}

/* btf: the task, the descriptor's file and its socket are BTF-typed (the tp+cast programs) */
static __always_inline int on_accepted(long fd, bool btf) {
        struct sock_owner *o;
        __u32 zero = 0;
        if (fd < 0 || !st_wanted() || sampled_out())
                return 0;
        struct sock *sk = fd_sock(fd, btf);
        if (!sk)
                return 0;
        __u16 family = SK(btf, sk, __sk_common.skc_family);
        if ((family != AF_INET && family != AF_INET6) || SK(btf, sk, sk_protocol) != IPPROTO_TCP)
                return 0;
        o = bpf_map_lookup_elem(&owner_buf, &zero);
        if (!o)
                return 0;
        __u64 now = bpf_ktime_get_boot_ns(), key = (__u64) sk;
        st_fill_header_x(&o->owner, 0, 0, now, btf);
        o->since_ns = now;
        o->direction = ST_CONN_INBOUND;
        o->reported = 1;
        o->fin_sent = 0;
        read_endpoints(o, sk, btf);
        emit_conn(sk, o, ST_EV_ACCEPT, now, btf);
        bpf_map_update_elem(&socks, &key, o, BPF_ANY);
        /* reset while it waited in the backlog, or just now on another CPU: then no state
         * change is left to remove the entry, and the close is reported here (once: by
         * whichever of us deletes the entry). Rare: through probe reads, since the byte
         * counters' tcp_sock comes from bpf_skc_to_tcp_sock(), which takes no cast pointer. */
        if (SK(btf, sk, __sk_common.skc_state) == TCP_CLOSE && bpf_map_delete_elem(&socks, &key) == 0)
                emit_conn(sk, o, ST_EV_CLOSE, now, false);
        return 0;
}

/* tp+cast: the task, the descriptor's file and the socket through BTF; tp: probe reads */
SEC("tp/syscalls/sys_exit_accept4")
int accept4_tp_cast(struct trace_event_raw_sys_exit *ctx) { return on_accepted(ctx->ret, true); }
SEC("tp/syscalls/sys_exit_accept")
int accept_tp_cast(struct trace_event_raw_sys_exit *ctx) { return on_accepted(ctx->ret, true); }
SEC("tp/syscalls/sys_exit_accept4")
int accept4_tp(struct trace_event_raw_sys_exit *ctx) { return on_accepted(ctx->ret, false); }
SEC("tp/syscalls/sys_exit_accept")
int accept_tp(struct trace_event_raw_sys_exit *ctx) { return on_accepted(ctx->ret, false); }

SEC("raw_tp/sys_exit")
int BPF_PROG(accept_raw, struct pt_regs *regs, long ret) {
        if (st_compat_syscall())
                return 0;
        long nr = st_syscall_nr(regs);
        if (nr != ST_NR_ACCEPT && nr != ST_NR_ACCEPT4)
                return 0;
        return on_accepted(ret, false);
}

