/* Loading strata's BPF programs: skeleton open → rodata → load → attach, with a probe and a
 * fallback per hook (tp_btf, else raw_tp, else the hook is reported missing and the rest
 * runs), and the ring buffer they share. The reader thread lives in ebpf.c; decoding in
 * ebpf_decode.c. */
#pragma once
#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/events.h"

struct kprobes;

/* What to collect: the BPF objects in bpf/. */
#define KPROBES_PROCESS 1u /* process.bpf.c: fork, exec, exit */
#define KPROBES_NETWORK 2u /* net.bpf.c: TCP connect, accept, close */
#define KPROBES_CODE 4u    /* code.bpf.c: executable mappings, package files opened */
#define KPROBES_DNS 8u     /* dns.bpf.c: UDP queries to port 53 */

struct kprobes_opts {
        unsigned objects;         /* KPROBES_* bits */
        uint64_t ring_bytes;      /* ring buffer size: a power of 2, multiple of the page size */
        uint32_t args_max;        /* argv bytes per exec, <= ST_ARGS_MAX */
        uint32_t net_sample_every;/* follow 1 in N TCP connections (0 or 1: all) */
        uint64_t wakeup_bytes;    /* 0: wake the reader on every record */
        int64_t uid;              /* only this uid; -1: all */
        const char *const *comms; /* only these comms (NULL-terminated); NULL or empty: all */
        const uint64_t *cgroup_ids; size_t n_cgroup_ids; /* only these cgroup v2 ids; none: all */
        const char *force;        /* "tp_btf" or "raw_tp" to allow only that kind; NULL: both */
        const char *break_program;/* tests: programs to make fail to load, comma-separated */
};

/* Called for each record in the ring buffer, on the consuming thread. */
typedef int (*kprobes_record_fn)(void *ctx, void *data, size_t size);

/* Loads and attaches what this kernel allows. On success *ret is set and `report` (cap bytes)
 * says which hooks run and how ("process.exec: tp_btf"), and which do not, and why. Fails with
 * -errno (and the reason in report) only when no hook at all could run. Objects after the first
 * share its ring buffer, loss counters and filter maps. */
int kprobes_open(const struct kprobes_opts *o, kprobes_record_fn fn, void *ctx, struct kprobes **ret, char *report,
                 size_t cap);
void kprobes_free(struct kprobes *k); /* NULL-safe: detaches and unloads */
int kprobes_set_filters(struct kprobes *k, const struct kprobes_opts *o); /* fills comm/cgroup maps */

int kprobes_epoll_fd(struct kprobes *k);  /* readable when records are ready (see wakeup_bytes) */
int kprobes_consume(struct kprobes *k);   /* reads every ready record; returns how many, or -errno */
/* Kernel-side losses so far, summed over CPUs (first_ns/last_ns: earliest and latest). */
int kprobes_losses(struct kprobes *k, struct st_ev_loss *ret);
/* How many hooks are attached. */
size_t kprobes_attached(struct kprobes *k);

/* Connections to strata's own TCP ports (events.h, st_peer_*), for attributing senders.
 * -ENODEV when the network object or its connect hook is not running; -ENOENT when unknown. */
int kprobes_peer_lookup(struct kprobes *k, const struct st_peer_key *key, struct st_peer_owner *ret);
/* Starts (add) or stops following connections to port. One caller at a time. */
int kprobes_own_port(struct kprobes *k, uint16_t port, bool add);
