#include "ebpf_loader.h"

#include <errno.h>
#include <linux/types.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "cgroup.h"
#include "code.skel.h"
#include "dns.skel.h"
#include "log.h"
#include "net.skel.h"
#include "process.skel.h"

#define LOG_NAME "receiver/ebpf"
#define MAX_VARIANTS 4
#define MAX_PROGS 3
#define MAX_HOOKS 3

/* One way to implement a hook: a program kind and the programs (all needed). */
struct variant {
        const char *kind; /* "tp_btf", "raw_tp", "tp", "tp+btf", "tp+cast" */
        const char *progs[MAX_PROGS];
};

/* A kernel hook: what it gives, and its implementations, best first. */
struct hook {
        const char *name;
        struct variant v[MAX_VARIANTS];
};

/* One BPF object (bpf/<probe>.bpf.c) and its skeleton, behind a uniform face. */
struct object_ops {
        const char *name; /* "process": the `events` config value */
        unsigned bit;
        struct hook hooks[MAX_HOOKS];
        size_t n_hooks;
        void *(*open)(void);
        struct bpf_object *(*obj)(void *skel);
        void (*set_rodata)(void *skel, const struct kprobes_opts *o);
        int (*load)(void *skel);
        void (*destroy)(void *skel);
};

/* The tunables every object has (bpf/common.bpf.h), and each skeleton's adapters. */
/* How many bytes a CPU writes between two looks at the ring's pending bytes (bpf/common.bpf.h):
 * a sixteenth of the wake-up threshold, and small enough that every CPU of every object
 * holding that much unlooked-at adds up to at most an eighth of the ring. 0: look every time. */
static uint64_t wakeup_check_bytes(const struct kprobes_opts *o) {
        int ncpus = libbpf_num_possible_cpus();
        uint64_t step = o->wakeup_bytes / 16, cap = o->ring_bytes / 8 / ((uint64_t) (ncpus > 0 ? ncpus : 1) * 4);
        return step < cap ? step : cap;
}

#define COMMON_RODATA(k, o)                                                           \
        do {                                                                          \
                (k)->rodata->wakeup_bytes = (o)->wakeup_bytes;                        \
                (k)->rodata->wakeup_check_bytes = wakeup_check_bytes(o);              \
                (k)->rodata->filter_uid_on = (o)->uid >= 0;                           \
                (k)->rodata->filter_uid = (o)->uid >= 0 ? (__u32) (o)->uid : 0;       \
                (k)->rodata->filter_comm_on = (o)->comms && (o)->comms[0];            \
                (k)->rodata->filter_cgroup_on = (o)->n_cgroup_ids > 0;                \
        } while (0)
#define ADAPTERS(NAME)                                                                                  \
        static void *NAME##_open(void) { return NAME##_bpf__open(); }                                   \
        static struct bpf_object *NAME##_obj(void *s) { return ((struct NAME##_bpf *) s)->obj; }         \
        static int NAME##_load(void *s) { return NAME##_bpf__load(s); }                                  \
        static void NAME##_destroy(void *s) { NAME##_bpf__destroy(s); }

ADAPTERS(process)
ADAPTERS(net)
ADAPTERS(code)
ADAPTERS(dns)

/* Whether this kernel's sched_process_exit tracepoint passes group_dead (6.16+): its
 * btf_trace_ typedef is a pointer to a function of (void *, task, bool). */
static bool exit_has_group_dead(void) {
        static int cached = -1;
        if (cached >= 0)
                return cached;
        struct btf *btf = btf__load_vmlinux_btf();
        cached = 0;
        if (!btf)
                return false;
        int id = btf__find_by_name_kind(btf, "btf_trace_sched_process_exit", BTF_KIND_TYPEDEF);
        const struct btf_type *t = id > 0 ? btf__type_by_id(btf, (__u32) id) : NULL;
        while (t && (btf_is_typedef(t) || btf_is_ptr(t)))
                t = btf__type_by_id(btf, t->type);
        if (t && btf_is_func_proto(t))
                cached = btf_vlen(t) >= 3;
        btf__free(btf);
        return cached;
}

static void process_rodata(void *s, const struct kprobes_opts *o) {
        struct process_bpf *k = s;
        COMMON_RODATA(k, o);
        k->rodata->args_max = o->args_max;
        k->rodata->exit_has_group_dead = exit_has_group_dead();
        /* only where user space can use it: a v1 memory hierarchy is mounted (container.c) */
        char mount[256];
        k->rodata->memcg_v1 = st_cgroup_v1_mount("/proc/self/mounts", "memory", mount, sizeof(mount)) == 0;
}
static void net_rodata(void *s, const struct kprobes_opts *o) {
        struct net_bpf *k = s;
        COMMON_RODATA(k, o);
        k->rodata->sample_every = o->net_sample_every ? o->net_sample_every : 1;
}
static void code_rodata(void *s, const struct kprobes_opts *o) {
        struct code_bpf *k = s;
        COMMON_RODATA(k, o);
}
static void dns_rodata(void *s, const struct kprobes_opts *o) {
        struct dns_bpf *k = s;
        COMMON_RODATA(k, o);
}

static const struct object_ops objects[] = {
        { "process", KPROBES_PROCESS,
          { { "process.fork", { { "tp_btf", { "fork_btf" } }, { "raw_tp", { "fork_raw" } } } },
            { "process.exec", { { "tp_btf", { "exec_btf" } }, { "raw_tp", { "exec_raw" } } } },
            { "process.exit", { { "tp_btf", { "exit_btf" } }, { "raw_tp", { "exit_raw" } } } } },
          3, process_open, process_obj, process_rodata, process_load, process_destroy },
        { "network", KPROBES_NETWORK,
          { { "network.connect+close", { { "tp_btf", { "state_btf" } }, { "raw_tp", { "state_raw" } } } },
            { "network.accept",
              { { "tp+cast", { "accept_tp_cast", "accept4_tp_cast" } }, { "tp", { "accept_tp", "accept4_tp" } },
                { "raw_tp", { "accept_raw" } } } } },
          2, net_open, net_obj, net_rodata, net_load, net_destroy },
        { "code", KPROBES_CODE,
          { { "code.mmap_exec", { { "tp+cast", { "mmap_tp_cast" } }, { "tp", { "mmap_tp" } }, { "raw_tp", { "mmap_raw" } } } },
            { "code.open",
              { { "tp+cast", { "openat_tp_cast", "openat2_tp_cast" } }, { "tp+btf", { "openat_tp_btf", "openat2_tp_btf" } },
                { "tp", { "openat_tp", "openat2_tp" } }, { "raw_tp", { "open_raw" } } } } },
          2, code_open, code_obj, code_rodata, code_load, code_destroy },
        { "dns", KPROBES_DNS,
          { { "dns.query",
              { { "tp+btf", { "sendto_tp_btf", "sendmsg_tp_btf", "sendmmsg_tp_btf" } },
                { "tp", { "sendto_tp", "sendmsg_tp", "sendmmsg_tp" } } } } },
          1, dns_open, dns_obj, dns_rodata, dns_load, dns_destroy },
};
#define N_OBJECTS (sizeof(objects) / sizeof(objects[0]))

struct loaded {
        const struct object_ops *ops;
        void *skel;
        struct bpf_link *links[MAX_HOOKS][MAX_PROGS];
};

struct kprobes {
        struct loaded objs[N_OBJECTS];
        size_t n_objs;
        struct bpf_map *events, *lost; /* the shared ones: in the first object loaded */
        struct ring_buffer *rb;
        size_t attached;
        int ncpus;
};

/* libbpf's messages go to our debug log. Kept to explain a failed load: the last warning that
 * names a program ("prog 'exec_btf': BPF program load failed: ..."), and the last warning. */
static __thread char last_libbpf_error[256], last_prog_error[256];
static void keep(char *dst, size_t cap, const char *line) {
        size_t n = strnlen(line, cap - 1);
        memcpy(dst, line, n);
        dst[n] = '\0';
}
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap) {
        char *msg = NULL;
        if (vasprintf(&msg, fmt, ap) < 0)
                return 0;
        /* one message may be many lines (a verifier log): each its own log line */
        for (char *line = msg, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                if (level == LIBBPF_WARN && line[0]) {
                        keep(last_libbpf_error, sizeof(last_libbpf_error), line);
                        if (strstr(line, "prog '") && strstr(line, "failed"))
                                keep(last_prog_error, sizeof(last_prog_error), line);
                }
                if (line[0])
                        st_debug(LOG_NAME, "libbpf: %s", line);
        }
        free(msg);
        return 0;
}

static void appendf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t cap, const char *fmt, ...) {
        size_t n = strnlen(buf, cap);
        va_list ap;
        if (n + 1 >= cap)
                return;
        va_start(ap, fmt);
        vsnprintf(buf + n, cap - n, fmt, ap);
        va_end(ap);
}

/* Per-syscall tracepoints ("tp") are attached through tracefs; hosts that do not mount it get
 * it mounted here (we are root when we can load BPF at all), else "tp" is not available. */
static bool tracefs_available(char *why, size_t cap) {
        static const char *const dirs[] = { "/sys/kernel/tracing/events/syscalls", "/sys/kernel/debug/tracing/events/syscalls" };
        for (size_t i = 0; i < 2; i++)
                if (access(dirs[i], F_OK) == 0)
                        return true;
        if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) < 0) {
                snprintf(why, cap, "no tracefs (mounting it at /sys/kernel/tracing: %s)", strerror(errno));
                return false;
        }
        st_info(LOG_NAME, "mounted tracefs at /sys/kernel/tracing for the syscall tracepoints");
        if (access(dirs[0], F_OK) == 0)
                return true;
        snprintf(why, cap, "tracefs has no syscall tracepoints (CONFIG_FTRACE_SYSCALLS off)");
        return false;
}

struct kind_rules {
        const char *force;
        bool tp_ok;
        char tp_why[160];
};

/* "tp": a syscall tracepoint; "tp+btf": the same, reading the current task through BTF;
 * "tp+cast": also what it finds there (a descriptor's file, its socket), through
 * bpf_rdonly_cast (6.2+). */
static bool is_tp(const char *kind) { return strcmp(kind, "tp") == 0 || strncmp(kind, "tp+", 3) == 0; }

static bool allowed(const struct kind_rules *k, const char *kind) {
        if (is_tp(kind) && !k->tp_ok)
                return false;
        /* force narrows the BTF/raw choice; syscall tracepoints stay allowed, without BTF when
         * raw_tp is forced */
        if (k->force && *k->force && strncmp(kind, "tp+", 3) == 0)
                return strcmp(k->force, "raw_tp") != 0;
        if (k->force && *k->force && strcmp(kind, "tp") != 0)
                return strcmp(k->force, kind) == 0;
        return true;
}

/* Whether tests asked this program to fail (break_program: a comma-separated list). */
static bool broken(const struct kprobes_opts *o, const char *prog) {
        size_t n = strlen(prog);
        for (const char *p = o->break_program; p && *p;) {
                size_t len = strcspn(p, ",");
                if (len == n && strncmp(p, prog, n) == 0)
                        return true;
                p += len + (p[len] == ',');
        }
        return false;
}

static bool in_variant(const struct variant *v, const char *prog) {
        for (int i = 0; i < MAX_PROGS && v->progs[i]; i++)
                if (strcmp(v->progs[i], prog) == 0)
                        return true;
        return false;
}

/* Opens, configures and loads ops with variant choice[h] of each hook (-1: off), sharing the
 * ring buffer and the loss and filter maps of `share` when given. On a load failure,
 * *ret_failed is the hook whose program the kernel refused, or -1. */
static int try_load(const struct object_ops *ops, const struct kprobes_opts *o, const int *choice, void *share,
                    const struct object_ops *share_ops, void **ret, int *ret_failed) {
        static const char *const shared_maps[] = { "events", "lost", "comm_filter", "cgroup_filter" };
        void *skel = ops->open();
        int r;
        *ret_failed = -1;
        if (!skel)
                return -errno;
        struct bpf_object *obj = ops->obj(skel);
        ops->set_rodata(skel, o);
        bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "events"), (__u32) o->ring_bytes);
        if (share)
                for (size_t i = 0; i < sizeof(shared_maps) / sizeof(shared_maps[0]); i++) {
                        struct bpf_map *m = bpf_object__find_map_by_name(obj, shared_maps[i]);
                        struct bpf_map *from = bpf_object__find_map_by_name(share_ops->obj(share), shared_maps[i]);
                        if (m && from && (r = bpf_map__reuse_fd(m, bpf_map__fd(from))) < 0) {
                                ops->destroy(skel);
                                return r;
                        }
                }
        struct bpf_program *p;
        bpf_object__for_each_program(p, obj) {
                const char *name = bpf_program__name(p);
                bool on = false;
                for (size_t h = 0; h < ops->n_hooks; h++)
                        if (choice[h] >= 0 && in_variant(&ops->hooks[h].v[choice[h]], name))
                                on = true;
                bpf_program__set_autoload(p, on);
                if (on && broken(o, name))
                        bpf_program__set_type(p, BPF_PROG_TYPE_SOCKET_FILTER); /* the verifier refuses it */
        }
        last_libbpf_error[0] = last_prog_error[0] = '\0';
        r = ops->load(skel);
        if (r < 0) {
                /* which program failed: libbpf names it in its warning ("prog 'exec_btf': ...") */
                for (size_t h = 0; h < ops->n_hooks && *ret_failed < 0; h++) {
                        if (choice[h] < 0)
                                continue;
                        const struct variant *v = &ops->hooks[h].v[choice[h]];
                        for (int i = 0; i < MAX_PROGS && v->progs[i]; i++) {
                                char quoted[64];
                                snprintf(quoted, sizeof(quoted), "'%s'", v->progs[i]);
                                if (strstr(last_prog_error, quoted))
                                        *ret_failed = (int) h;
                        }
                }
                ops->destroy(skel);
                return r;
        }
        *ret = skel;
        return 0;
}

/* Loads one object with the best variant of each hook that this kernel takes. Returns 0 with
 * *ret set, or -errno when no hook of it loads; `report` gets a line per hook. */
static int load_object(const struct object_ops *ops, const struct kprobes_opts *o, const struct kind_rules *rules,
                       void *share, const struct object_ops *share_ops, int choice[MAX_HOOKS], void **ret, char *report,
                       size_t cap) {
        char why[MAX_HOOKS][256];
        int r = -ENOENT;
        memset(why, 0, sizeof(why));
        for (size_t h = 0; h < ops->n_hooks; h++) {
                choice[h] = -1;
                for (int v = 0; v < MAX_VARIANTS && ops->hooks[h].v[v].kind && choice[h] < 0; v++)
                        if (allowed(rules, ops->hooks[h].v[v].kind))
                                choice[h] = v;
                        else if (is_tp(ops->hooks[h].v[v].kind) && !strstr(why[h], rules->tp_why))
                                appendf(why[h], sizeof(why[h]), "%stp: %s", why[h][0] ? "; " : "", rules->tp_why);
        }
        /* Each refused program moves its hook to its next variant, or off. */
        for (size_t round = 0; round <= MAX_HOOKS * MAX_VARIANTS; round++) {
                bool any = false;
                for (size_t h = 0; h < ops->n_hooks; h++)
                        any |= choice[h] >= 0;
                if (!any)
                        break;
                int failed;
                r = try_load(ops, o, choice, share, share_ops, ret, &failed);
                if (r == 0)
                        break;
                if (failed < 0) {
                        /* not one program's fault: no BPF at all (permissions, no BTF, old kernel) */
                        appendf(report, cap, "%s%s: cannot load: %s%s%s%s", report[0] ? "; " : "", ops->name, strerror(-r),
                                r == -EPERM ? " (needs root, or CAP_BPF and CAP_PERFMON)" : "",
                                last_libbpf_error[0] ? ": " : "", last_libbpf_error);
                        return r;
                }
                const char *kind = ops->hooks[failed].v[choice[failed]].kind;
                appendf(why[failed], sizeof(why[failed]), "%s%s refused: %s", why[failed][0] ? "; " : "", kind, strerror(-r));
                st_debug(LOG_NAME, "%s: %s programs refused (%s), trying the next kind", ops->hooks[failed].name, kind,
                         last_prog_error);
                int next = -1;
                for (int v = choice[failed] + 1; v < MAX_VARIANTS && ops->hooks[failed].v[v].kind && next < 0; v++)
                        if (allowed(rules, ops->hooks[failed].v[v].kind))
                                next = v;
                choice[failed] = next;
        }
        for (size_t h = 0; h < ops->n_hooks; h++) {
                appendf(report, cap, "%s%s: ", report[0] ? ", " : "", ops->hooks[h].name);
                if (r == 0 && choice[h] >= 0)
                        appendf(report, cap, "%s%s%s%s", ops->hooks[h].v[choice[h]].kind, why[h][0] ? " (" : "", why[h],
                                why[h][0] ? ")" : "");
                else
                        appendf(report, cap, "off (%s)", why[h][0] ? why[h] : "no program kind allowed");
        }
        return r == 0 ? 0 : r < 0 ? r : -ENOENT;
}

int kprobes_open(const struct kprobes_opts *o, kprobes_record_fn fn, void *ctx, struct kprobes **ret, char *report,
                 size_t cap) {
        struct kind_rules rules = { .force = o->force };
        struct kprobes *k = calloc(1, sizeof(*k));
        int r = -ENOENT;

        report[0] = '\0';
        if (!k)
                return -ENOMEM;
        libbpf_set_print(libbpf_print);
        rules.tp_ok = tracefs_available(rules.tp_why, sizeof(rules.tp_why));
        k->ncpus = libbpf_num_possible_cpus();

        for (size_t i = 0; i < N_OBJECTS; i++) {
                const struct object_ops *ops = &objects[i];
                struct loaded *L = &k->objs[k->n_objs];
                int choice[MAX_HOOKS];
                if (!(o->objects & ops->bit))
                        continue;
                void *share = k->n_objs ? k->objs[0].skel : NULL;
                const struct object_ops *share_ops = k->n_objs ? k->objs[0].ops : NULL;
                if (load_object(ops, o, &rules, share, share_ops, choice, &L->skel, report, cap) < 0)
                        continue;
                L->ops = ops;
                k->n_objs++;
                struct bpf_object *obj = ops->obj(L->skel);
                for (size_t h = 0; h < ops->n_hooks; h++) {
                        if (choice[h] < 0)
                                continue;
                        const struct variant *v = &ops->hooks[h].v[choice[h]];
                        bool all = true;
                        for (int p = 0; p < MAX_PROGS && v->progs[p]; p++) {
                                struct bpf_program *prog = bpf_object__find_program_by_name(obj, v->progs[p]);
                                L->links[h][p] = prog ? bpf_program__attach(prog) : NULL;
                                if (!L->links[h][p]) {
                                        appendf(report, cap, "; %s: %s attach failed: %s", ops->hooks[h].name, v->progs[p],
                                                strerror(prog ? errno : ENOENT));
                                        all = false;
                                }
                        }
                        if (!all) /* half a hook would report half its events: none, then */
                                for (int p = 0; p < MAX_PROGS; p++) {
                                        bpf_link__destroy(L->links[h][p]);
                                        L->links[h][p] = NULL;
                                }
                        k->attached += all;
                }
        }
        if (!k->n_objs || !k->attached) {
                if (!report[0])
                        snprintf(report, cap, "no kernel hook selected");
                r = -ENOENT;
                goto fail;
        }
        struct bpf_object *first = k->objs[0].ops->obj(k->objs[0].skel);
        k->events = bpf_object__find_map_by_name(first, "events");
        k->lost = bpf_object__find_map_by_name(first, "lost");
        if ((r = kprobes_set_filters(k, o)) < 0) {
                appendf(report, cap, "; cannot fill the filter maps: %s", strerror(-r));
                goto fail;
        }
        k->rb = ring_buffer__new(bpf_map__fd(k->events), fn, ctx, NULL);
        if (!k->rb) {
                r = -errno;
                appendf(report, cap, "; cannot map the ring buffer: %s", strerror(-r));
                goto fail;
        }
        *ret = k;
        return 0;
fail:
        kprobes_free(k);
        return r;
}

int kprobes_set_filters(struct kprobes *k, const struct kprobes_opts *o) {
        struct bpf_object *first = k->objs[0].ops->obj(k->objs[0].skel);
        struct bpf_map *comms = bpf_object__find_map_by_name(first, "comm_filter");
        struct bpf_map *cgroups = bpf_object__find_map_by_name(first, "cgroup_filter");
        __u8 one = 1;
        for (size_t i = 0; o->comms && o->comms[i]; i++) {
                char comm[ST_TASK_COMM_LEN] = { 0 };
                strncpy(comm, o->comms[i], sizeof(comm) - 1);
                if (bpf_map__update_elem(comms, comm, sizeof(comm), &one, sizeof(one), BPF_ANY) < 0)
                        return -errno;
        }
        for (size_t i = 0; i < o->n_cgroup_ids; i++)
                if (bpf_map__update_elem(cgroups, &o->cgroup_ids[i], sizeof(__u64), &one, sizeof(one), BPF_ANY) < 0)
                        return -errno;
        return 0;
}

void kprobes_free(struct kprobes *k) {
        if (!k)
                return;
        for (size_t i = 0; i < k->n_objs; i++) {
                for (size_t h = 0; h < MAX_HOOKS; h++)
                        for (size_t p = 0; p < MAX_PROGS; p++)
                                bpf_link__destroy(k->objs[i].links[h][p]);
        }
        ring_buffer__free(k->rb);
        /* later objects borrow the first one's maps: destroy them first */
        for (size_t i = k->n_objs; i-- > 0;)
                k->objs[i].ops->destroy(k->objs[i].skel);
        free(k);
}

int kprobes_epoll_fd(struct kprobes *k) { return ring_buffer__epoll_fd(k->rb); }

int kprobes_consume(struct kprobes *k) { return ring_buffer__consume(k->rb); }

size_t kprobes_attached(struct kprobes *k) { return k ? k->attached : 0; }

int kprobes_losses(struct kprobes *k, struct st_ev_loss *ret) {
        struct st_ev_loss sum = { 0 };
        __u32 zero = 0;
        if (k->ncpus <= 0)
                return -EINVAL;
        struct st_ev_loss *per = calloc((size_t) k->ncpus, sizeof(*per));
        if (!per)
                return -ENOMEM;
        if (bpf_map__lookup_elem(k->lost, &zero, sizeof(zero), per, (size_t) k->ncpus * sizeof(*per), 0) < 0) {
                int r = -errno;
                free(per);
                return r;
        }
        for (int c = 0; c < k->ncpus; c++) {
                if (!per[c].count)
                        continue;
                if (!sum.count || per[c].first_ns < sum.first_ns)
                        sum.first_ns = per[c].first_ns;
                if (per[c].last_ns > sum.last_ns)
                        sum.last_ns = per[c].last_ns;
                sum.count += per[c].count;
        }
        free(per);
        *ret = sum;
        return 0;
}

/* The network object, when its connect hook (the first) runs. */
static struct loaded *net_object(struct kprobes *k) {
        for (size_t i = 0; k && i < k->n_objs; i++)
                if (k->objs[i].ops->bit == KPROBES_NETWORK)
                        return k->objs[i].links[0][0] ? &k->objs[i] : NULL;
        return NULL;
}

int kprobes_peer_lookup(struct kprobes *k, const struct st_peer_key *key, struct st_peer_owner *ret) {
        struct loaded *L = net_object(k);
        if (!L)
                return -ENODEV;
        struct net_bpf *n = L->skel;
        if (bpf_map__lookup_elem(n->maps.peer_conns, key, sizeof(*key), ret, sizeof(*ret), 0) < 0)
                return -errno;
        return 0;
}

int kprobes_own_port(struct kprobes *k, uint16_t port, bool add) {
        struct loaded *L = net_object(k);
        __u8 one = 1;
        if (!L)
                return -ENODEV;
        struct net_bpf *n = L->skel;
        int r = add ? bpf_map__update_elem(n->maps.own_ports, &port, sizeof(port), &one, sizeof(one), BPF_ANY)
                    : bpf_map__delete_elem(n->maps.own_ports, &port, sizeof(port), 0);
        if (r < 0)
                return -errno;
        /* recount: what the connect hook checks before it looks a port up */
        __u16 cur, next;
        __u32 count = 0;
        const void *prev = NULL;
        while (bpf_map__get_next_key(n->maps.own_ports, prev, &next, sizeof(next)) == 0) {
                count++;
                cur = next;
                prev = &cur;
        }
        n->bss->n_own_ports = count;
        return 0;
}
