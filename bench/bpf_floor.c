/* bpf_floor: what a BPF program costs on this machine before it does anything of its own.
 *
 *   bpf_floor [--forks N] [--rounds R]          (root, or CAP_BPF + CAP_PERFMON)
 *
 * Loads bpf_floor.bpf.c, attaches its programs one at a time to sched_process_fork, forks N
 * children that exit at once, and reads the program's run count and run time (kernel run-time
 * statistics through BPF_ENABLE_STATS, held only while it runs: no sysctl is changed). Each
 * round runs every program, so that the machine's drift hits them alike; the median round is
 * reported. Then the syscall tracepoints' own toll: open+close of one file, flat out for
 * 0.5 s at a time, alone and with an empty program on sys_exit_openat, alternating; the
 * median slowdown is reported. Likewise for fork+exec+wait of /bin/true with empty programs
 * on the three syscall tracepoints of the ebpf receiver's code hooks (sys_exit_openat,
 * sys_exit_openat2, sys_enter_mmap). The last line is for scripts (bench/kernel.sh):
 *   bpf_floor empty_ns=X clock_ns=X output_ns=X clock_output_ns=X openat_slowdown_pct=X
 *             exec_slowdown_pct=X
 * Exits 2 when it cannot run. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_floor.skel.h"

#define MAX_ROUNDS 99

struct floor_prog {
        const char *key;  /* in the script line */
        const char *what; /* for people */
        struct bpf_program *prog;
        double ns[MAX_ROUNDS];
};

static int ignore_record(void *ctx, void *data, size_t size) { return 0; }

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

/* Run time and count of a program so far. */
static int prog_stats(struct bpf_program *p, unsigned long long *ret_ns, unsigned long long *ret_cnt) {
        struct bpf_prog_info info = { 0 };
        __u32 len = sizeof(info);
        int r = bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len);
        if (r < 0)
                return -errno;
        *ret_ns = info.run_time_ns;
        *ret_cnt = info.run_cnt;
        return 0;
}

static int fork_children(unsigned long n) {
        for (unsigned long i = 0; i < n; i++) {
                pid_t c = fork();
                if (c < 0)
                        return -errno;
                if (c == 0)
                        _exit(0);
                if (waitpid(c, NULL, 0) < 0)
                        return -errno;
        }
        return 0;
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* open+close of path per second, flat out for `seconds`. */
static int open_rate(const char *path, double seconds, double *ret) {
        unsigned long n = 0;
        double t0 = now_s(), t;
        do {
                for (int i = 0; i < 256; i++, n++) {
                        int fd = open(path, O_RDONLY | O_CLOEXEC);
                        if (fd < 0)
                                return -errno;
                        close(fd);
                }
                t = now_s();
        } while (t - t0 < seconds);
        *ret = (double) n / (t - t0);
        return 0;
}

/* fork+exec+wait of /bin/true per second, flat out for `seconds`: kstorm's exec storm (with
 * an argument, true sets up the locale of the environment: some 30 opens and 20 mmaps). */
static int exec_rate(double seconds, double *ret) {
        unsigned long n = 0;
        double t0 = now_s(), t;
        do {
                for (int i = 0; i < 16; i++, n++) {
                        int status;
                        pid_t c = fork();
                        if (c < 0)
                                return -errno;
                        if (c == 0) {
                                execl("/bin/true", "true", "kstorm", (char *) NULL);
                                _exit(127);
                        }
                        if (waitpid(c, &status, 0) < 0)
                                return -errno;
                        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                                return -ENOEXEC;
                }
                t = now_s();
        } while (t - t0 < seconds);
        *ret = (double) n / (t - t0);
        return 0;
}

/* The median slowdown (%) of an exec storm with the code hooks' tracepoints holding empty
 * programs. */
static int exec_toll(struct bpf_program **progs, size_t n_progs, unsigned long rounds, double *ret) {
        double slow[MAX_ROUNDS];
        struct bpf_link *links[4];
        int r = 0;
        if (n_progs > sizeof(links) / sizeof(links[0]))
                return -E2BIG;
        for (unsigned long i = 0; i < rounds && r == 0; i++) {
                double alone1 = 0, with = 0, alone2 = 0;
                memset(links, 0, sizeof(links));
                r = exec_rate(0.5, &alone1);
                for (size_t k = 0; k < n_progs && r == 0; k++) {
                        links[k] = bpf_program__attach(progs[k]);
                        if (!links[k])
                                r = -errno;
                }
                if (r == 0)
                        r = exec_rate(1.0, &with);
                for (size_t k = 0; k < n_progs; k++)
                        bpf_link__destroy(links[k]);
                if (r == 0)
                        r = exec_rate(0.5, &alone2);
                if (r == 0)
                        slow[i] = (1 - with / ((alone1 + alone2) / 2)) * 100;
        }
        if (r < 0)
                return r;
        qsort(slow, rounds, sizeof(double), cmp_double);
        *ret = slow[rounds / 2];
        return 0;
}

/* The median slowdown (%) of open+close with an empty program on sys_exit_openat. */
static int openat_toll(struct bpf_program *prog, unsigned long rounds, double *ret) {
        char path[] = "/tmp/bpf_floor.XXXXXX";
        double slow[MAX_ROUNDS];
        int fd = mkstemp(path), r = 0;
        if (fd < 0)
                return -errno;
        close(fd);
        for (unsigned long i = 0; i < rounds && r == 0; i++) {
                double alone1 = 0, with = 0, alone2 = 0;
                struct bpf_link *link = NULL;
                r = open_rate(path, 0.25, &alone1);
                if (r == 0) {
                        link = bpf_program__attach(prog);
                        r = link ? open_rate(path, 0.5, &with) : -errno;
                        bpf_link__destroy(link);
                }
                if (r == 0)
                        r = open_rate(path, 0.25, &alone2);
                if (r == 0)
                        slow[i] = (1 - with / ((alone1 + alone2) / 2)) * 100;
        }
        unlink(path);
        if (r < 0)
                return r;
        qsort(slow, rounds, sizeof(double), cmp_double);
        *ret = slow[rounds / 2];
        return 0;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "forks", required_argument, NULL, 'n' },
                { "rounds", required_argument, NULL, 'r' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        unsigned long forks = 2000, rounds = 5;
        struct bpf_floor_bpf *skel = NULL;
        struct ring_buffer *rb = NULL;
        int stats_fd = -1, rc = 2, c;

        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'n': forks = strtoul(optarg, NULL, 10); break;
                case 'r': rounds = strtoul(optarg, NULL, 10); break;
                case 'h': printf("usage: bpf_floor [--forks N] [--rounds R]\n"); return 0;
                default: return 2;
                }
        }
        if (!forks || !rounds || rounds > MAX_ROUNDS) {
                fprintf(stderr, "bpf_floor: --forks must be >= 1, --rounds 1..%d\n", MAX_ROUNDS);
                return 2;
        }

        skel = bpf_floor_bpf__open_and_load();
        if (!skel) {
                fprintf(stderr, "bpf_floor: cannot load the programs: %s\n", strerror(errno));
                goto out;
        }
        rb = ring_buffer__new(bpf_map__fd(skel->maps.floor_rb), ignore_record, NULL, NULL);
        if (!rb) {
                fprintf(stderr, "bpf_floor: ring buffer: %s\n", strerror(errno));
                goto out;
        }
        stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
        if (stats_fd < 0) {
                fprintf(stderr, "bpf_floor: BPF_ENABLE_STATS: %s\n", strerror(-stats_fd));
                goto out;
        }

        struct floor_prog progs[] = {
                { "empty", "an empty program: dispatch and run-time accounting", skel->progs.floor_empty },
                { "clock", "+ a clock read (bpf_ktime_get_boot_ns)", skel->progs.floor_clock },
                { "output", "+ bpf_ringbuf_output of a fork record, no wake-up", skel->progs.floor_output },
                { "clock_output", "+ both: the least a timed record costs", skel->progs.floor_clock_out },
        };
        const size_t n_progs = sizeof(progs) / sizeof(progs[0]);

        for (unsigned long r = 0; r < rounds; r++) {
                for (size_t i = 0; i < n_progs; i++) {
                        unsigned long long ns0, cnt0, ns1, cnt1;
                        struct bpf_link *link = bpf_program__attach(progs[i].prog);
                        if (!link) {
                                fprintf(stderr, "bpf_floor: attach %s: %s\n", progs[i].key, strerror(errno));
                                goto out;
                        }
                        int e = prog_stats(progs[i].prog, &ns0, &cnt0);
                        if (!e)
                                e = fork_children(forks);
                        if (!e)
                                e = prog_stats(progs[i].prog, &ns1, &cnt1);
                        bpf_link__destroy(link);
                        if (e < 0) {
                                fprintf(stderr, "bpf_floor: %s: %s\n", progs[i].key, strerror(-e));
                                goto out;
                        }
                        if (cnt1 == cnt0) {
                                fprintf(stderr, "bpf_floor: %s never ran\n", progs[i].key);
                                goto out;
                        }
                        progs[i].ns[r] = (double) (ns1 - ns0) / (double) (cnt1 - cnt0);
                        ring_buffer__consume(rb); /* an empty ring for the next program */
                }
        }

        printf("bpf_floor: %lu rounds of %lu forks, raw_tp/sched_process_fork, median ns per run:\n", rounds, forks);
        for (size_t i = 0; i < n_progs; i++) {
                qsort(progs[i].ns, rounds, sizeof(double), cmp_double);
                printf("  %-13s %6.0f  %s\n", progs[i].key, progs[i].ns[rounds / 2], progs[i].what);
        }
        /* run-time statistics off: they add two clock reads to every run, which a program in
         * production does not pay */
        close(stats_fd);
        stats_fd = -1;
        double toll = 0;
        int e = openat_toll(skel->progs.floor_openat, rounds, &toll);
        if (e < 0) {
                fprintf(stderr, "bpf_floor: open storm: %s\n", strerror(-e));
                goto out;
        }
        printf("  an empty program on sys_exit_openat slows open+close of one file by %.1f%%\n", toll);
        struct bpf_program *code_hooks[] = { skel->progs.floor_openat, skel->progs.floor_openat2, skel->progs.floor_mmap };
        double exec_slow = 0;
        e = exec_toll(code_hooks, sizeof(code_hooks) / sizeof(code_hooks[0]), rounds, &exec_slow);
        if (e < 0) /* the figures above stand without it */
                fprintf(stderr, "bpf_floor: exec storm: %s, not measured\n", strerror(-e));
        else
                printf("  empty programs on sys_exit_openat, sys_exit_openat2 and sys_enter_mmap slow fork+exec of /bin/true by %.1f%%\n",
                       exec_slow);
        printf("bpf_floor");
        for (size_t i = 0; i < n_progs; i++)
                printf(" %s_ns=%.0f", progs[i].key, progs[i].ns[rounds / 2]);
        printf(" openat_slowdown_pct=%.1f", toll);
        if (e >= 0)
                printf(" exec_slowdown_pct=%.1f", exec_slow);
        printf("\n");
        rc = 0;
out:
        if (stats_fd >= 0)
                close(stats_fd);
        ring_buffer__free(rb);
        bpf_floor_bpf__destroy(skel);
        return rc;
}
