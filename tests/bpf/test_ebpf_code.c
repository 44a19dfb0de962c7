/* Code loads from the kernel, against ground truth: K dlopen()s of K copies of a known shared
 * object, and package files opened (site-packages/…py, node_modules/…js, a .jar), each opened
 * twice. Each must be reported exactly once for this process, with its exact path, as an
 * executable mapping (the .so) and as an open; files outside packages must not be. */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "ebpf_test.h"

#define K_PLUGINS 5

struct file_truth {
        char path[PATH_MAX];
        bool expect_mmap, expect_open;
        int mmaps, opens;
};

struct truth {
        struct file_truth f[K_PLUGINS + 5];
        size_t n;
        pid_t pid;
        int gaps;
};

static void copy_file(const char *from, const char *to) {
        char buf[65536];
        int in = open(from, O_RDONLY | O_CLOEXEC), out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
        ssize_t n;
        assert_true(in >= 0 && out >= 0);
        while ((n = read(in, buf, sizeof(buf))) > 0)
                assert_int_equal(write(out, buf, (size_t) n), n);
        close(in);
        close(out);
}

static void make_file(const char *path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "x\n", 2), 2);
        close(fd);
}

static void open_twice(const char *path) {
        for (int i = 0; i < 2; i++) {
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                assert_true(fd >= 0);
                close(fd);
        }
}

static struct file_truth *add(struct truth *t, const char *path, bool mmap_exec, bool opened) {
        struct file_truth *f = &t->f[t->n++];
        assert_non_null(realpath(path, f->path));
        f->expect_mmap = mmap_exec;
        f->expect_open = opened;
        return f;
}

static char dir[] = "/tmp/strata-code-XXXXXX";

static void workload(struct truth *t) {
        char p[PATH_MAX];
        t->pid = getpid();
        assert_non_null(mkdtemp(dir));
        for (int i = 0; i < K_PLUGINS; i++) {
                snprintf(p, sizeof(p), "%s/libstrata-plugin-%d.so", dir, i);
                copy_file(STRATA_TEST_PLUGIN, p);
                add(t, p, true, true);
                void *h = dlopen(p, RTLD_NOW | RTLD_LOCAL);
                assert_non_null(h);
                int (*answer)(void) = (int (*)(void)) dlsym(h, "strata_test_plugin_answer");
                assert_non_null(answer);
                assert_int_equal(answer(), 42);
                dlclose(h);
        }
        static const char *const trees[] = { "site-packages/requests", "node_modules/left-pad", "plain" };
        for (size_t i = 0; i < 3; i++) {
                char cmd[PATH_MAX + 32];
                snprintf(cmd, sizeof(cmd), "mkdir -p %s/%s", dir, trees[i]);
                assert_int_equal(system(cmd), 0);
        }
        snprintf(p, sizeof(p), "%s/site-packages/requests/api.py", dir);
        make_file(p);
        open_twice(p);
        add(t, p, false, true);
        snprintf(p, sizeof(p), "%s/node_modules/left-pad/index.js", dir);
        make_file(p);
        open_twice(p);
        add(t, p, false, true);
        snprintf(p, sizeof(p), "%s/app.jar", dir);
        make_file(p);
        open_twice(p);
        add(t, p, false, true);
        /* not code: a .py outside a package, a text file */
        snprintf(p, sizeof(p), "%s/plain/script.py", dir);
        make_file(p);
        open_twice(p);
        add(t, p, false, false);
        snprintf(p, sizeof(p), "%s/notes.txt", dir);
        make_file(p);
        open_twice(p);
        add(t, p, false, false);
}

static void match(const struct rec *r, void *ctx) {
        struct truth *t = ctx;
        const st_log_record *lr = r->lr;
        const char *ev = attr_str(lr, "event.name");
        if (strcmp(ev, "strata.gap") == 0) {
                t->gaps++;
                return;
        }
        if (strcmp(ev, "code.load") != 0 || attr_int(lr, "process.pid", -1) != t->pid)
                return;
        const char *path = attr_str(lr, "file.path"), *kind = attr_str(lr, "strata.code.load_kind");
        assert_non_null(path);
        assert_non_null(kind);
        for (size_t i = 0; i < t->n; i++) {
                struct file_truth *f = &t->f[i];
                if (strcmp(path, f->path) != 0)
                        continue;
                const char *base = strrchr(f->path, '/') + 1;
                assert_string_equal(attr_str(lr, "file.name"), base);
                struct stat st;
                assert_int_equal(stat(f->path, &st), 0);
                assert_int_equal(attr_int(lr, "strata.file.inode", -1), (int64_t) st.st_ino);
                if (strcmp(kind, "mmap_exec") == 0)
                        f->mmaps++;
                else
                        f->opens++;
        }
}

/* runs the workload with the receiver; open_prog, mmap_prog: the programs code.open and
 * code.mmap_exec must have got */
static void run(const char *yaml, const char *open_prog, const char *mmap_prog) {
        struct harness h;
        struct truth t = { 0 };
        strcpy(dir, "/tmp/strata-code-XXXXXX");
        rx_start(&h, yaml);
        assert_int_equal(metric(&h, "ebpf_hooks_attached"), 2);
        if (!prog_loaded(open_prog))
                fail_msg("code.open is not %s", open_prog);
        if (!prog_loaded(mmap_prog))
                fail_msg("code.mmap_exec is not %s", mmap_prog);
        workload(&t);
        rx_stop(&h);
        each_record(&h, match, &t);
        for (size_t i = 0; i < t.n; i++) {
                struct file_truth *f = &t.f[i];
                if (f->mmaps != (f->expect_mmap ? 1 : 0) || f->opens != (f->expect_open ? 1 : 0))
                        fail_msg("%s: %d executable mappings (want %d), %d opens (want %d)", f->path, f->mmaps,
                                 f->expect_mmap, f->opens, f->expect_open);
        }
        assert_int_equal(t.gaps, 0);
        assert_int_equal(metric(&h, "ebpf_lost_events_total"), 0);
        assert_int_equal(metric(&h, "ebpf_decode_errors_total"), 0);
        rx_free(&h);
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);
}

static void test_code_ground_truth(void **state) {
        REQUIRE_ROOT();
        /* tp+cast needs the bpf_rdonly_cast kfunc (6.2+): other kernels take tp+btf, as the loader does */
        run("flush_interval: 50ms\nevents: [code]\n", kernel_has_func("bpf_rdonly_cast") ? "openat_tp_cast" : "openat_tp_btf",
            kernel_has_func("bpf_rdonly_cast") ? "mmap_tp_cast" : "mmap_tp");
}

/* tp+btf, as kernels without bpf_rdonly_cast (5.11 to 6.1) load it: the dentry and the inode
 * through probe reads give the same facts. */
static void test_code_tp_btf(void **state) {
        REQUIRE_ROOT();
        setenv("STRATA_TEST_EBPF_BREAK_PROGRAM", "openat_tp_cast,openat2_tp_cast", 1);
        run("flush_interval: 50ms\nevents: [code]\n", "openat_tp_btf", kernel_has_func("bpf_rdonly_cast") ? "mmap_tp_cast" : "mmap_tp");
        unsetenv("STRATA_TEST_EBPF_BREAK_PROGRAM");
}

/* The syscall tracepoints without BTF (a kernel without bpf_get_current_task_btf, or
 * program_kind: raw_tp): the fd table through probe reads gives the same facts. */
static void test_code_tp_without_btf(void **state) {
        REQUIRE_ROOT();
        setenv("STRATA_TEST_EBPF_BREAK_PROGRAM", "mmap_tp_cast,openat_tp_cast,openat2_tp_cast,openat_tp_btf,openat2_tp_btf", 1);
        run("flush_interval: 50ms\nevents: [code]\n", "openat_tp", "mmap_tp");
        unsetenv("STRATA_TEST_EBPF_BREAK_PROGRAM");
        run("flush_interval: 50ms\nevents: [code]\nprogram_kind: raw_tp\n", "openat_tp", "mmap_tp");
}

/* Without the syscall tracepoints: raw_tp/sys_enter and sys_exit give the same facts. */
static void test_code_raw_tp_fallback(void **state) {
        REQUIRE_ROOT();
        setenv("STRATA_TEST_EBPF_BREAK_PROGRAM",
               "mmap_tp_cast,mmap_tp,openat_tp_cast,openat2_tp_cast,openat_tp_btf,openat2_tp_btf,openat_tp,openat2_tp", 1);
        run("flush_interval: 50ms\nevents: [code]\n", "open_raw", "mmap_raw");
        unsetenv("STRATA_TEST_EBPF_BREAK_PROGRAM");
}

/* A ring buffer far too small for a burst: what does not fit is counted in the kernel, told
 * as strata.gap records, and delivered + lost adds up to exactly what happened. */
struct storm {
        pid_t pid;
        char dir[64];
        size_t delivered;
        int64_t gap_lost;
        int gaps;
};

static void storm_match(const struct rec *r, void *ctx) {
        struct storm *s = ctx;
        const char *ev = attr_str(r->lr, "event.name");
        if (strcmp(ev, "strata.gap") == 0) {
                assert_string_equal(attr_str(r->lr, "strata.gap.cause"), "ring_buffer_full");
                int64_t from = attr_int(r->lr, "strata.gap.start_time_unix_nano", -1);
                int64_t to = attr_int(r->lr, "strata.gap.end_time_unix_nano", -1);
                assert_true(from > 0 && to >= from);
                s->gap_lost += attr_int(r->lr, "strata.gap.lost_events", 0);
                s->gaps++;
                return;
        }
        const char *path = attr_str(r->lr, "file.path");
        if (strcmp(ev, "code.load") == 0 && attr_int(r->lr, "process.pid", -1) == s->pid && path &&
            strncmp(path, s->dir, strlen(s->dir)) == 0)
                s->delivered++;
}

/* A pipeline that stalls on its first batch: meanwhile nobody reads the ring buffer. */
static int stalled_once;
static int stalling_consume(void *data, st_batch *b) {
        if (!stalled_once++)
                usleep(700 * 1000);
        return capture_consume(data, b);
}

static void test_losses_are_counted(void **state) {
        enum { FILES = 2000 };
        struct harness h;
        struct storm s = { .pid = getpid() };
        char p[128];
        REQUIRE_ROOT();
        strcpy(s.dir, "/tmp/strata-storm-XXXXXX");
        assert_non_null(mkdtemp(s.dir));
        for (int i = 0; i < FILES; i++) {
                snprintf(p, sizeof(p), "%s/lib%d.so", s.dir, i);
                make_file(p);
        }
        /* one page of ring buffer, and a pipeline that stalls as the storm begins */
        stalled_once = 0;
        rx_start_with(&h, "flush_interval: 100ms\nevents: [code]\nring_buffer_size: 4KiB\nwakeup_bytes: 0\nmax_batch_records: 1\n",
                      stalling_consume, NULL);
        snprintf(p, sizeof(p), "%s/first.so", s.dir);
        make_file(p); /* the event that stalls the reader */
        usleep(100 * 1000);
        for (int i = 0; i < FILES; i++) {
                snprintf(p, sizeof(p), "%s/lib%d.so", s.dir, i);
                int fd = open(p, O_RDONLY | O_CLOEXEC);
                assert_true(fd >= 0);
                close(fd);
        }
        usleep(1000 * 1000); /* the stall ends; a flush interval or two: the losses are read and told */
        rx_stop(&h);
        each_record(&h, storm_match, &s);
        int64_t lost = metric(&h, "ebpf_lost_events_total");
        print_message("storm: %d files, %zu delivered, %lld lost (%d gap records)\n", FILES, s.delivered,
                      (long long) lost, s.gaps);
        assert_true(lost > 0);
        assert_true(s.gaps > 0);
        assert_int_equal(s.gap_lost, lost);
        /* lost counts every event of the host that did not fit; ours are among them */
        assert_true(s.delivered < FILES);
        assert_true((int64_t) s.delivered + lost >= FILES);
        rx_free(&h);
        char cmd[96];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", s.dir);
        assert_int_equal(system(cmd), 0);
}

/* Refusals: the pipeline pushes back twice; the records refused are told as one
 * pipeline_refused gap once it takes data again, and they add up: a gap record refused along
 * with the events stands for what it told of, not for one event. */
static int refusals_left;
static size_t refused_items, refused_gap_records;

static void count_gaps(const struct rec *r, void *ctx) {
        if (strcmp(attr_str(r->lr, "event.name"), "strata.gap") == 0)
                (*(size_t *) ctx)++;
}

static int refusing_consume(void *data, st_batch *b) {
        if (refusals_left > 0) {
                refusals_left--;
                struct harness tmp = { 0 };
                tmp.cap.n = 1;
                tmp.cap.v[0] = b;
                size_t gaps = 0;
                each_record(&tmp, count_gaps, &gaps);
                refused_items += b->items;
                refused_gap_records += gaps;
                return -ENOBUFS;
        }
        return capture_consume(data, b);
}

struct refused_gaps {
        int64_t lost;
        int n;
};

static void sum_refused_gaps(const struct rec *r, void *ctx) {
        struct refused_gaps *g = ctx;
        if (strcmp(attr_str(r->lr, "event.name"), "strata.gap") == 0 &&
            strcmp(attr_str(r->lr, "strata.gap.cause"), "pipeline_refused") == 0) {
                g->lost += attr_int(r->lr, "strata.gap.lost_events", 0);
                g->n++;
        }
}

static void test_refusals_are_told(void **state) {
        struct harness h;
        char d[] = "/tmp/strata-refuse-XXXXXX", p[128];
        REQUIRE_ROOT();
        assert_non_null(mkdtemp(d));
        refusals_left = 2;
        refused_items = refused_gap_records = 0;
        rx_start_with(&h, "flush_interval: 100ms\nevents: [code]\nmax_batch_records: 10\n", refusing_consume, NULL);
        for (int i = 0; i < 100; i++) {
                snprintf(p, sizeof(p), "%s/lib%d.so", d, i);
                make_file(p);
        }
        usleep(300 * 1000);
        rx_stop(&h);
        struct refused_gaps g = { 0 };
        each_record(&h, sum_refused_gaps, &g);
        assert_int_equal(refusals_left, 0);
        assert_true(refused_items > 0);
        assert_int_equal(atomic_load(&h.tel.sig[ST_LOGS].refused), refused_items);
        assert_int_equal(g.n, 1);
        assert_int_equal(g.lost, (int64_t) (refused_items - refused_gap_records));
        rx_free(&h);
        char cmd[96];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
        assert_int_equal(system(cmd), 0);
}

int main(void) {
        st_log_setup(ST_LOG_INFO, ST_LOG_TEXT);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_code_ground_truth),
                cmocka_unit_test(test_code_tp_btf),
                cmocka_unit_test(test_code_tp_without_btf),
                cmocka_unit_test(test_code_raw_tp_fallback),
                cmocka_unit_test(test_losses_are_counted),
                cmocka_unit_test(test_refusals_are_told),
        };
        announce_skips("test_ebpf_code");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
