// SPDX-License-Identifier: GPL-2.0
/* DNS queries: UDP datagrams sent to port 53, through sendto(2) (and send(2)), sendmsg(2) and
 * sendmmsg(2) — what resolvers use (glibc sends the A and AAAA queries in one sendmmsg). The
 * destination is the call's address, or, on a connected socket, the socket's peer. Only the
 * first bytes of the datagram are copied: user space parses the question (ebpf_decode.c).
 *
 * Its own object (event kind `dns`): these hooks run on every send of the host, UDP or not, so
 * a host that does not want DNS queries does not pay for them. Syscall tracepoints only (no
 * raw_tp fallback: every syscall of the host would pay for it). */
#include "common.bpf.h"
#include "syscalls.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_UDP 17
#define DNS_PORT 53
#define S_IFMT 00170000
#define S_IFSOCK 0140000

struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __uint(max_entries, 1);
        __type(key, __u32);
        __type(value, struct st_ev_dns);
} dns_buf SEC(".maps");

/* The UDP socket of fd, when it is one. */
static __always_inline struct sock *udp_sock_of(long fd, bool btf) {
        struct file *f = st_fd_file_x(fd, btf);
        if (!f)
                return NULL;
        umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
        if ((mode & S_IFMT) != S_IFSOCK)
                return NULL;
        struct socket *sock = BPF_CORE_READ(f, private_data);
        struct sock *sk = sock ? BPF_CORE_READ(sock, sk) : NULL;
        if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_UDP)
                return NULL;
        return sk;
}

/* One datagram of len bytes at buf, to addr (user memory; NULL: the socket's peer). */
static __always_inline void on_dns_send(struct sock *sk, const void *buf, __u64 len, const void *addr, bool btf) {
        __u32 zero = 0;
        struct st_ev_dns *ev = bpf_map_lookup_elem(&dns_buf, &zero);
        if (!ev || !buf)
                return;
        __u16 port;
        if (addr) {
                struct sockaddr_in6 sa = {};
                if (bpf_probe_read_user(&sa, sizeof(sa), addr) < 0)
                        return;
                ev->family = sa.sin6_family;
                port = __builtin_bswap16(sa.sin6_port);
                __builtin_memset(ev->remote_addr, 0, sizeof(ev->remote_addr));
                if (sa.sin6_family == AF_INET) {
                        const struct sockaddr_in *in = (const struct sockaddr_in *) &sa;
                        __builtin_memcpy(ev->remote_addr, &in->sin_addr, 4);
                } else if (sa.sin6_family == AF_INET6)
                        __builtin_memcpy(ev->remote_addr, &sa.sin6_addr, 16);
                else
                        return;
        } else {
                ev->family = BPF_CORE_READ(sk, __sk_common.skc_family);
                port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
                __builtin_memset(ev->remote_addr, 0, sizeof(ev->remote_addr));
                if (ev->family == AF_INET) {
                        __u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
                        __builtin_memcpy(ev->remote_addr, &d, 4);
                } else
                        BPF_CORE_READ_INTO(&ev->remote_addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
        }
        if (port != DNS_PORT)
                return;
        __u64 n = len < ST_DNS_PAYLOAD_MAX ? len : ST_DNS_PAYLOAD_MAX;
        if (n < 12) /* not even a DNS header */
                return;
        if (bpf_probe_read_user(ev->payload, n & 511, buf) < 0) /* & 511: a bound the verifier sees */
                return;
        __u64 now = bpf_ktime_get_boot_ns();
        st_fill_header_x(&ev->h, ST_EV_DNS, sizeof(*ev), now, btf);
        ev->remote_port = port;
        ev->payload_len = n;
        st_emit(ev, sizeof(*ev), now);
}

static __always_inline int on_sendto(struct trace_event_raw_sys_enter *ctx, bool btf) {
        const struct sockaddr_in *addr = (const struct sockaddr_in *) ctx->args[4];
        if (addr) {
                /* the port first: one read settles most sends that carry an address */
                __u16 port = 0;
                if (bpf_probe_read_user(&port, sizeof(port), &addr->sin_port) < 0 || __builtin_bswap16(port) != DNS_PORT)
                        return 0;
        }
        if (!st_wanted())
                return 0;
        struct sock *sk = udp_sock_of(ctx->args[0], btf);
        if (sk)
                on_dns_send(sk, (const void *) ctx->args[1], ctx->args[2], (const void *) ctx->args[4], btf);
        return 0;
}

/* The first iovec of a user msghdr, and its destination. */
static __always_inline void on_msghdr(struct sock *sk, const struct user_msghdr *m, bool btf) {
        struct user_msghdr h;
        struct iovec iov;
        if (bpf_probe_read_user(&h, sizeof(h), m) < 0 || !h.msg_iov || !h.msg_iovlen ||
            bpf_probe_read_user(&iov, sizeof(iov), h.msg_iov) < 0)
                return;
        on_dns_send(sk, iov.iov_base, iov.iov_len, h.msg_name, btf);
}

static __always_inline int on_sendmsg(struct trace_event_raw_sys_enter *ctx, bool btf) {
        if (!st_wanted())
                return 0;
        struct sock *sk = udp_sock_of(ctx->args[0], btf);
        if (sk)
                on_msghdr(sk, (const struct user_msghdr *) ctx->args[1], btf);
        return 0;
}

static __always_inline int on_sendmmsg(struct trace_event_raw_sys_enter *ctx, bool btf) {
        if (!st_wanted())
                return 0;
        struct sock *sk = udp_sock_of(ctx->args[0], btf);
        const struct mmsghdr *v = (const struct mmsghdr *) ctx->args[1];
        __u64 vlen = ctx->args[2];
        if (!sk || !v)
                return 0;
        /* a resolver's A and AAAA queries; more are not queries of one lookup */
        on_msghdr(sk, (const struct user_msghdr *) &v[0].msg_hdr, btf);
        if (vlen > 1)
                on_msghdr(sk, (const struct user_msghdr *) &v[1].msg_hdr, btf);
        return 0;
}

/* tp+btf: the fd table through the BTF-typed current task (every send of the host looks a
 * socket up); tp: through probe reads */
SEC("tp/syscalls/sys_enter_sendto")
int sendto_tp_btf(struct trace_event_raw_sys_enter *ctx) { return on_sendto(ctx, true); }
SEC("tp/syscalls/sys_enter_sendmsg")
int sendmsg_tp_btf(struct trace_event_raw_sys_enter *ctx) { return on_sendmsg(ctx, true); }
SEC("tp/syscalls/sys_enter_sendmmsg")
int sendmmsg_tp_btf(struct trace_event_raw_sys_enter *ctx) { return on_sendmmsg(ctx, true); }
SEC("tp/syscalls/sys_enter_sendto")
int sendto_tp(struct trace_event_raw_sys_enter *ctx) { return on_sendto(ctx, false); }
SEC("tp/syscalls/sys_enter_sendmsg")
int sendmsg_tp(struct trace_event_raw_sys_enter *ctx) { return on_sendmsg(ctx, false); }
SEC("tp/syscalls/sys_enter_sendmmsg")
int sendmmsg_tp(struct trace_event_raw_sys_enter *ctx) { return on_sendmmsg(ctx, false); }
