/* pid → container: cgroup lines as container engines, kubelet drivers and cgroup namespaces
 * write them on real hosts. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup.h"
#include "container.h"

#define ID "3f4f1c1e4a6b5c2d8e7f90a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6"
#define ID2 "9d2c1e0f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d"
#define UID "5d4b3a7e-1c2f-4e6a-9b8d-0a1b2c3d4e5f"
#define UID_ "5d4b3a7e_1c2f_4e6a_9b8d_0a1b2c3d4e5f"

struct row {
        const char *line;    /* a /proc/PID/cgroup text */
        const char *id;      /* NULL: no container */
        const char *runtime; /* NULL: not told by the path */
        const char *pod;     /* NULL: no pod */
};

static const struct row rows[] = {
        /* docker, systemd driver (cgroup v2) */
        { "0::/system.slice/docker-" ID ".scope\n", ID, "docker", NULL },
        /* docker, cgroupfs driver, v1 (hybrid: the v2 line stays at the root) */
        { "12:pids:/docker/" ID "\n11:memory:/docker/" ID "\n1:name=systemd:/docker/" ID "\n0::/\n", ID, "docker", NULL },
        /* docker, cgroupfs driver, v2 */
        { "0::/docker/" ID "\n", ID, "docker", NULL },
        /* containerd (CRI), systemd driver: the pod uid has underscores in slice names */
        { "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_ ".slice/cri-containerd-" ID
          ".scope\n",
          ID, "containerd", UID },
        { "0::/kubepods.slice/kubepods-pod" UID_ ".slice/cri-containerd-" ID ".scope\n", ID, "containerd", UID },
        /* CRI-O, systemd driver */
        { "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_ ".slice/crio-" ID ".scope\n", ID,
          "cri-o", UID },
        /* CRI-O's conmon: beside the container, not in it */
        { "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_ ".slice/crio-conmon-" ID
          ".scope\n",
          NULL, NULL, NULL },
        /* kubelet with the cgroupfs driver (runtime not in the path), v1 */
        { "11:cpuset:/kubepods/burstable/pod" UID "/" ID "\n5:memory:/kubepods/burstable/pod" UID "/" ID
          "\n0::/\n",
          ID, NULL, UID },
        { "0::/kubepods/besteffort/pod" UID "/" ID "\n", ID, NULL, UID },
        /* containerd's own systemd-driver naming (slice:runtime:id) */
        { "0::/system.slice/containerd.service/kubepods-burstable-pod" UID_ ".slice:cri-containerd:" ID "\n", ID,
          "containerd", UID },
        /* inside a cgroup namespace: relative to the namespace root */
        { "0::/../" ID "\n", ID, NULL, NULL },
        { "0::/../../kubepods-besteffort-pod" UID_ ".slice/cri-containerd-" ID ".scope\n", ID, "containerd", UID },
        /* podman and its conmon */
        { "0::/machine.slice/libpod-" ID ".scope/container\n", ID, "podman", NULL },
        { "0::/machine.slice/libpod-conmon-" ID ".scope\n", NULL, NULL, NULL },
        /* kind: a kubelet in a docker container; the innermost container is the process's */
        { "0::/docker/" ID2 "/kubepods/besteffort/pod" UID "/" ID "\n", ID, NULL, UID },
        /* ECS on Fargate */
        { "0::/ecs/0a1b2c3d4e5f60718293a4b5c6d7e8f9/0a1b2c3d4e5f60718293a4b5c6d7e8f9-1234567890\n",
          "0a1b2c3d4e5f60718293a4b5c6d7e8f9-1234567890", NULL, NULL },
        /* ECS on EC2 (docker ids) */
        { "0::/ecs/0a1b2c3d4e5f60718293a4b5c6d7e8f9/" ID "\n", ID, NULL, NULL },
        /* no container: host services, user sessions, the root, garbage */
        { "0::/system.slice/sshd.service\n", NULL, NULL, NULL },
        { "0::/user.slice/user-1000.slice/session-3.scope\n", NULL, NULL, NULL },
        { "0::/\n", NULL, NULL, NULL },
        { "12:pids:/\n0::/init.scope\n", NULL, NULL, NULL },
        { "", NULL, NULL, NULL },
        { "garbage without colons\n", NULL, NULL, NULL },
        /* near misses: an id one digit short, upper-case hex, a pod uid of the wrong length */
        { "0::/docker/" "3f4f1c1e4a6b5c2d8e7f90a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d" "\n", NULL, NULL, NULL },
        { "0::/docker/" "3F4F1C1E4A6B5C2D8E7F90A1B2C3D4E5F60718293A4B5C6D7E8F9012A3B4C5D6" "\n", NULL, NULL, NULL },
        { "0::/kubepods/pod1234/" ID "\n", ID, NULL, NULL },
};

static void test_table(void **state) {
        (void) state;
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                struct st_container_ref c;
                int r = st_container_from_cgroup_file(rows[i].line, &c);
                if (!rows[i].id) {
                        if (r != -ENOENT)
                                fail_msg("row %zu (%s): expected no container, got %s", i, rows[i].line, c.id);
                        continue;
                }
                if (r != 0)
                        fail_msg("row %zu (%s): no container found", i, rows[i].line);
                assert_string_equal(c.id, rows[i].id);
                if (rows[i].runtime)
                        assert_string_equal(c.runtime, rows[i].runtime);
                else
                        assert_null(c.runtime);
                assert_string_equal(c.pod_uid, rows[i].pod ? rows[i].pod : "");
        }
}

/* A /proc copy in dir (a mkdtemp template) with one process, 42, whose cgroup file is text. */
static void fake_proc(char *dir, const char *text) {
        char path[256];
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/42", dir);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/42/cgroup", dir);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static void fake_proc_remove(const char *dir) {
        char path[256];
        snprintf(path, sizeof(path), "%s/42/cgroup", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/42", dir);
        rmdir(path);
        rmdir(dir);
}

/* A /proc copy: the file is read from proc_root/PID/cgroup. */
static void test_of_pid(void **state) {
        (void) state;
        char dir[] = "/tmp/strata-container-XXXXXX";
        fake_proc(dir, "0::/system.slice/docker-" ID ".scope\n");

        struct st_container_ref c;
        assert_int_equal(st_container_of_pid(dir, 42, &c), 0);
        assert_string_equal(c.id, ID);
        assert_int_equal(st_container_of_pid(dir, 43, &c), -ESRCH);
        fake_proc_remove(dir);
}

/* resolve() by the id of a cgroup that names no container (ours, when the tests run outside
 * containers), with a /proc copy whose file has a v1 docker line: "none" alone on a v2-only
 * host, the v1 line's container on a hybrid one, the same on the first call and on the next
 * ones, which the cache answers (the cache itself is not observable from here). */
static void test_resolve_without_container_by_id(void **state) {
        (void) state;
        char mount[1024], self[4096], rel[4096];
        if (st_cgroup2_mount("/proc/self/mounts", mount, sizeof(mount)) < 0 ||
            st_cgroup2_path_of("/proc", (uint32_t) getpid(), self, sizeof(self)) < 0)
                skip();
        uint64_t id = st_cgroup2_id(mount, self);
        struct st_container_ref c;
        if (!id || st_cgroup2_path_of_id(mount, id, rel, sizeof(rel)) < 0 || st_container_from_path(rel, &c) == 0)
                skip(); /* no privilege to open by id, or we are in a container */

        /* a cgroup that reads back outside the mount (as in a cgroup namespace of our own,
         * where it reads back as "/"): no path, rather than a wrong one that would be cached */
        char other[1100];
        snprintf(other, sizeof(other), "/proc/self/root%s", mount);
        assert_int_equal(st_cgroup2_path_of_id(other, id, rel, sizeof(rel)), -EXDEV);

        char dir[] = "/tmp/strata-container-XXXXXX";
        fake_proc(dir, "0::/\n4:pids:/docker/" ID "\n");

        char text[4096];
        FILE *f = fopen("/proc/self/cgroup", "r");
        assert_non_null(f);
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[n] = '\0';
        bool v1 = strncmp(text, "0::", 3) != 0 || strstr(text, "\n") != text + n - 1;

        for (int i = 0; i < 3; i++) {
                int r = st_container_resolve(id, 0, dir, 42, &c);
                if (v1) {
                        assert_int_equal(r, 0);
                        assert_string_equal(c.id, ID);
                } else
                        assert_int_equal(r, -ENOENT);
        }
        fake_proc_remove(dir);
}

/* A v1 memory cgroup named like docker's, <memory mount>/<prefix><pid>/docker/ID2: skips the
 * test where there is no writable v1 memory hierarchy, or we are not root. */
struct memcg_fixture {
        char base_rel[64], rel[256]; /* relative to the mount: "/<prefix><pid>", rel + "/docker/ID2" */
        char base[1024], dkr[1100], cg[1200];
        uint64_t base_id, cg_id;     /* their cgroup ids (inode numbers) */
};

static void memcg_fixture_make(struct memcg_fixture *m, const char *prefix) {
        char mount[512];
        struct stat st;
        if (geteuid() != 0 || st_cgroup_v1_mount("/proc/self/mounts", "memory", mount, sizeof(mount)) < 0) {
                print_message("no v1 memory hierarchy here (or not root): skipped\n");
                skip();
        }
        snprintf(m->base_rel, sizeof(m->base_rel), "/%s%d", prefix, (int) getpid());
        snprintf(m->rel, sizeof(m->rel), "%s/docker/" ID2, m->base_rel);
        snprintf(m->base, sizeof(m->base), "%s%s", mount, m->base_rel);
        snprintf(m->dkr, sizeof(m->dkr), "%s/docker", m->base);
        snprintf(m->cg, sizeof(m->cg), "%s%s", mount, m->rel);
        if (mkdir(m->base, 0755) < 0 && (errno == EROFS || errno == EACCES || errno == EPERM)) {
                print_message("the memory hierarchy is not writable here: skipped\n");
                skip();
        }
        assert_int_equal(stat(m->base, &st), 0);
        m->base_id = (uint64_t) st.st_ino;
        assert_int_equal(mkdir(m->dkr, 0755), 0);
        assert_int_equal(mkdir(m->cg, 0755), 0);
        assert_int_equal(stat(m->cg, &st), 0);
        m->cg_id = (uint64_t) st.st_ino;
}

static void memcg_fixture_remove(const struct memcg_fixture *m) {
        assert_int_equal(rmdir(m->cg), 0);
        assert_int_equal(rmdir(m->dkr), 0);
        assert_int_equal(rmdir(m->base), 0);
}

/* Hybrid hosts: resolve() by the pair (v2 id, memory cgroup id). A real v1 memory cgroup named
 * like docker's, and a /proc copy that puts pid 42 in it. The memory cgroup is found by its id
 * (as v2 ones are), so the answer does not need /proc, and is kept: it outlives the cgroup. An
 * id that names no cgroup falls back to /proc, and is not kept. */
static void test_resolve_by_memcg(void **state) {
        (void) state;
        char text[512];
        struct memcg_fixture m;
        memcg_fixture_make(&m, "strata-test-");
        /* v2 ids no cgroup has (kernfs ids count up from 1): nothing is learnt by v2 */
        uint64_t memcg = m.cg_id, stale = memcg + 1000000, v2 = UINT64_MAX - 10;

        char dir[] = "/tmp/strata-container-XXXXXX";
        snprintf(text, sizeof(text), "4:memory:%s\n1:name=systemd:/\n0::/\n", m.rel);
        fake_proc(dir, text);
        struct st_container_ref c = { 0 };
        assert_int_equal(st_container_resolve(v2, stale, dir, 42, &c), 0); /* no such id: /proc */
        assert_string_equal(c.id, ID2);
        assert_int_equal(st_container_resolve(v2, memcg, dir, 42, &c), 0);
        assert_string_equal(c.id, ID2);
        fake_proc_remove(dir);
        c = (struct st_container_ref) { 0 };
        assert_int_equal(st_container_resolve(v2 + 1, memcg, dir, 42, &c), 0); /* by id, no /proc */
        assert_string_equal(c.id, ID2);
        assert_string_equal(c.runtime, "docker");
        assert_int_equal(st_container_resolve(v2, stale, dir, 42, &c), -ESRCH); /* was not kept */

        /* in no container */
        assert_int_equal(st_container_resolve(v2, m.base_id, dir, 42, &c), -ENOENT);

        memcg_fixture_remove(&m);
        /* the cgroup is gone: what was learnt about it stays; a new pair has nothing to go by */
        assert_int_equal(st_container_resolve(v2, memcg, dir, 42, &c), 0);
        assert_string_equal(c.id, ID2);
        assert_int_equal(st_container_resolve(v2 + 2, memcg, dir, 42, &c), -ESRCH);
}

/* Drops CAP_DAC_READ_SEARCH from the effective set: open_by_handle_at() then fails. */
static int drop_dac_read_search(void) {
        struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct data[2];
        if (syscall(SYS_capget, &hdr, data) < 0)
                return -1;
        data[CAP_DAC_READ_SEARCH / 32].effective &= ~(1u << (CAP_DAC_READ_SEARCH % 32));
        return (int) syscall(SYS_capset, &hdr, data);
}

/* Checks for the child below: a failed one exits with its line number. */
#define CHILD_CHECK(cond) do { if (!(cond)) _exit(__LINE__ % 250 + 1); } while (0)

/* Without CAP_DAC_READ_SEARCH, ids cannot be opened: resolve() reads /proc, and keeps, under
 * the pair, only what the memory line alone says and only when that line is the record's
 * cgroup. Runs in a child, which drops the capability. The runc case: cpuset already moved to
 * a container, memory not yet: this call answers the container, but the pair (whose memory
 * cgroup is the host's) must be kept as "none". */
static void test_resolve_by_memcg_from_proc(void **state) {
        (void) state;
        struct memcg_fixture m;
        memcg_fixture_make(&m, "strata-test-p");

        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                char text[512], dir[] = "/tmp/strata-container-XXXXXX", dir2[] = "/tmp/strata-container-XXXXXX";
                struct st_container_ref c;
                uint64_t memcg = m.cg_id, host = m.base_id, v2 = UINT64_MAX - 20;
                CHILD_CHECK(drop_dac_read_search() == 0);
                /* the container's memory cgroup: from /proc, kept */
                snprintf(text, sizeof(text), "4:memory:%s\n0::/\n", m.rel);
                fake_proc(dir, text);
                CHILD_CHECK(st_container_resolve(v2, memcg, dir, 42, &c) == 0 && strcmp(c.id, ID2) == 0);
                /* a stale id: answered from /proc, not kept */
                CHILD_CHECK(st_container_resolve(v2, memcg + 1000000, dir, 42, &c) == 0);
                fake_proc_remove(dir);
                CHILD_CHECK(st_container_resolve(v2, memcg, dir, 42, &c) == 0 && strcmp(c.id, ID2) == 0);
                CHILD_CHECK(st_container_resolve(v2, memcg + 1000000, dir, 42, &c) == -ESRCH);
                /* cpuset moved, memory not yet */
                snprintf(text, sizeof(text), "5:cpuset:/docker/" ID "\n4:memory:%s\n0::/\n", m.base_rel);
                fake_proc(dir2, text);
                CHILD_CHECK(st_container_resolve(v2 - 1, host, dir2, 42, &c) == 0 && strcmp(c.id, ID) == 0);
                fake_proc_remove(dir2);
                CHILD_CHECK(st_container_resolve(v2 - 1, host, dir2, 42, &c) == -ENOENT);
                _exit(0);
        }
        int status;
        assert_int_equal(waitpid(child, &status, 0), child);
        memcg_fixture_remove(&m);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("the child's check %d failed (status %#x)", WIFEXITED(status) ? WEXITSTATUS(status) : -1, status);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_of_pid),
                cmocka_unit_test(test_resolve_without_container_by_id),
                cmocka_unit_test(test_resolve_by_memcg),
                cmocka_unit_test(test_resolve_by_memcg_from_proc),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
