/* The ebpf receiver end to end, with real BPF programs in this kernel (needs root; skipped,
 * saying so, only without it). A workload with known ground truth — N fork+exec of /bin/sh
 * with known argv and exit codes — must come out as exactly those process.fork, process.exec
 * and process.exit records, with the right pids, argv and codes, and nothing lost. Then the
 * probe-and-fallback: a refused tp_btf program falls back to raw_tp, a hook with no loadable
 * program is reported off while the others run, and forcing raw_tp works. Then the filters. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <grp.h>
#include <sys/stat.h>

#include "cgroup.h"

#include "ebpf_test.h"

#define N_CHILDREN 8

/* ---- the workload ---------------------------------------------------------------------------- */

struct child {
        pid_t pid;
        int code;
        char tag[32];
        int forks, execs, exits;
        bool argv_ok, path_ok, ppid_ok, resource_ok;
};

struct truth {
        struct child c[N_CHILDREN];
        pid_t self;
        int gaps;
        int other_uid_records;
        uid_t only_uid;
};

/* N fork + exec of /bin/sh -c 'exit CODE' TAG, as uid (when >= 0), and waits for them. */
static void workload(struct truth *t, int uid) {
        t->self = getpid();
        for (int i = 0; i < N_CHILDREN; i++) {
                struct child *c = &t->c[i];
                c->code = 10 + i;
                snprintf(c->tag, sizeof(c->tag), "strata-test-%d-%d", (int) getpid(), i);
                pid_t pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        char script[32];
                        snprintf(script, sizeof(script), "exit %d", c->code);
                        if (uid >= 0 && setuid((uid_t) uid) < 0)
                                _exit(127);
                        execl("/bin/sh", "/bin/sh", "-c", script, c->tag, (char *) NULL);
                        _exit(127);
                }
                c->pid = pid;
        }
        for (int i = 0; i < N_CHILDREN; i++) {
                int status;
                assert_int_equal(waitpid(t->c[i].pid, &status, 0), t->c[i].pid);
                assert_true(WIFEXITED(status));
                assert_int_equal(WEXITSTATUS(status), t->c[i].code);
        }
}

static void match(const struct rec *r, void *ctx) {
        struct truth *t = ctx;
        const st_log_record *lr = r->lr;
        const char *ev = attr_str(lr, "event.name");
        assert_non_null(ev);
        assert_string_equal(ev, lr->event_name);
        assert_true(lr->time_unix_nano > UINT64_C(1700000000) * 1000000000);
        if (strcmp(ev, "strata.gap") == 0) {
                t->gaps++;
                return;
        }
        int64_t pid = attr_int(lr, "process.pid", -1);
        for (int i = 0; i < N_CHILDREN; i++) {
                struct child *c = &t->c[i];
                if (pid != c->pid)
                        continue;
                const st_any_value *rp = attr_get((st_key_value *const *) r->res, r->n_res, "process.pid");
                if (strcmp(ev, "process.fork") == 0) {
                        c->forks++;
                        c->ppid_ok = attr_int(lr, "process.parent_pid", -1) == t->self;
                        /* the resource of a fork is the parent */
                        c->resource_ok = rp && rp->int_value == t->self;
                } else if (strcmp(ev, "process.exec") == 0) {
                        c->execs++;
                        const char *path = attr_str(lr, "process.executable.path");
                        struct stat sh;
                        c->path_ok = path && strcmp(path, "/bin/sh") == 0 && stat("/bin/sh", &sh) == 0 &&
                                     attr_int(lr, "strata.process.executable.inode", -1) == (int64_t) sh.st_ino;
                        char want[96];
                        snprintf(want, sizeof(want), "/bin/sh -c exit %d %s", c->code, c->tag);
                        const char *line = attr_str(lr, "process.command_line");
                        const st_any_value *args = attr_get(lr->attributes, lr->n_attributes, "process.command_args");
                        c->argv_ok = line && strcmp(line, want) == 0 && args &&
                                     args->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE &&
                                     args->array_value->n_values == 4 &&
                                     strcmp(args->array_value->values[3]->string_value, c->tag) == 0;
                        c->ppid_ok = c->ppid_ok && attr_int(lr, "process.parent_pid", -1) == t->self;
                        const st_any_value *rline = attr_get((st_key_value *const *) r->res, r->n_res, "process.command_line");
                        c->resource_ok = c->resource_ok && rp && rp->int_value == c->pid && rline &&
                                         strcmp(rline->string_value, want) == 0;
                } else if (strcmp(ev, "process.exit") == 0) {
                        c->exits++;
                        assert_int_equal(attr_int(lr, "process.exit.code", -1), c->code);
                        assert_true(attr_int(lr, "strata.process.duration_ns", -1) > 0);
                } else
                        fail_msg("unexpected event %s", ev);
        }
}

static void check_children(struct truth *t, bool forks, bool execs) {
        for (int i = 0; i < N_CHILDREN; i++) {
                struct child *c = &t->c[i];
                if (forks) {
                        assert_int_equal(c->forks, 1);
                        assert_true(c->ppid_ok);
                }
                if (execs) {
                        assert_int_equal(c->execs, 1);
                        assert_true(c->argv_ok);
                        assert_true(c->path_ok);
                } else
                        assert_int_equal(c->execs, 0);
                if (forks && execs)
                        assert_true(c->resource_ok);
                assert_int_equal(c->exits, 1);
        }
        assert_int_equal(t->gaps, 0);
}

static const char *const YAML = "flush_interval: 50ms\nevents: [process]\n";

static void test_ground_truth(void **state) {
        struct harness h;
        struct truth t = { 0 };
        REQUIRE_ROOT();
        rx_start(&h, YAML);
        assert_int_equal(metric(&h, "ebpf_up"), 1);
        assert_int_equal(metric(&h, "ebpf_hooks_attached"), 3);
        workload(&t, -1);
        rx_stop(&h);
        each_record(&h, match, &t);
        check_children(&t, true, true);
        assert_int_equal(metric(&h, "ebpf_lost_events_total"), 0);
        assert_int_equal(metric(&h, "ebpf_decode_errors_total"), 0);
        assert_true(metric(&h, "ebpf_processes") > 0);
        assert_int_equal(atomic_load(&h.tel.sig[ST_LOGS].accepted), h.cap.items);
        rx_free(&h);
}

/* The process workload with these programs made to fail to load: the hooks that remain
 * attached and whether exec records are expected. */
static void run_broken(const char *broken, int64_t hooks, bool execs) {
        struct harness h;
        struct truth t = { 0 };
        setenv("STRATA_TEST_EBPF_BREAK_PROGRAM", broken, 1);
        rx_start(&h, YAML);
        unsetenv("STRATA_TEST_EBPF_BREAK_PROGRAM");
        assert_int_equal(metric(&h, "ebpf_up"), 1);
        assert_int_equal(metric(&h, "ebpf_hooks_attached"), hooks);
        workload(&t, -1);
        rx_stop(&h);
        each_record(&h, match, &t);
        check_children(&t, true, execs);
        rx_free(&h);
}

/* tp_btf refused: raw_tp gives the same facts */
static void test_fallback_to_raw_tp(void **state) {
        REQUIRE_ROOT();
        run_broken("exec_btf,exit_btf", 3, true);
}

/* no program for exec loads: exec is reported off, fork and exit run */
static void test_hook_off_others_run(void **state) {
        REQUIRE_ROOT();
        run_broken("exec_btf,exec_raw", 2, false);
}

static void test_nothing_loads_degrades(void **state) {
        struct harness h;
        REQUIRE_ROOT();
        setenv("STRATA_TEST_EBPF_BREAK_PROGRAM", "fork_btf,fork_raw,exec_btf,exec_raw,exit_btf,exit_raw", 1);
        rx_start(&h, YAML); /* start succeeds: the agent runs on without kernel collection */
        unsetenv("STRATA_TEST_EBPF_BREAK_PROGRAM");
        assert_int_equal(metric(&h, "ebpf_up"), 0);
        rx_stop(&h);
        rx_free(&h);
}

/* Without privileges (the hardened-node and Fargate case): start succeeds, says why kernel
 * collection is off, and the process table still comes from /proc. */
static void test_unprivileged_degrades(void **state) {
        REQUIRE_ROOT();
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct harness h;
                if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(10);
                rx_start(&h, YAML);
                if (metric(&h, "ebpf_up") != 0)
                        _exit(11);
                if (metric(&h, "ebpf_hooks_attached") != 0)
                        _exit(12);
                if (metric(&h, "ebpf_processes") <= 0) /* /proc still gave the process table */
                        _exit(13);
                rx_stop(&h);
                _exit(0);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_forced_raw_tp(void **state) {
        struct harness h;
        struct truth t = { 0 };
        REQUIRE_ROOT();
        rx_start(&h, "flush_interval: 50ms\nevents: [process]\nprogram_kind: raw_tp\nwakeup_bytes: 0\n");
        assert_int_equal(metric(&h, "ebpf_hooks_attached"), 3);
        workload(&t, -1);
        rx_stop(&h);
        each_record(&h, match, &t);
        check_children(&t, true, true);
        rx_free(&h);
}

static void only_uid(const struct rec *r, void *ctx) {
        struct truth *t = ctx;
        if (attr_int(r->lr, "process.user.id", (int64_t) t->only_uid) != (int64_t) t->only_uid)
                t->other_uid_records++;
}

static void test_uid_filter(void **state) {
        struct harness h;
        struct truth t = { .only_uid = 65534 };
        REQUIRE_ROOT();
        rx_start(&h, "flush_interval: 50ms\nevents: [process]\nfilters: { uid: 65534 }\n");
        workload(&t, 65534);
        rx_stop(&h);
        each_record(&h, match, &t);
        each_record(&h, only_uid, &t);
        for (int i = 0; i < N_CHILDREN; i++) {
                assert_int_equal(t.c[i].forks, 0); /* the parent (uid 0) forked */
                assert_int_equal(t.c[i].execs, 1);
                assert_int_equal(t.c[i].exits, 1);
        }
        assert_int_equal(t.other_uid_records, 0);
        rx_free(&h);
}

struct cg_check {
        pid_t pid;
        int64_t cgroup_id;
        int found;
        const char *container_id, *runtime, *pod_uid;
};

static const char *res_str(const struct rec *r, const char *key) {
        const st_any_value *v = attr_get((st_key_value *const *) r->res, r->n_res, key);
        return v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE ? v->string_value : "";
}

/* The exec record's resource carries the cgroup id of where the process runs. */
static void resource_cgroup(const struct rec *r, void *ctx) {
        struct cg_check *c = ctx;
        if (strcmp(attr_str(r->lr, "event.name"), "process.exec") != 0 || attr_int(r->lr, "process.pid", -1) != c->pid)
                return;
        const st_any_value *id = attr_get((st_key_value *const *) r->res, r->n_res, "strata.cgroup.id");
        c->found++;
        c->cgroup_id = id ? id->int_value : -1;
        c->container_id = res_str(r, "container.id");
        c->runtime = res_str(r, "container.runtime.name");
        c->pod_uid = res_str(r, "k8s.pod.uid");
}

/* The cgroup filter and container identity, end to end without a container engine: a cgroup
 * whose path is the one kubelet (systemd driver) and containerd give a container, one child
 * moved into it before it execs, and only that child seen, with its container and pod. */
static void test_cgroup_filter(void **state) {
        char mount[256], dir[1024], pod_dir[1024], procs[1100], yaml[1200], rel[256], id[65], pod[64], pod_slice[128];
        REQUIRE_ROOT();
        if (st_cgroup2_mount("/proc/self/mounts", mount, sizeof(mount)) < 0)
                skip();
        snprintf(id, sizeof(id), "%08x%056d", (unsigned) getpid(), 7);
        snprintf(pod, sizeof(pod), "%08x-1c2f-4e6a-9b8d-0a1b2c3d4e5f", (unsigned) getpid());
        snprintf(pod_slice, sizeof(pod_slice), "/strata-test.slice/kubepods-besteffort-pod%08x_1c2f_4e6a_9b8d_0a1b2c3d4e5f.slice",
                 (unsigned) getpid());
        snprintf(rel, sizeof(rel), "%s/cri-containerd-%s.scope", pod_slice, id);
        snprintf(dir, sizeof(dir), "%s/strata-test.slice", mount);
        mkdir(dir, 0755);
        snprintf(pod_dir, sizeof(pod_dir), "%s%s", mount, pod_slice);
        assert_int_equal(mkdir(pod_dir, 0755), 0);
        snprintf(dir, sizeof(dir), "%s%s", mount, rel);
        assert_int_equal(mkdir(dir, 0755), 0);
        snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);

        struct harness h;
        snprintf(yaml, sizeof(yaml), "flush_interval: 50ms\nevents: [process]\nfilters: { cgroups: [\"%s\"] }\n", rel);
        rx_start(&h, yaml);
        int go[2];
        assert_int_equal(pipe(go), 0);
        pid_t in = fork(), out;
        assert_true(in >= 0);
        if (in == 0) {
                char c;
                close(go[1]);
                if (read(go[0], &c, 1) != 1) /* moved into the cgroup by now */
                        _exit(126);
                execl("/bin/sh", "/bin/sh", "-c", "exit 3", "in-cgroup", (char *) NULL);
                _exit(127);
        }
        close(go[0]);
        FILE *f = fopen(procs, "w");
        assert_non_null(f);
        fprintf(f, "%d\n", (int) in);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(write(go[1], "x", 1), 1);
        close(go[1]);
        out = fork(); /* the same, outside the cgroup */
        if (out == 0) {
                execl("/bin/sh", "/bin/sh", "-c", "exit 4", "outside", (char *) NULL);
                _exit(127);
        }
        int st;
        assert_int_equal(waitpid(in, &st, 0), in);
        assert_int_equal(WEXITSTATUS(st), 3);
        assert_int_equal(waitpid(out, &st, 0), out);
        rx_stop(&h);

        struct truth t = { 0 };
        t.c[0].pid = in;
        t.c[0].code = 3;
        snprintf(t.c[0].tag, sizeof(t.c[0].tag), "in-cgroup");
        t.c[1].pid = out;
        t.c[1].code = 4;
        t.self = getpid();
        each_record(&h, match, &t);
        assert_int_equal(t.c[0].execs, 1);
        assert_int_equal(t.c[0].exits, 1);
        assert_int_equal(t.c[1].execs, 0);
        assert_int_equal(t.c[1].exits, 0);
        struct stat cg;
        struct cg_check cc = { .pid = in };
        assert_int_equal(stat(dir, &cg), 0);
        each_record(&h, resource_cgroup, &cc);
        assert_int_equal(cc.found, 1);
        assert_int_equal(cc.cgroup_id, (int64_t) cg.st_ino);
        assert_string_equal(cc.container_id, id);
        assert_string_equal(cc.runtime, "containerd");
        assert_string_equal(cc.pod_uid, pod);
        rx_free(&h);
        assert_int_equal(rmdir(dir), 0);
        assert_int_equal(rmdir(pod_dir), 0);
}

/* Runs /bin/sh -c "exit 0" tagged tag, moved into the cgroup whose cgroup.procs is procs
 * (NULL: where we are) before it execs; returns its pid once it has exited. */
static pid_t exec_in(const char *procs, const char *tag) {
        int go[2];
        assert_int_equal(pipe(go), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char c;
                close(go[1]);
                if (read(go[0], &c, 1) != 1)
                        _exit(126);
                execl("/bin/sh", "/bin/sh", "-c", "exit 0", tag, (char *) NULL);
                _exit(127);
        }
        close(go[0]);
        if (procs) {
                FILE *f = fopen(procs, "w");
                assert_non_null(f);
                fprintf(f, "%d\n", (int) pid);
                assert_int_equal(fclose(f), 0);
        }
        assert_int_equal(write(go[1], "x", 1), 1);
        close(go[1]);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_int_equal(WEXITSTATUS(st), 0);
        return pid;
}

/* Hybrid hosts whose container engine uses v1 (docker's cgroupfs driver): the container is
 * known from the memory controller's v1 cgroup, which the exec record carries by id. Two
 * processes exec'd in a cgroup named like docker's (the second answered from the cache of
 * that id), then one outside it, which must not inherit the cached answer. */
static void test_v1_memcg_container(void **state) {
        char mount[256], base[512], dkr[600], dir[700], procs[800], id[65];
        REQUIRE_ROOT();
        if (st_cgroup_v1_mount("/proc/self/mounts", "memory", mount, sizeof(mount)) < 0) {
                print_message("no v1 memory hierarchy on this host: skipped\n");
                skip();
        }
        snprintf(id, sizeof(id), "%08x%056d", (unsigned) getpid(), 9);
        snprintf(base, sizeof(base), "%s/strata-test-%d", mount, (int) getpid());
        snprintf(dkr, sizeof(dkr), "%s/docker", base);
        snprintf(dir, sizeof(dir), "%s/%s", dkr, id);
        snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        assert_int_equal(mkdir(base, 0755), 0);
        assert_int_equal(mkdir(dkr, 0755), 0);
        assert_int_equal(mkdir(dir, 0755), 0);

        /* No /proc to read (proc_root names nothing): the container can only come from the
         * memory cgroup id that the exec record carries; both kinds of exec program. */
        static const char *const kinds[] = { "", "program_kind: raw_tp\n" };
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
                char yaml[256];
                snprintf(yaml, sizeof(yaml), "flush_interval: 50ms\nevents: [process]\nproc_root: /nonexistent-strata\n%s",
                         kinds[k]);
                struct harness h;
                rx_start(&h, yaml);
                pid_t a = exec_in(procs, "memcg-a"), b = exec_in(procs, "memcg-b"), c = exec_in(NULL, "memcg-host");
                rx_stop(&h);

                struct cg_check ca = { .pid = a }, cb = { .pid = b }, cc = { .pid = c };
                each_record(&h, resource_cgroup, &ca);
                each_record(&h, resource_cgroup, &cb);
                each_record(&h, resource_cgroup, &cc);
                assert_int_equal(ca.found, 1);
                assert_int_equal(cb.found, 1);
                assert_int_equal(cc.found, 1);
                assert_string_equal(ca.container_id, id);
                assert_string_equal(ca.runtime, "docker");
                assert_string_equal(cb.container_id, id);
                assert_string_equal(cc.container_id, "");
                rx_free(&h);
        }
        assert_int_equal(rmdir(dir), 0);
        assert_int_equal(rmdir(dkr), 0);
        assert_int_equal(rmdir(base), 0);
}

/* A multi-threaded process exits once, whichever of its threads goes last. */
static void *sleeper(void *arg) {
        (void) arg;
        for (;;)
                pause();
        return NULL;
}

struct exits {
        pid_t pid;
        int exits;
        int64_t code;
};

static void count_exits(const struct rec *r, void *ctx) {
        struct exits *e = ctx;
        if (strcmp(attr_str(r->lr, "event.name"), "process.exit") == 0 && attr_int(r->lr, "process.pid", -1) == e->pid) {
                e->exits++;
                e->code = attr_int(r->lr, "process.exit.code", -1);
        }
}

static void test_threaded_exit_once(void **state) {
        struct harness h;
        REQUIRE_ROOT();
        rx_start(&h, YAML);
        struct exits e[4] = { 0 };
        for (int round = 0; round < 4; round++) {
                pid_t pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        pthread_t th;
                        for (int i = 0; i < 16; i++)
                                if (pthread_create(&th, NULL, sleeper, NULL) != 0)
                                        _exit(99);
                        usleep(20 * 1000);
                        _exit(5); /* exit_group: every thread dies at once (and no LeakSanitizer
                                   * pass in this forked copy of the test) */
                }
                e[round].pid = pid;
                int st;
                assert_int_equal(waitpid(pid, &st, 0), pid);
                assert_int_equal(WEXITSTATUS(st), 5);
        }
        rx_stop(&h);
        for (int round = 0; round < 4; round++) {
                each_record(&h, count_exits, &e[round]);
                assert_int_equal(e[round].exits, 1);
                assert_int_equal(e[round].code, 5);
        }
        rx_free(&h);
}

/* exec("./sh") from another directory: the record names the file, not the argument. */
struct relpath {
        pid_t pid;
        char path[512];
        int execs;
};

static void find_exec(const struct rec *r, void *ctx) {
        struct relpath *x = ctx;
        const char *line = attr_str(r->lr, "process.command_line");
        /* the shell's own exec (what it runs later is not what this test is about) */
        if (strcmp(attr_str(r->lr, "event.name"), "process.exec") == 0 && attr_int(r->lr, "process.pid", -1) == x->pid &&
            line && strncmp(line, "./sh -c", 7) == 0) {
                snprintf(x->path, sizeof(x->path), "%s", attr_str(r->lr, "process.executable.path"));
                x->execs++;
        }
}

static void test_relative_exec_path(void **state) {
        struct harness h;
        struct relpath x = { 0 };
        char real[512];
        REQUIRE_ROOT();
        assert_non_null(realpath("/bin/sh", real));
        rx_start(&h, YAML);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (chdir("/bin") < 0)
                        _exit(126);
                /* two commands: the shell forks sleep rather than exec'ing it in its place */
                execl("./sh", "./sh", "-c", "sleep 0.3; exit 0", (char *) NULL);
                _exit(127);
        }
        x.pid = pid;
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        rx_stop(&h);
        each_record(&h, find_exec, &x);
        assert_int_equal(x.execs, 1);
        assert_string_equal(x.path, real);
        rx_free(&h);
}

static void test_config_errors(void **state) {
        expect_config_error(&st_receiver_ebpf, "ring_buffer_size: 12KiB\n", "power of two");
        expect_config_error(&st_receiver_ebpf, "wakeup_bytes: 8MiB\n", "smaller than ring_buffer_size");
        expect_config_error(&st_receiver_ebpf, "filters: { comms: [averyveryverylongname] }\n", "longer than a comm");
        expect_config_error(&st_receiver_ebpf, "program_kind: kprobe\n", "program_kind");
        expect_config_error(&st_receiver_ebpf, "max_args_bytes: 5000\n", "max_args_bytes");
        expect_config_error(&st_receiver_ebpf, "nope: 1\n", "nope");
}

int main(void) {
        st_log_setup(ST_LOG_INFO, ST_LOG_TEXT);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config_errors),
                cmocka_unit_test(test_ground_truth),
                cmocka_unit_test(test_fallback_to_raw_tp),
                cmocka_unit_test(test_hook_off_others_run),
                cmocka_unit_test(test_nothing_loads_degrades),
                cmocka_unit_test(test_unprivileged_degrades),
                cmocka_unit_test(test_forced_raw_tp),
                cmocka_unit_test(test_uid_filter),
                cmocka_unit_test(test_cgroup_filter),
                cmocka_unit_test(test_v1_memcg_container),
                cmocka_unit_test(test_threaded_exit_once),
                cmocka_unit_test(test_relative_exec_path),
        };
        announce_skips("test_ebpf_receiver");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
