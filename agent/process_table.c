#include "process_table.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"

#define SHARDS 64
#define BUCKETS 256 /* per shard: 16384 chains in all, short for tens of thousands of processes */

struct entry {
        struct st_process p;
        struct entry *next;
};

struct shard {
        pthread_rwlock_t lock;
        struct entry *buckets[BUCKETS];
        size_t n;
};

struct st_proctab {
        struct shard shards[SHARDS];
        size_t reconcile_cursor; /* where the last reconcile pass stopped (one caller at a time) */
};

void st_process_clear(struct st_process *p) {
        if (!p)
                return;
        free(p->exe);
        free(p->cmdline);
        p->exe = p->cmdline = NULL;
}

static uint64_t tick_ns(void) {
        static uint64_t tick;
        if (!tick) {
                long hz = sysconf(_SC_CLK_TCK);
                tick = hz > 0 ? UINT64_C(1000000000) / (uint64_t) hz : UINT64_C(10000000);
        }
        return tick;
}

bool st_proc_same_start(uint64_t a_ns, uint64_t b_ns) {
        return a_ns / tick_ns() == b_ns / tick_ns();
}

int64_t st_boot_to_unix_ns(void) {
        struct timespec rt, bt;
        clock_gettime(CLOCK_REALTIME, &rt);
        clock_gettime(CLOCK_BOOTTIME, &bt);
        return ((int64_t) rt.tv_sec - bt.tv_sec) * 1000000000 + (rt.tv_nsec - bt.tv_nsec);
}

uint64_t st_boottime_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_BOOTTIME, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

int st_proctab_new(struct st_proctab **ret) {
        struct st_proctab *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < SHARDS; i++)
                pthread_rwlock_init(&t->shards[i].lock, NULL);
        *ret = t;
        return 0;
}

void st_proctab_free(struct st_proctab *t) {
        if (!t)
                return;
        for (size_t i = 0; i < SHARDS; i++) {
                for (size_t b = 0; b < BUCKETS; b++)
                        for (struct entry *e = t->shards[i].buckets[b], *n; e; e = n) {
                                n = e->next;
                                st_process_clear(&e->p);
                                free(e);
                        }
                pthread_rwlock_destroy(&t->shards[i].lock);
        }
        free(t);
}

static struct st_proctab *global;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void) {
        if (st_proctab_new(&global) < 0)
                global = NULL;
}
struct st_proctab *st_proctab_global(void) {
        pthread_once(&global_once, global_init);
        return global;
}

static struct shard *shard_of(struct st_proctab *t, uint32_t pid) { return &t->shards[pid % SHARDS]; }
static struct entry **bucket_of(struct shard *s, uint32_t pid) { return &s->buckets[(pid / SHARDS) % BUCKETS]; }

static struct entry *find(struct shard *s, uint32_t pid) {
        for (struct entry *e = *bucket_of(s, pid); e; e = e->next)
                if (e->p.pid == pid)
                        return e;
        return NULL;
}

static void unlink_entry(struct shard *s, struct entry *victim) {
        for (struct entry **pp = bucket_of(s, victim->p.pid); *pp; pp = &(*pp)->next)
                if (*pp == victim) {
                        *pp = victim->next;
                        s->n--;
                        st_process_clear(&victim->p);
                        free(victim);
                        return;
                }
}

/* A fresh entry for pid, replacing any older process of the same pid. Write-locked. */
static struct entry *insert(struct shard *s, uint32_t pid) {
        struct entry *old = find(s, pid);
        if (old)
                unlink_entry(s, old);
        struct entry *e = calloc(1, sizeof(*e));
        if (!e)
                return NULL;
        e->p.pid = pid;
        e->next = *bucket_of(s, pid);
        *bucket_of(s, pid) = e;
        s->n++;
        return e;
}

static int copy_process(struct st_process *dst, const struct st_process *src) {
        struct st_process c = *src;
        c.exe = src->exe ? strdup(src->exe) : NULL;
        c.cmdline = src->cmdline ? strdup(src->cmdline) : NULL;
        if ((src->exe && !c.exe) || (src->cmdline && !c.cmdline)) {
                st_process_clear(&c);
                return -ENOMEM;
        }
        *dst = c;
        return 0;
}

int st_proctab_fork(struct st_proctab *t, uint32_t parent_pid, uint32_t parent_tid, uint32_t pid, uint64_t start_ns) {
        struct st_process parent = { 0 };
        bool have_parent = st_proctab_get(t, parent_pid, 0, &parent) == 0;
        struct shard *s = shard_of(t, pid);
        int r = 0;

        pthread_rwlock_wrlock(&s->lock);
        struct entry *e = find(s, pid);
        if (e && st_proc_same_start(e->p.start_ns, start_ns) && !e->p.exited)
                goto out; /* known already (seeded after the fork) */
        e = insert(s, pid);
        if (!e) {
                r = -ENOMEM;
                goto out;
        }
        /* a child is its parent's image until it execs */
        if (have_parent) {
                e->p = parent;
                parent.exe = parent.cmdline = NULL; /* moved */
                e->p.exited = false;
                e->p.exit_code = 0;
                e->p.exit_ns = 0;
                e->p.from_proc = false;
        }
        e->p.pid = pid;
        e->p.ppid = parent_pid;
        e->p.start_ns = start_ns;
        e->p.fork_tid = parent_tid;
out:
        pthread_rwlock_unlock(&s->lock);
        st_process_clear(&parent);
        return r;
}

void st_process_drop_sandbox(struct st_process *p) {
        if (st_container_known(&p->container) && strcmp(p->comm, "pause") == 0)
                p->container = (struct st_container_ref) { 0 };
}

int st_proctab_exec(struct st_proctab *t, const struct st_process *p) {
        struct st_process c;
        int r = copy_process(&c, p);
        if (r < 0)
                return r;
        c.exited = false;
        c.from_proc = false;
        struct shard *s = shard_of(t, p->pid);
        pthread_rwlock_wrlock(&s->lock);
        struct entry *e = find(s, p->pid);
        if (e && st_proc_same_start(e->p.start_ns, p->start_ns)) {
                if (!st_container_known(&c.container) && e->p.cgroup_id == c.cgroup_id)
                        c.container = e->p.container;
                if (!c.fork_tid)
                        c.fork_tid = e->p.fork_tid; /* who spawned it does not change at exec */
        }
        st_process_drop_sandbox(&c);
        if (!e || !st_proc_same_start(e->p.start_ns, p->start_ns))
                e = insert(s, p->pid);
        if (e) {
                st_process_clear(&e->p);
                e->p = c;
        } else {
                st_process_clear(&c);
                r = -ENOMEM;
        }
        pthread_rwlock_unlock(&s->lock);
        return r;
}

int st_proctab_exit(struct st_proctab *t, uint32_t pid, uint64_t start_ns, int32_t exit_code, uint64_t exit_ns) {
        struct shard *s = shard_of(t, pid);
        int r = -ENOENT;
        pthread_rwlock_wrlock(&s->lock);
        struct entry *e = find(s, pid);
        if (e && (!start_ns || st_proc_same_start(e->p.start_ns, start_ns))) {
                e->p.exited = true;
                e->p.exit_code = exit_code;
                e->p.exit_ns = exit_ns;
                r = 0;
        }
        pthread_rwlock_unlock(&s->lock);
        return r;
}

int st_proctab_get(struct st_proctab *t, uint32_t pid, uint64_t start_ns, struct st_process *ret) {
        struct shard *s = shard_of(t, pid);
        int r = -ENOENT;
        pthread_rwlock_rdlock(&s->lock);
        struct entry *e = find(s, pid);
        if (e && (!start_ns || st_proc_same_start(e->p.start_ns, start_ns)))
                r = copy_process(ret, &e->p);
        pthread_rwlock_unlock(&s->lock);
        return r;
}

int st_proctab_with(struct st_proctab *t, uint32_t pid, uint64_t start_ns,
                    void (*fn)(const struct st_process *p, void *ctx), void *ctx) {
        struct shard *s = shard_of(t, pid);
        int r = -ENOENT;
        pthread_rwlock_rdlock(&s->lock);
        struct entry *e = find(s, pid);
        if (e && (!start_ns || st_proc_same_start(e->p.start_ns, start_ns))) {
                fn(&e->p, ctx);
                r = 0;
        }
        pthread_rwlock_unlock(&s->lock);
        return r;
}

size_t st_proctab_expire(struct st_proctab *t, uint64_t older_than_ns) {
        size_t n = 0;
        for (size_t i = 0; i < SHARDS; i++) {
                struct shard *s = &t->shards[i];
                pthread_rwlock_wrlock(&s->lock);
                for (size_t b = 0; b < BUCKETS; b++)
                        for (struct entry **pp = &s->buckets[b]; *pp;) {
                                struct entry *e = *pp;
                                if (e->p.exited && e->p.exit_ns < older_than_ns) {
                                        *pp = e->next;
                                        s->n--;
                                        st_process_clear(&e->p);
                                        free(e);
                                        n++;
                                } else
                                        pp = &e->next;
                        }
                pthread_rwlock_unlock(&s->lock);
        }
        return n;
}

static int parse_stat(const char *stat, struct st_process *p);
static ssize_t read_file(const char *path, char *buf, size_t cap);

size_t st_proctab_reconcile(struct st_proctab *t, const char *proc_root, uint64_t now_ns, size_t max) {
        struct key {
                uint32_t pid;
                uint64_t start_ns;
        } *keys = NULL;
        size_t n = 0, cap = 0, gone = 0;

        for (size_t i = 0; i < SHARDS; i++) {
                struct shard *s = &t->shards[i];
                pthread_rwlock_rdlock(&s->lock);
                for (size_t b = 0; b < BUCKETS; b++)
                        for (struct entry *e = s->buckets[b]; e; e = e->next) {
                                if (e->p.exited)
                                        continue;
                                if (n == cap) {
                                        size_t nc = cap ? 2 * cap : 256;
                                        struct key *k = realloc(keys, nc * sizeof(*k));
                                        if (!k)
                                                break;
                                        keys = k;
                                        cap = nc;
                                }
                                keys[n++] = (struct key) { e->p.pid, e->p.start_ns };
                        }
                pthread_rwlock_unlock(&s->lock);
        }
        size_t todo = n < max ? n : max;
        for (size_t j = 0; j < todo; j++) {
                size_t i = (t->reconcile_cursor + j) % n;
                char path[256], buf[1024];
                struct st_process now = { 0 };
                snprintf(path, sizeof(path), "%s/%u/stat", proc_root, keys[i].pid);
                ssize_t r = read_file(path, buf, sizeof(buf));
                if (r < 0 && r != -ENOENT && r != -ESRCH)
                        break; /* out of descriptors, memory or permission: no verdict */
                if (r > 0 && parse_stat(buf, &now) == 0 && st_proc_same_start(now.start_ns, keys[i].start_ns))
                        continue; /* still there */
                if (st_proctab_exit(t, keys[i].pid, keys[i].start_ns, -1, now_ns) == 0)
                        gone++;
        }
        t->reconcile_cursor = n ? (t->reconcile_cursor + todo) % n : 0;
        free(keys);
        return gone;
}

size_t st_proctab_size(struct st_proctab *t) {
        size_t n = 0;
        for (size_t i = 0; i < SHARDS; i++) {
                pthread_rwlock_rdlock(&t->shards[i].lock);
                n += t->shards[i].n;
                pthread_rwlock_unlock(&t->shards[i].lock);
        }
        return n;
}

/* --- /proc ---------------------------------------------------------------------------------- */

static ssize_t read_file(const char *path, char *buf, size_t cap) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        size_t n = 0;
        while (n + 1 < cap) {
                ssize_t k = read(fd, buf + n, cap - 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                n += (size_t) k;
        }
        close(fd);
        buf[n] = '\0';
        return (ssize_t) n;
}

/* /proc/PID/stat: "pid (comm) state ppid ... starttime(22) ..."; comm may hold spaces and
 * parentheses, so fields are counted from the last ')'. */
static int parse_stat(const char *stat, struct st_process *p) {
        const char *open_paren = strchr(stat, '('), *close_paren = strrchr(stat, ')');
        if (!open_paren || !close_paren || close_paren < open_paren)
                return -EBADMSG;
        size_t clen = (size_t) (close_paren - open_paren - 1);
        if (clen >= ST_PROC_COMM_LEN)
                clen = ST_PROC_COMM_LEN - 1;
        memcpy(p->comm, open_paren + 1, clen);
        p->comm[clen] = '\0';
        const char *q = close_paren + 1;
        unsigned long long v = 0;
        for (int field = 3; field <= 22; field++) {
                while (*q == ' ')
                        q++;
                if (!*q)
                        return -EBADMSG;
                if (field == 4 || field == 22) {
                        char *end;
                        v = strtoull(q, &end, 10);
                        if (end == q)
                                return -EBADMSG;
                        if (field == 4)
                                p->ppid = (uint32_t) v;
                        else
                                p->start_ns = (uint64_t) v * tick_ns();
                }
                while (*q && *q != ' ')
                        q++;
        }
        return 0;
}

static void parse_ids(const char *status, struct st_process *p) {
        const char *u = strstr(status, "\nUid:"), *g = strstr(status, "\nGid:");
        if (u)
                p->uid = (uint32_t) strtoul(u + 5, NULL, 10);
        if (g)
                p->gid = (uint32_t) strtoul(g + 5, NULL, 10);
}

static char *join_cmdline(char *buf, ssize_t n) {
        while (n > 0 && buf[n - 1] == '\0')
                n--;
        if (n <= 0)
                return NULL;
        for (ssize_t i = 0; i < n; i++)
                if (buf[i] == '\0')
                        buf[i] = ' ';
        buf[n] = '\0';
        return strdup(buf);
}

int st_proc_start_ns(const char *proc_root, uint32_t pid, uint64_t *ret) {
        char path[256], buf[1024];
        struct st_process p = { 0 };
        snprintf(path, sizeof(path), "%s/%u/stat", proc_root, pid);
        ssize_t n = read_file(path, buf, sizeof(buf));
        if (n < 0)
                return (int) n;
        if (parse_stat(buf, &p) < 0)
                return -EBADMSG;
        *ret = p.start_ns;
        return 0;
}

static int seed_one(struct st_proctab *t, const char *proc_root, uint32_t pid, const char *cg_mount) {
        char path[256], buf[8192];
        struct st_process p = { .pid = pid, .from_proc = true };
        ssize_t n;

        snprintf(path, sizeof(path), "%s/%u/stat", proc_root, pid);
        if (read_file(path, buf, sizeof(buf)) < 0 || parse_stat(buf, &p) < 0)
                return -ENOENT; /* gone meanwhile */
        snprintf(path, sizeof(path), "%s/%u/status", proc_root, pid);
        if (read_file(path, buf, sizeof(buf)) > 0)
                parse_ids(buf, &p);
        snprintf(path, sizeof(path), "%s/%u/exe", proc_root, pid);
        n = readlink(path, buf, sizeof(buf) - 1);
        if (n > 0) {
                buf[n] = '\0';
                p.exe = strdup(buf);
        }
        snprintf(path, sizeof(path), "%s/%u/cmdline", proc_root, pid);
        n = read_file(path, buf, sizeof(buf));
        if (n > 0)
                p.cmdline = join_cmdline(buf, n);
        if (cg_mount && st_cgroup2_path_of(proc_root, pid, buf, sizeof(buf)) == 0)
                p.cgroup_id = st_cgroup2_id(cg_mount, buf);
        st_container_of_pid(proc_root, pid, &p.container); /* no container: stays "" */
        st_process_drop_sandbox(&p);

        struct shard *s = shard_of(t, pid);
        int r = 0;
        pthread_rwlock_wrlock(&s->lock);
        struct entry *e = find(s, pid);
        if (e && st_proc_same_start(e->p.start_ns, p.start_ns)) {
                r = -EEXIST; /* the kernel told us first: its facts are fresher */
        } else if ((e = insert(s, pid))) {
                e->p = p;
                p.exe = p.cmdline = NULL;
        } else
                r = -ENOMEM;
        pthread_rwlock_unlock(&s->lock);
        st_process_clear(&p);
        return r;
}

int st_proctab_learn(struct st_proctab *t, const char *proc_root, uint32_t pid) {
        char mounts[256], cg[1024];
        snprintf(mounts, sizeof(mounts), "%s/self/mounts", proc_root);
        bool have = st_cgroup2_mount(mounts, cg, sizeof(cg)) == 0;
        int r = seed_one(t, proc_root, pid, have ? cg : NULL);
        return r == -EEXIST ? 0 : r;
}

int st_proctab_seed(struct st_proctab *t, const char *proc_root) {
        char cg[1024], mounts[256];
        const char *cg_mount = NULL;
        int n = 0;

        snprintf(mounts, sizeof(mounts), "%s/self/mounts", proc_root);
        if (st_cgroup2_mount(mounts, cg, sizeof(cg)) == 0)
                cg_mount = cg;
        DIR *d = opendir(proc_root);
        if (!d)
                return -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!isdigit((unsigned char) de->d_name[0]))
                        continue;
                char *end;
                unsigned long pid = strtoul(de->d_name, &end, 10);
                if (*end || pid == 0 || pid > UINT32_MAX)
                        continue;
                if (seed_one(t, proc_root, (uint32_t) pid, cg_mount) == 0)
                        n++;
        }
        closedir(d);
        return n;
}
