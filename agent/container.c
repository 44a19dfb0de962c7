#include "container.h"
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool is_hex(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

static bool is_digits(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return n > 0;
}

static bool has_prefix(const char *s, size_t n, const char *p) {
        size_t l = strlen(p);
        return n >= l && memcmp(s, p, l) == 0;
}

static bool has_suffix(const char *s, size_t n, const char *x) {
        size_t l = strlen(x);
        return n >= l && memcmp(s + n - l, x, l) == 0;
}

/* Docker, containerd and CRI-O ids: 64 lowercase hex digits. */
static bool is_engine_id(const char *s, size_t n) { return n == 64 && is_hex(s, n); }

/* ECS on Fargate: "<32 hex task id>-<digits>". */
static bool is_ecs_id(const char *s, size_t n) {
        return n > 33 && n <= ST_CONTAINER_ID_MAX && is_hex(s, 32) && s[32] == '-' && is_digits(s + 33, n - 33);
}

enum match { NO_MATCH, MATCH, HELPER };

/* One path component: is it a container's cgroup, and of which runtime? */
static enum match component(const char *c, size_t n, const char *parent, size_t parent_n, const char **ret_id,
                            size_t *ret_n, const char **ret_runtime) {
        static const struct {
                const char *prefix, *runtime;
        } scopes[] = {
                { "cri-containerd-", "containerd" },
                { "crio-", "cri-o" },
                { "docker-", "docker" },
                { "libpod-", "podman" },
        };
        /* conmon watches a container from beside it: a host process, not the container's */
        if (has_prefix(c, n, "crio-conmon-") || has_prefix(c, n, "libpod-conmon-"))
                return HELPER;
        if (has_suffix(c, n, ".scope"))
                for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++) {
                        size_t pl = strlen(scopes[i].prefix), idn = n - pl - strlen(".scope");
                        if (has_prefix(c, n, scopes[i].prefix) && n > pl + 6 && is_engine_id(c + pl, idn)) {
                                *ret_id = c + pl;
                                *ret_n = idn;
                                *ret_runtime = scopes[i].runtime;
                                return MATCH;
                        }
                }
        /* containerd with the systemd driver but its own naming: "<pod slice>:cri-containerd:<id>" */
        const char *colon = memchr(c, ':', n);
        if (colon) {
                const char *second = memchr(colon + 1, ':', (size_t) (c + n - colon - 1));
                if (second && is_engine_id(second + 1, (size_t) (c + n - second - 1))) {
                        size_t rn = (size_t) (second - colon - 1);
                        *ret_id = second + 1;
                        *ret_n = 64;
                        *ret_runtime = rn == strlen("cri-containerd") && memcmp(colon + 1, "cri-containerd", rn) == 0 ? "containerd"
                                       : rn == strlen("crio") && memcmp(colon + 1, "crio", rn) == 0           ? "cri-o"
                                       : rn == strlen("docker") && memcmp(colon + 1, "docker", rn) == 0       ? "docker"
                                                                                                           : NULL;
                        return MATCH;
                }
        }
        /* a bare id: /docker/<id>, /kubepods/…/pod<uid>/<id>, /../<id> */
        if (is_engine_id(c, n)) {
                *ret_id = c;
                *ret_n = n;
                *ret_runtime = parent_n == strlen("docker") && memcmp(parent, "docker", parent_n) == 0 ? "docker" : NULL;
                return MATCH;
        }
        if (is_ecs_id(c, n)) {
                *ret_id = c;
                *ret_n = n;
                *ret_runtime = NULL;
                return MATCH;
        }
        return NO_MATCH;
}

/* "pod<uid>" or "kubepods-<qos>-pod<uid_with_underscores>.slice" (and the same before a ':'). */
static bool pod_uid(const char *c, size_t n, char ret[ST_POD_UID_LEN + 1]) {
        for (size_t i = 0; i + 3 + ST_POD_UID_LEN <= n; i++) {
                if (memcmp(c + i, "pod", 3) != 0 || (i > 0 && c[i - 1] != '-'))
                        continue;
                const char *u = c + i + 3;
                bool ok = true;
                for (size_t j = 0; j < ST_POD_UID_LEN && ok; j++) {
                        char ch = u[j];
                        if (j == 8 || j == 13 || j == 18 || j == 23)
                                ok = ch == '-' || ch == '_';
                        else
                                ok = is_hex(&ch, 1);
                }
                size_t end = i + 3 + ST_POD_UID_LEN;
                if (!ok || (end < n && c[end] != '.' && c[end] != ':'))
                        continue;
                for (size_t j = 0; j < ST_POD_UID_LEN; j++)
                        ret[j] = u[j] == '_' ? '-' : u[j];
                ret[ST_POD_UID_LEN] = '\0';
                return true;
        }
        return false;
}

int st_container_from_path(const char *path, struct st_container_ref *ret) {
        struct {
                const char *s;
                size_t n;
        } comps[64];
        size_t nc = 0, len = strcspn(path, "\n");

        for (size_t i = 0; i < len && nc < sizeof(comps) / sizeof(comps[0]);) {
                while (i < len && path[i] == '/')
                        i++;
                size_t start = i;
                while (i < len && path[i] != '/')
                        i++;
                if (i > start)
                        comps[nc++] = (typeof(comps[0])) { path + start, i - start };
        }
        /* innermost first */
        for (size_t k = nc; k-- > 0;) {
                const char *id, *runtime;
                size_t idn;
                enum match m = component(comps[k].s, comps[k].n, k ? comps[k - 1].s : "", k ? comps[k - 1].n : 0, &id,
                                         &idn, &runtime);
                if (m == HELPER)
                        return -ENOENT;
                if (m == NO_MATCH)
                        continue;
                struct st_container_ref c = { .runtime = runtime };
                memcpy(c.id, id, idn);
                c.id[idn] = '\0';
                /* the pod is an ancestor (or, in the ':' form, the same component) */
                for (size_t p = k + 1; p-- > 0;)
                        if (pod_uid(comps[p].s, comps[p].n, c.pod_uid))
                                break;
                *ret = c;
                return 0;
        }
        return -ENOENT;
}

static int parse_file(const char *text, struct st_container_ref *ret, bool *ret_from_v2) {
        /* the v2 line first: it is what BPF's cgroup id names */
        for (int pass = 0; pass < 2; pass++)
                for (const char *line = text; *line;) {
                        const char *nl = strchr(line, '\n');
                        const char *c1 = strchr(line, ':');
                        const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                        bool v2 = c1 && c1 - line == 1 && line[0] == '0' && c2 == c1 + 1;
                        if (c2 && (!nl || c2 < nl) && v2 == (pass == 0) && st_container_from_path(c2 + 1, ret) == 0) {
                                *ret_from_v2 = v2;
                                return 0;
                        }
                        if (!nl)
                                break;
                        line = nl + 1;
                }
        return -ENOENT;
}

int st_container_from_cgroup_file(const char *text, struct st_container_ref *ret) {
        bool v2;
        return parse_file(text, ret, &v2);
}

/* The path of the v1 line whose controllers include "memory", into buf ("" when none). */
static void memcg_line(const char *text, char *buf, size_t cap) {
        buf[0] = '\0';
        for (const char *line = text; *line;) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t) (nl - line) : strlen(line);
                const char *c1 = memchr(line, ':', len);
                const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t) (c1 + 1 - line)) : NULL;
                if (c2) {
                        for (const char *t = c1 + 1; t < c2;) {
                                const char *comma = memchr(t, ',', (size_t) (c2 - t));
                                const char *end = comma ? comma : c2;
                                if (end - t == 6 && memcmp(t, "memory", 6) == 0) {
                                        size_t n = len - (size_t) (c2 + 1 - line);
                                        if (n < cap) {
                                                memcpy(buf, c2 + 1, n);
                                                buf[n] = '\0';
                                        }
                                        return;
                                }
                                t = end + 1;
                        }
                }
                if (!nl)
                        break;
                line = nl + 1;
        }
}

/* memcg_path (may be NULL): the memory controller's v1 path, "" when none. */
static int of_pid(const char *proc_root, uint32_t pid, struct st_container_ref *ret, bool *ret_from_v2, char *memcg_path,
                  size_t memcg_cap) {
        char path[256], text[8192];
        snprintf(path, sizeof(path), "%s/%u/cgroup", proc_root, pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : -errno; /* -ENOENT means "in no container" */
        ssize_t n = read(fd, text, sizeof(text) - 1);
        int e = errno;
        close(fd);
        if (n < 0)
                return -e;
        text[n] = '\0';
        if (memcg_path)
                memcg_line(text, memcg_path, memcg_cap);
        return parse_file(text, ret, ret_from_v2);
}

int st_container_of_pid(const char *proc_root, uint32_t pid, struct st_container_ref *ret) {
        bool v2;
        return of_pid(proc_root, pid, ret, &v2, NULL, 0);
}

/* cgroup v2 id → container, for the containers found through the v2 line only: on hybrid
 * hosts an engine that uses v1 leaves its containers in the v2 cgroup of its daemon, where an
 * id names no single container. Direct-mapped, replaced on collision.
 *
 * Ids whose path names no container are kept too ("none"): most of a host's processes are in
 * none, and resolving an id costs five syscalls (open, open_by_handle_at, readlink, two
 * closes) on every exec. On a v2-only host "none" is the answer; where v1 hierarchies are
 * mounted it only spares the id's path, and /proc/PID/cgroup is still read for the v1 lines. */
#define CACHE_SLOTS 1024
static struct {
        pthread_mutex_t lock;
        uint64_t ids[CACHE_SLOTS];
        bool none[CACHE_SLOTS];
        struct st_container_ref refs[CACHE_SLOTS];
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t slot_of(uint64_t id) { return (size_t) ((id * UINT64_C(0x9e3779b97f4a7c15)) >> 54) % CACHE_SLOTS; }

/* On hosts with v1 hierarchies, the same by the pair (v2 id, id in the memory controller's
 * v1 hierarchy), which the exec record carries: a container engine that uses v1 puts each
 * container in a memory cgroup of its own, so the pair names one container, or none, and
 * /proc/PID/cgroup is read once per pair instead of once per exec. An entry is made only when
 * the memory cgroup that /proc names has the record's id: a process moved between its exec
 * and that read (runc moves its init into the container's cgroups, then execs) is not cached
 * under ids it no longer has. */
static struct {
        pthread_mutex_t lock;
        uint64_t v2[CACHE_SLOTS], memcg[CACHE_SLOTS];
        bool none[CACHE_SLOTS];
        struct st_container_ref refs[CACHE_SLOTS];
} memcg_cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t memcg_slot_of(uint64_t v2, uint64_t memcg) { return slot_of(v2 ^ (memcg * UINT64_C(0xff51afd7ed558ccd))); }

static char mount_buf[1024], memcg_mount_buf[1024];
static bool have_mount, have_memcg_mount, v1_mounted;
static pthread_once_t mount_once = PTHREAD_ONCE_INIT;
static void mount_init(void) {
        char text[4096];
        have_mount = st_cgroup2_mount("/proc/self/mounts", mount_buf, sizeof(mount_buf)) == 0;
        /* any line but "0::…" in our own cgroup file is a v1 hierarchy; unreadable: assume some */
        int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);
        if (fd >= 0)
                close(fd);
        text[n > 0 ? n : 0] = '\0';
        v1_mounted = n <= 0;
        for (ssize_t i = 0; i < n && !v1_mounted; i++)
                if ((i == 0 || text[i - 1] == '\n') && strncmp(text + i, "0::", 3) != 0)
                        v1_mounted = true;
        have_memcg_mount = v1_mounted && st_cgroup_v1_mount("/proc/self/mounts", "memory", memcg_mount_buf,
                                                            sizeof(memcg_mount_buf)) == 0;
}
static const char *cgroup2_mount(void) {
        pthread_once(&mount_once, mount_init);
        return have_mount ? mount_buf : NULL;
}

static void cache_put(uint64_t cgroup_id, const struct st_container_ref *c) {
        size_t i = slot_of(cgroup_id);
        pthread_mutex_lock(&cache.lock);
        cache.ids[i] = cgroup_id;
        cache.none[i] = !c;
        if (c)
                cache.refs[i] = *c;
        pthread_mutex_unlock(&cache.lock);
}

/* Whether path (a memory line's, from /proc) is, under the memory hierarchy's mount, the
 * cgroup with this id: a path that leaves the mount ("/../x" in a cgroup namespace of its own)
 * is not, nor one on another file system whose inode number happens to match. */
static bool memcg_path_has_id(const char *path, uint64_t id) {
        char full[4096];
        struct stat st, mst;
        if (!path[0] || strstr(path, "/..") || stat(memcg_mount_buf, &mst) < 0 ||
            (size_t) snprintf(full, sizeof(full), "%s%s", memcg_mount_buf, path) >= sizeof(full) || stat(full, &st) < 0)
                return false;
        return st.st_dev == mst.st_dev && (uint64_t) st.st_ino == id;
}

static void memcg_cache_put(uint64_t cgroup_id, uint64_t memcg_id, const struct st_container_ref *c) {
        size_t i = memcg_slot_of(cgroup_id, memcg_id);
        pthread_mutex_lock(&memcg_cache.lock);
        memcg_cache.v2[i] = cgroup_id;
        memcg_cache.memcg[i] = memcg_id;
        memcg_cache.none[i] = !c;
        if (c)
                memcg_cache.refs[i] = *c;
        pthread_mutex_unlock(&memcg_cache.lock);
}

/* 0: found (*ret), -ENOENT: known to be in no container, -EAGAIN: not cached */
static int memcg_cache_get(uint64_t cgroup_id, uint64_t memcg_id, struct st_container_ref *ret) {
        size_t i = memcg_slot_of(cgroup_id, memcg_id);
        int r = -EAGAIN;
        pthread_mutex_lock(&memcg_cache.lock);
        if (memcg_cache.memcg[i] == memcg_id && memcg_cache.v2[i] == cgroup_id) {
                r = memcg_cache.none[i] ? -ENOENT : 0;
                if (r == 0)
                        *ret = memcg_cache.refs[i];
        }
        pthread_mutex_unlock(&memcg_cache.lock);
        return r;
}

int st_container_resolve(uint64_t cgroup_id, uint64_t memcg_id, const char *proc_root, uint32_t pid,
                         struct st_container_ref *ret) {
        struct st_container_ref c;
        const char *mount = cgroup2_mount();
        char path[4096], memcg_path[4096];
        bool v2 = false;
        int r;

        if (cgroup_id) {
                size_t i = slot_of(cgroup_id);
                pthread_mutex_lock(&cache.lock);
                bool hit = cache.ids[i] == cgroup_id, none = hit && cache.none[i];
                if (hit && !none)
                        c = cache.refs[i];
                pthread_mutex_unlock(&cache.lock);
                if (hit && !none) {
                        *ret = c;
                        return 0;
                }
                if (none && !v1_mounted)
                        return -ENOENT;
                /* the event's own cgroup, by id: right even when the process has exited, moved,
                 * or its pid was reused since the event */
                int pr = !none && mount ? st_cgroup2_path_of_id(mount, cgroup_id, path, sizeof(path)) : -ENOENT;
                if (pr == 0) {
                        if (st_container_from_path(path, &c) == 0) {
                                cache_put(cgroup_id, &c);
                                *ret = c;
                                return 0;
                        }
                        cache_put(cgroup_id, NULL);
                        if (!v1_mounted)
                                return -ENOENT;
                } else if (pr == -EXDEV && v1_mounted)
                        cache_put(cgroup_id, NULL); /* the v2 root here: the v1 lines tell, below */
        }
        /* v1 lines (hybrid hosts whose engine uses v1 only), or no privilege to open by id */
        bool by_memcg = memcg_id && have_memcg_mount;
        memcg_path[0] = '\0';
        if (by_memcg) {
                r = memcg_cache_get(cgroup_id, memcg_id, &c);
                if (r == 0)
                        *ret = c;
                if (r != -EAGAIN)
                        return r;
                /* the memory cgroup by id, as for v2: right after the process has gone too */
                if (st_cgroup2_path_of_id(memcg_mount_buf, memcg_id, path, sizeof(path)) == 0) {
                        r = st_container_from_path(path, &c);
                        memcg_cache_put(cgroup_id, memcg_id, r == 0 ? &c : NULL);
                        if (r == 0)
                                *ret = c;
                        return r;
                }
        }
        r = of_pid(proc_root, pid, &c, &v2, by_memcg ? memcg_path : NULL, sizeof(memcg_path));
        /* What is kept is what the memory line alone says, as the by-id lookup above would: the
         * answer for this call may come from another line, which runc may have moved already
         * while memory was still the old one. */
        if (by_memcg && r != -ESRCH && memcg_path_has_id(memcg_path, memcg_id)) {
                struct st_container_ref mc;
                memcg_cache_put(cgroup_id, memcg_id, st_container_from_path(memcg_path, &mc) == 0 ? &mc : NULL);
        }
        if (r < 0)
                return r;
        if (cgroup_id && v2 && mount && st_cgroup2_path_of(proc_root, pid, path, sizeof(path)) == 0 &&
            st_cgroup2_id(mount, path) == cgroup_id)
                cache_put(cgroup_id, &c);
        *ret = c;
        return 0;
}
