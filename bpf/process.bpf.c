// SPDX-License-Identifier: GPL-2.0
/* Process life cycle: fork (new processes, not threads), exec (path and argv), exit (of the
 * last thread, with the exit code).
 *
 * Each hook exists twice, as tp_btf (BTF-typed tracepoint) and as raw_tp (the same tracepoint
 * without BTF typing, for kernels that refuse BPF_PROG_TYPE_TRACING); the loader keeps one of
 * the two (bpf_program__set_autoload) after probing. Neither needs tracefs. */
#include "common.bpf.h"

const volatile __u32 args_max = 1024; /* argv bytes kept per exec, <= ST_ARGS_MAX */
/* sched_process_exit passes group_dead since 6.16 (the loader reads the kernel's BTF); before,
 * the last thread is the one that finds signal->live at 0, which two exiting threads can both
 * see. */
const volatile bool exit_has_group_dead = false;
/* A v1 memory hierarchy is mounted (hybrid hosts): exec records carry the memory cgroup's id,
 * by which user space knows the container without reading /proc for every exec. */
const volatile bool memcg_v1 = false;

struct exec_scratch {
        struct st_ev_exec ev;
        char data[ST_PATH_MAX + ST_ARGS_MAX];
};

struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __uint(max_entries, 1);
        __type(key, __u32);
        __type(value, struct exec_scratch);
} exec_buf SEC(".maps");

static __always_inline int on_fork(struct task_struct *parent, struct task_struct *child, bool btf) {
        struct st_ev_fork ev = {};
        /* tp_btf: plain loads; raw_tp: probe reads (btf is a constant in each copy) */
        pid_t pid = btf ? child->pid : BPF_CORE_READ(child, pid), tgid = btf ? child->tgid : BPF_CORE_READ(child, tgid);

        if (pid != tgid)
                return 0; /* a thread */
        if (!st_wanted())
                return 0;
        /* The record's time is the child's start (CLOCK_BOOTTIME, taken by copy_process()
         * microseconds ago), not a clock read of our own: a first clock read in a program is
         * 100-200 ns on our VMs, a third of what a fork record costs. */
        __u64 now = btf ? child->start_boottime : BPF_CORE_READ(child, start_boottime);
        st_fill_header_x(&ev.h, ST_EV_FORK, sizeof(ev), now, btf);
        ev.child_pid = tgid;
        ev.child_start_ns = now;
        st_emit(&ev, sizeof(ev), now);
        return 0;
}

/* The id of task's cgroup in the hierarchy the memory controller is bound to (the v2 one
 * where it is on v2). The controller's index comes from the running kernel's BTF. */
static __always_inline __u64 memcg_id(struct task_struct *task, bool btf) {
        if (!memcg_v1 || !bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
                return 0;
        int i = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
        if (i < 0 || i >= CGROUP_SUBSYS_COUNT)
                return 0;
        if (btf) {
                struct cgroup_subsys_state *css = task->cgroups->subsys[i];
                return css ? css->cgroup->kn->id : 0;
        }
        struct cgroup_subsys_state *css = BPF_CORE_READ(task, cgroups, subsys[i]);
        return css ? BPF_CORE_READ(css, cgroup, kn, id) : 0;
}

static __always_inline int on_exec(struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm, bool btf) {
        __u32 zero = 0;
        struct exec_scratch *s;
        long n;

        if (!st_wanted())
                return 0;
        __u64 now = bpf_ktime_get_boot_ns();
        s = bpf_map_lookup_elem(&exec_buf, &zero);
        if (!s)
                return 0;
        __builtin_memset(&s->ev, 0, sizeof(s->ev));
        s->ev.old_pid = old_pid;
        /* tp_btf: task and bprm are BTF pointers, their fields plain loads; raw_tp: probe reads */
        const char *filename = btf ? bprm->filename : BPF_CORE_READ(bprm, filename);
        struct mm_struct *mm;
        if (btf) {
                struct inode *exe = bprm->file->f_inode;
                s->ev.ppid = task->real_parent->tgid;
                s->ev.script = bprm->interp != filename;
                s->ev.exe_inode = exe->i_ino;
                s->ev.exe_dev = exe->i_sb->s_dev;
                mm = task->mm;
                s->ev.memcg_id = memcg_id(task, true);
        } else {
                struct inode *exe = BPF_CORE_READ(bprm, file, f_inode);
                s->ev.ppid = BPF_CORE_READ(task, real_parent, tgid);
                s->ev.script = BPF_CORE_READ(bprm, interp) != filename;
                s->ev.exe_inode = BPF_CORE_READ(exe, i_ino);
                s->ev.exe_dev = BPF_CORE_READ(exe, i_sb, s_dev);
                mm = BPF_CORE_READ(task, mm);
                s->ev.memcg_id = memcg_id(task, false);
        }

        n = bpf_probe_read_kernel_str(s->data, ST_PATH_MAX, filename);
        __u32 path_len = n > 0 ? (__u32) n - 1 : 0; /* without its NUL */
        if (path_len >= ST_PATH_MAX - 1)
                s->ev.path_truncated = 1;
        path_len &= ST_PATH_MAX - 1;
        s->ev.path_len = path_len;

        /* argv as the new image sees it: mm->arg_start..arg_end of the new mm, just written */
        __u64 arg_start = btf ? mm->arg_start : BPF_CORE_READ(mm, arg_start);
        __u64 arg_end = btf ? mm->arg_end : BPF_CORE_READ(mm, arg_end);
        __u64 args_len = arg_end > arg_start ? arg_end - arg_start : 0;
        __u32 max = args_max < ST_ARGS_MAX ? args_max : ST_ARGS_MAX;
        if (args_len > max) {
                args_len = max;
                s->ev.args_truncated = 1;
        }
        args_len &= ST_ARGS_MAX - 1 + ST_ARGS_MAX; /* bounded for the verifier; <= ST_ARGS_MAX */
        if (args_len > ST_ARGS_MAX)
                args_len = ST_ARGS_MAX;
        if (args_len && bpf_probe_read_user(s->data + path_len, args_len, (const void *) arg_start) < 0) {
                args_len = 0;
                s->ev.args_truncated = 1;
        }
        s->ev.args_len = args_len;

        __u64 size = sizeof(s->ev) + path_len + args_len;
        st_fill_header_x(&s->ev.h, ST_EV_EXEC, (__u16) size, now, btf);
        if (size > sizeof(*s))
                return 0;
        st_emit(s, size, now);
        return 0;
}

static __always_inline int on_exit(struct task_struct *task, bool group_dead, bool btf) {
        struct st_ev_exit ev = {};

        /* every thread passes here; the process is gone when the last one does */
        if (!group_dead)
                return 0;
        if (!st_wanted())
                return 0;
        __u64 now = bpf_ktime_get_boot_ns(); /* after the filters: a clock read is dear */
        st_fill_header_x(&ev.h, ST_EV_EXIT, sizeof(ev), now, btf);
        ev.ppid = btf ? task->real_parent->tgid : BPF_CORE_READ(task, real_parent, tgid);
        ev.exit_code = btf ? task->exit_code : BPF_CORE_READ(task, exit_code);
        st_emit(&ev, sizeof(ev), now);
        return 0;
}

static __always_inline bool last_thread(__u64 *ctx, struct task_struct *task, bool btf) {
        if (exit_has_group_dead)
                return (bool) ctx[1]; /* a dead branch, not verified, on kernels without it */
        return (btf ? task->signal->live.counter : BPF_CORE_READ(task, signal, live.counter)) == 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(fork_btf, struct task_struct *parent, struct task_struct *child) { return on_fork(parent, child, true); }
SEC("raw_tp/sched_process_fork")
int BPF_PROG(fork_raw, struct task_struct *parent, struct task_struct *child) { return on_fork(parent, child, false); }

SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) { return on_exec(p, old_pid, bprm, true); }
SEC("raw_tp/sched_process_exec")
int BPF_PROG(exec_raw, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) { return on_exec(p, old_pid, bprm, false); }

SEC("tp_btf/sched_process_exit")
int BPF_PROG(exit_btf, struct task_struct *p) {
        return on_exit(p, last_thread(ctx, p, true), true);
}
SEC("raw_tp/sched_process_exit")
int exit_raw(__u64 *ctx) {
        struct task_struct *p = (struct task_struct *) ctx[0];
        return on_exit(p, last_thread(ctx, p, false), false);
}
