/* The context store's process table: seeding from a /proc tree (a fake one made here, and the
 * real one), fork/exec/exit, pid reuse, expiry, and readers racing a writer. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "process_table.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"

static uint64_t tick(void) { return UINT64_C(1000000000) / (uint64_t) sysconf(_SC_CLK_TCK); }

static void put(const char *dir, const char *name, const void *data, size_t n) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, n, f), n);
        fclose(f);
}

/* A /proc/PID with stat, status, cmdline and exe as the kernel writes them. */
static void fake_proc(const char *root, unsigned pid, const char *comm, unsigned ppid, unsigned long long start_ticks,
                      const char *cmdline, size_t cmdline_len, const char *exe) {
        char dir[512], stat[512], status[256];
        snprintf(dir, sizeof(dir), "%s/%u", root, pid);
        assert_int_equal(mkdir(dir, 0755), 0);
        /* fields 1..22: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt
         * cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime */
        snprintf(stat, sizeof(stat), "%u (%s) S %u 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 %llu 1000 10 ...\n", pid,
                 comm, ppid, start_ticks);
        put(dir, "stat", stat, strlen(stat));
        snprintf(status, sizeof(status), "Name:\t%s\nUmask:\t0022\nState:\tS\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\n",
                 comm);
        put(dir, "status", status, strlen(status));
        put(dir, "cmdline", cmdline, cmdline_len);
        if (exe) {
                char link[600];
                snprintf(link, sizeof(link), "%s/exe", dir);
                assert_int_equal(symlink(exe, link), 0);
        }
}

static char root[] = "/tmp/strata-proc-XXXXXX";

static int setup(void **state) {
        assert_non_null(mkdtemp(root));
        char self[600];
        snprintf(self, sizeof(self), "%s/self", root);
        mkdir(self, 0755);
        put(self, "mounts", "", 0); /* no cgroup2 here */
        static const char c1[] = "/usr/sbin/nginx\0-g\0daemon off;";
        fake_proc(root, 100, "nginx", 1, 5000, c1, sizeof(c1), "/usr/sbin/nginx");
        /* a comm with a space and a parenthesis, as a process may name itself */
        static const char c2[] = "python3\0app.py";
        fake_proc(root, 200, "my (app) x", 100, 6000, c2, sizeof(c2), "/usr/bin/python3.11");
        fake_proc(root, 2, "kthreadd", 0, 1, "", 0, NULL); /* kernel thread: no cmdline, no exe */
        return 0;
}

static int teardown(void **state) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
        return system(cmd) == 0 ? 0 : -1;
}

static void test_seed(void **state) {
        struct st_proctab *t;
        struct st_process p;
        assert_int_equal(st_proctab_new(&t), 0);
        assert_int_equal(st_proctab_seed(t, root), 3);
        assert_int_equal(st_proctab_size(t), 3);

        assert_int_equal(st_proctab_get(t, 100, 0, &p), 0);
        assert_string_equal(p.comm, "nginx");
        assert_int_equal(p.ppid, 1);
        assert_int_equal(p.uid, 1000);
        assert_int_equal(p.gid, 100);
        assert_int_equal(p.start_ns, 5000 * tick());
        assert_string_equal(p.exe, "/usr/sbin/nginx");
        assert_string_equal(p.cmdline, "/usr/sbin/nginx -g daemon off;");
        assert_true(p.from_proc);
        st_process_clear(&p);

        assert_int_equal(st_proctab_get(t, 200, 0, &p), 0);
        assert_string_equal(p.comm, "my (app) x");
        assert_int_equal(p.ppid, 100);
        assert_string_equal(p.cmdline, "python3 app.py");
        st_process_clear(&p);

        assert_int_equal(st_proctab_get(t, 2, 0, &p), 0);
        assert_null(p.exe);
        assert_null(p.cmdline);
        st_process_clear(&p);

        /* an exact start from BPF (ns) matches the /proc one (ticks) */
        assert_int_equal(st_proctab_get(t, 100, 5000 * tick() + 12345, &p), 0);
        st_process_clear(&p);
        assert_int_equal(st_proctab_get(t, 100, 5001 * tick(), &p), -ENOENT);
        assert_int_equal(st_proctab_get(t, 999, 0, &p), -ENOENT);

        /* seeding again keeps what is known */
        assert_int_equal(st_proctab_seed(t, root), 0);
        assert_int_equal(st_proctab_seed(t, "/nonexistent"), -ENOENT);
        st_proctab_free(t);
}

static void test_real_proc(void **state) {
        struct st_proctab *t;
        struct st_process p;
        assert_int_equal(st_proctab_new(&t), 0);
        assert_true(st_proctab_seed(t, "/proc") > 0);
        assert_int_equal(st_proctab_get(t, (uint32_t) getpid(), 0, &p), 0);
        assert_int_equal(p.ppid, getppid());
        assert_non_null(p.exe);
        assert_non_null(strstr(p.exe, "test_process_table"));
        assert_non_null(strstr(p.cmdline, "test_process_table"));
        st_process_clear(&p);
        st_proctab_free(t);
}

static void test_lifecycle(void **state) {
        struct st_proctab *t;
        struct st_process p;
        assert_int_equal(st_proctab_new(&t), 0);
        assert_int_equal(st_proctab_seed(t, root), 3);

        /* fork: the child is its parent's image */
        assert_int_equal(st_proctab_fork(t, 100, 101, 300, 7000 * tick() + 5), 0);
        assert_int_equal(st_proctab_get(t, 300, 0, &p), 0);
        assert_int_equal(p.ppid, 100);
        assert_string_equal(p.comm, "nginx");
        assert_string_equal(p.exe, "/usr/sbin/nginx");
        assert_false(p.from_proc);
        assert_int_equal(p.fork_tid, 101);
        st_process_clear(&p);

        /* exec: a new image, same process */
        struct st_process e = { .pid = 300, .ppid = 100, .start_ns = 7000 * tick() + 5, .uid = 33, .exe = "/bin/sh",
                                .cmdline = "sh -c true" };
        strcpy(e.comm, "sh");
        assert_int_equal(st_proctab_exec(t, &e), 0);
        assert_int_equal(st_proctab_get(t, 300, 7000 * tick() + 5, &p), 0);
        assert_string_equal(p.exe, "/bin/sh");
        assert_string_equal(p.cmdline, "sh -c true");
        assert_int_equal(p.uid, 33);
        assert_int_equal(p.fork_tid, 101); /* who spawned it survives the exec */
        st_process_clear(&p);

        /* exit: still readable until it expires */
        assert_int_equal(st_proctab_exit(t, 300, 7000 * tick() + 5, 1 << 8, 1000), 0);
        assert_int_equal(st_proctab_get(t, 300, 0, &p), 0);
        assert_true(p.exited);
        assert_int_equal(p.exit_code, 1 << 8);
        st_process_clear(&p);
        assert_int_equal(st_proctab_exit(t, 300, 1, 0, 1000), -ENOENT); /* another process's start */
        assert_int_equal(st_proctab_expire(t, 999), 0);
        assert_int_equal(st_proctab_expire(t, 1001), 1);
        assert_int_equal(st_proctab_get(t, 300, 0, &p), -ENOENT);

        /* pid reuse: a fork of a new process with a known pid replaces the old one */
        assert_int_equal(st_proctab_fork(t, 1, 1, 200, 9000 * tick()), 0);
        assert_int_equal(st_proctab_get(t, 200, 0, &p), 0);
        assert_int_equal(p.ppid, 1);
        assert_int_equal(p.start_ns, 9000 * tick());
        assert_null(p.exe); /* parent 1 is unknown here */
        st_process_clear(&p);
        /* and an exec of an unknown process adds it */
        e.pid = 400;
        assert_int_equal(st_proctab_exec(t, &e), 0);
        assert_int_equal(st_proctab_size(t), 4);
        st_proctab_free(t);
}

static void test_reconcile(void **state) {
        struct st_proctab *t;
        struct st_process p;
        char cmd[128];
        assert_int_equal(st_proctab_new(&t), 0);
        assert_int_equal(st_proctab_seed(t, root), 3);
        /* a process the kernel told of, that /proc does not have: its exit was missed */
        assert_int_equal(st_proctab_fork(t, 100, 100, 555, 1234 * tick()), 0);
        /* pid 200 is reused by a younger process */
        assert_int_equal(st_proctab_exec(t, &(struct st_process) { .pid = 200, .start_ns = 1 * tick() }), 0);
        assert_int_equal(st_proctab_reconcile(t, root, 5000, 100), 2);
        assert_int_equal(st_proctab_get(t, 555, 0, &p), 0);
        assert_true(p.exited);
        assert_int_equal(p.exit_code, -1);
        assert_int_equal(p.exit_ns, 5000);
        st_process_clear(&p);
        assert_int_equal(st_proctab_get(t, 100, 0, &p), 0);
        assert_false(p.exited); /* still in /proc */
        st_process_clear(&p);
        /* a process that goes away */
        snprintf(cmd, sizeof(cmd), "rm -rf %s/2", root);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(st_proctab_reconcile(t, root, 6000, 100), 1);
        /* a pass checks at most max processes */
        assert_int_equal(st_proctab_reconcile(t, root, 6500, 0), 0);
        assert_int_equal(st_proctab_expire(t, 7000), 3);
        assert_int_equal(st_proctab_size(t), 1);
        st_proctab_free(t);
}

struct race {
        struct st_proctab *t;
        volatile int stop;
        size_t reads;
};

static void *reader(void *arg) {
        struct race *r = arg;
        while (!r->stop)
                for (uint32_t pid = 1000; pid < 1100; pid++) {
                        struct st_process p;
                        if (st_proctab_get(r->t, pid, 0, &p) == 0) {
                                assert_int_equal(p.pid, pid);
                                assert_string_equal(p.exe, "/bin/x");
                                st_process_clear(&p);
                                __atomic_fetch_add(&r->reads, 1, __ATOMIC_RELAXED);
                        }
                }
        return NULL;
}

static void test_concurrent(void **state) {
        struct race r = { 0 };
        pthread_t th[3];
        assert_int_equal(st_proctab_new(&r.t), 0);
        for (int i = 0; i < 3; i++)
                assert_int_equal(pthread_create(&th[i], NULL, reader, &r), 0);
        for (int round = 0; round < 200; round++)
                for (uint32_t pid = 1000; pid < 1100; pid++) {
                        struct st_process e = { .pid = pid, .start_ns = (uint64_t) round * tick(), .exe = "/bin/x" };
                        assert_int_equal(st_proctab_exec(r.t, &e), 0);
                        if (pid % 3 == 0)
                                st_proctab_exit(r.t, pid, 0, 0, (uint64_t) round);
                }
        /* On a busy machine the writer can finish before a reader ran: the readers must have
         * read at least once while the table is full, so wait for that (at most 10 s). */
        for (int i = 0; i < 10000 && !__atomic_load_n(&r.reads, __ATOMIC_RELAXED); i++)
                usleep(1000);
        st_proctab_expire(r.t, UINT64_MAX);
        r.stop = 1;
        for (int i = 0; i < 3; i++)
                pthread_join(th[i], NULL);
        assert_true(r.reads > 0);
        assert_int_equal(st_proctab_size(r.t), 100 - 33); /* 1002, 1005 … 1098 exited */
        st_proctab_free(r.t);
}

/* A pod's sandbox process is in no container; the pod's other processes are. */
static void test_sandbox(void **state) {
        (void) state;
        struct st_proctab *t;
        struct st_process p = { .pid = 700, .start_ns = 5 * tick() }, got;
        assert_int_equal(st_proctab_new(&t), 0);
        strcpy(p.comm, "pause");
        strcpy(p.container.id, "3f4f1c1e4a6b5c2d8e7f90a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6");
        assert_int_equal(st_proctab_exec(t, &p), 0);
        assert_int_equal(st_proctab_get(t, 700, 0, &got), 0);
        assert_false(st_container_known(&got.container));
        st_process_clear(&got);
        p.pid = 701;
        strcpy(p.comm, "nginx");
        assert_int_equal(st_proctab_exec(t, &p), 0);
        assert_int_equal(st_proctab_get(t, 701, 0, &got), 0);
        assert_string_equal(got.container.id, p.container.id);
        st_process_clear(&got);
        st_proctab_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_seed),
                cmocka_unit_test(test_real_proc),
                cmocka_unit_test(test_lifecycle),
                cmocka_unit_test(test_concurrent),
                cmocka_unit_test(test_reconcile),
                cmocka_unit_test(test_sandbox),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
