/* Syscall numbers and the syscall number of a pt_regs, for the raw_tp/sys_enter|sys_exit
 * fallbacks (used where tracefs, and so the per-syscall tracepoints, cannot be had). */
#ifndef STRATA_SYSCALLS_BPF_H
#define STRATA_SYSCALLS_BPF_H

#if defined(__TARGET_ARCH_x86)
#define ST_NR_MMAP 9
#define ST_NR_ACCEPT 43
#define ST_NR_ACCEPT4 288
#define ST_NR_OPENAT 257
#define ST_NR_OPENAT2 437
static __always_inline long st_syscall_nr(struct pt_regs *regs) { return BPF_CORE_READ(regs, orig_ax); }
#elif defined(__TARGET_ARCH_arm64)
#define ST_NR_MMAP 222
#define ST_NR_ACCEPT 202
#define ST_NR_ACCEPT4 242
#define ST_NR_OPENAT 56
#define ST_NR_OPENAT2 437
static __always_inline long st_syscall_nr(struct pt_regs *regs) { return BPF_CORE_READ(regs, syscallno); }
#else
#error "syscall numbers: add this architecture"
#endif

/* The struct file of fd in the current task (NULL when there is none). fd may be anything a
 * caller passed (mmap's is not checked by the kernel for MAP_ANONYMOUS), so it is bounded by
 * the table's size. btf (a constant at each call site): the task is walked with plain loads
 * through bpf_get_current_task_btf() (kernel BTF, 5.11+), one probe read in all instead of
 * five helper calls; every open of the host pays this walk. */
static __always_inline struct file *st_fd_file_x(long fd, bool btf) {
        struct file *f = NULL;
        struct fdtable *fdt;
        if (fd < 0)
                return NULL;
        if (btf) {
                fdt = bpf_get_current_task_btf()->files->fdt;
                if ((unsigned long) fd >= fdt->max_fds)
                        return NULL;
                bpf_probe_read_kernel(&f, sizeof(f), &fdt->fd[fd]);
                return f;
        }
        struct task_struct *task = (struct task_struct *) bpf_get_current_task();
        fdt = BPF_CORE_READ(task, files, fdt);
        if ((unsigned long) fd >= BPF_CORE_READ(fdt, max_fds))
                return NULL;
        struct file **fds = BPF_CORE_READ(fdt, fd);
        bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
        return f;
}

static __always_inline struct file *st_fd_file(long fd) { return st_fd_file_x(fd, false); }

/* bpf_rdonly_cast (a kfunc, 6.2+) makes a pointer that was read out of memory BTF-typed, so
 * that its fields are plain loads (guarded by the verifier) instead of a probe-read call each.
 * Weak: on kernels without it the programs that use it (the "tp+cast" kind) fail to load and
 * the loader takes the next kind. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
#define st_cast(ptr, type) ((type *) bpf_rdonly_cast((ptr), bpf_core_type_id_kernel(type)))

/* Whether the current task is in a 32-bit compat syscall, where the raw_tp fallbacks' syscall
 * numbers mean other syscalls (x86: 43 is times(), 9 is link()). */
static __always_inline bool st_compat_syscall(void) {
        struct task_struct *task = (struct task_struct *) bpf_get_current_task();
#if defined(__TARGET_ARCH_x86)
        return BPF_CORE_READ(task, thread_info.status) & 0x0002; /* TS_COMPAT */
#elif defined(__TARGET_ARCH_arm64)
        return BPF_CORE_READ(task, thread_info.flags) & (1UL << 22); /* TIF_32BIT */
#else
        return false;
#endif
}

#endif
