/* bpf_floor: programs that do next to nothing, on the fork tracepoint, so that bpf_floor.c can
 * measure what any program costs on this machine before its own work: the kernel's dispatch
 * and run-time accounting (empty), a clock read (clock), the ring-buffer output of a record the
 * size of a fork record (output), and both (clock_output: the least a timed record costs).
 * And empty programs on the syscall tracepoints of the code hooks, for what the syscall
 * tracepoint machinery itself costs an open, and an exec. kernel.sh sets strata's figures against these, from the same run. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "events.h"

char LICENSE[] SEC("license") = "GPL";

struct {
        __uint(type, BPF_MAP_TYPE_RINGBUF);
        __uint(max_entries, 1 << 22);
} floor_rb SEC(".maps");

/* The clock read's result goes somewhere the compiler cannot drop. */
__u64 sink;

SEC("raw_tp/sched_process_fork")
int floor_empty(void *ctx) { return 0; }

SEC("raw_tp/sched_process_fork")
int floor_clock(void *ctx) {
        sink = bpf_ktime_get_boot_ns();
        return 0;
}

/* A fork-sized record into the ring buffer; with_clock: stamped with a clock read. */
static __always_inline int output(bool with_clock) {
        struct st_ev_fork ev = {};
        ev.h.type = ST_EV_FORK;
        ev.h.size = sizeof(ev);
        if (with_clock)
                ev.h.ts_ns = bpf_ktime_get_boot_ns();
        bpf_ringbuf_output(&floor_rb, &ev, sizeof(ev), BPF_RB_NO_WAKEUP);
        return 0;
}

SEC("raw_tp/sched_process_fork")
int floor_output(void *ctx) { return output(false); }

SEC("raw_tp/sched_process_fork")
int floor_clock_out(void *ctx) { return output(true); }

SEC("tp/syscalls/sys_exit_openat")
int floor_openat(void *ctx) { return 0; }

/* With floor_openat: the tracepoints of the ebpf receiver's code hooks, empty, under an exec
 * storm (the dynamic loader opens and maps each library). */
SEC("tp/syscalls/sys_exit_openat2")
int floor_openat2(void *ctx) { return 0; }

SEC("tp/syscalls/sys_enter_mmap")
int floor_mmap(void *ctx) { return 0; }
