/* What every strata BPF program shares: the one ring buffer, the loss counters, the filters
 * and the record header. Each <probe>.bpf.c includes this once; the loader makes all the
 * objects use the first one's `events`, `lost` and filter maps (bpf_map__reuse_fd). */
#ifndef STRATA_COMMON_BPF_H
#define STRATA_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "events.h"

char LICENSE[] SEC("license") = "GPL";

/* Tunables, set by the loader between open and load. */
const volatile __u64 wakeup_bytes = 0;   /* wake the reader only when this much is pending (0: every event) */
const volatile __u64 wakeup_check_bytes = 0; /* look at what is pending after this many bytes of a CPU (0: each record) */
const volatile bool filter_uid_on = false;
const volatile __u32 filter_uid = 0;
const volatile bool filter_comm_on = false;   /* only comms in `comm_filter` */
const volatile bool filter_cgroup_on = false; /* only cgroup ids in `cgroup_filter` */

struct {
        __uint(type, BPF_MAP_TYPE_RINGBUF);
        __uint(max_entries, 1 << 22); /* the loader sets the configured size */
} events SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __uint(max_entries, 1);
        __type(key, __u32);
        __type(value, struct st_ev_loss);
} lost SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, 256);
        __type(key, char[ST_TASK_COMM_LEN]);
        __type(value, __u8);
} comm_filter SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, 1024);
        __type(key, __u64);
        __type(value, __u8);
} cgroup_filter SEC(".maps");

/* Whether the current task passes the configured filters. */
static __always_inline bool st_wanted(void) {
        if (filter_uid_on && (__u32) bpf_get_current_uid_gid() != filter_uid)
                return false;
        if (filter_comm_on) {
                /* the process's name (its main thread's), not the current thread's own */
                struct task_struct *task = (struct task_struct *) bpf_get_current_task();
                char comm[ST_TASK_COMM_LEN] = {};
                BPF_CORE_READ_STR_INTO(&comm, task, group_leader, comm);
                if (!bpf_map_lookup_elem(&comm_filter, comm))
                        return false;
        }
        if (filter_cgroup_on) {
                __u64 id = bpf_get_current_cgroup_id();
                if (!bpf_map_lookup_elem(&cgroup_filter, &id))
                        return false;
        }
        return true;
}

/* Batched wake-ups: the reader is woken when wakeup_bytes are pending, and otherwise finds the
 * records at its next flush (its epoll timeout), so a storm of events is not a storm of
 * wake-ups. The pending bytes are looked at once a CPU has written wakeup_check_bytes since
 * it last looked, not on every record: the query is a helper call, about 70 ns of a 600 ns
 * fork record on our VMs. The loader sizes the step so that what can go unlooked-at on all
 * CPUs and objects together stays a small part of the ring. Counters are per CPU, a cache line
 * each, so that CPUs do not share them (and per object: .bss is not shared). */
#define ST_MAX_CPUS 1024
struct st_cpu_count {
        __u64 bytes;
        __u8 pad[56];
};
static struct st_cpu_count st_rb_count[ST_MAX_CPUS];

static __always_inline __u64 st_rb_flags(__u64 size) {
        if (!wakeup_bytes)
                return 0;
        if (wakeup_check_bytes) {
                struct st_cpu_count *c = &st_rb_count[bpf_get_smp_processor_id() & (ST_MAX_CPUS - 1)];
                c->bytes += size;
                if (c->bytes < wakeup_check_bytes)
                        return BPF_RB_NO_WAKEUP;
                c->bytes = 0;
        }
        return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
                                                                              : BPF_RB_NO_WAKEUP;
}

static __always_inline void st_count_loss(__u64 now) {
        __u32 zero = 0;
        struct st_ev_loss *l = bpf_map_lookup_elem(&lost, &zero);
        if (!l)
                return;
        /* min and max: a fork record's time is the child's start, which can be earlier than
         * a record lost before it on this CPU */
        if (!l->count || now < l->first_ns)
                l->first_ns = now;
        if (now > l->last_ns)
                l->last_ns = now;
        l->count++;
}

/* Writes a record into the ring buffer, or counts it as lost. */
static __always_inline void st_emit(void *rec, __u64 size, __u64 now) {
        if (bpf_ringbuf_output(&events, rec, size, st_rb_flags(size)) < 0)
                st_count_loss(now);
}

/* The header of a record about the current task.
 * btf (a constant at every call site): the caller may use BTF-typed pointers (tp_btf, and the
 * "tp+btf" syscall programs), so the current task is read with plain loads through
 * bpf_get_current_task_btf(): ids, credentials, cgroup and name without the five helper calls
 * that make up most of a record's in-kernel cost. The values are the helpers' own: the global
 * pid and tgid, the real uid and gid, the v2 cgroup's id (task_dfl_cgroup()->kn->id). */
static __always_inline void st_fill_header_x(struct st_ev_header *h, __u16 type, __u16 size, __u64 now, bool btf) {
        h->type = type;
        h->size = size;
        h->cpu = bpf_get_smp_processor_id();
        h->ts_ns = now;
        if (btf) {
                struct task_struct *t = bpf_get_current_task_btf();
                const struct cred *c = t->cred;
                h->pid = t->tgid;
                h->tid = t->pid;
                h->start_ns = t->group_leader->start_boottime;
                h->cgroup_id = t->cgroups->dfl_cgrp->kn->id;
                h->uid = c->uid.val;
                h->gid = c->gid.val;
                __builtin_memcpy(h->comm, t->comm, sizeof(h->comm));
                return;
        }
        __u64 id = bpf_get_current_pid_tgid(), ug = bpf_get_current_uid_gid();
        struct task_struct *task = (struct task_struct *) bpf_get_current_task();
        h->pid = id >> 32;
        h->tid = (__u32) id;
        h->start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
        h->cgroup_id = bpf_get_current_cgroup_id();
        h->uid = (__u32) ug;
        h->gid = ug >> 32;
        bpf_get_current_comm(h->comm, sizeof(h->comm));
}

static __always_inline void st_fill_header(struct st_ev_header *h, __u16 type, __u16 size, __u64 now) {
        st_fill_header_x(h, type, size, now, false);
}

#endif
