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

/* The struct file of fd in the current task (NULL when there is none). fd comes from a syscall
 * that just returned it or is about to use it, so it is within the table; and probe reads
 * are safe: a stale one fails, it does not fault. */
static __always_inline struct file *st_fd_file(long fd) {
        struct task_struct *task = (struct task_struct *) bpf_get_current_task();
        struct file *f = NULL;
        if (fd < 0 || fd > 0x7fffffff)
                return NULL;
        struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
        bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
        return f;
}

#endif
