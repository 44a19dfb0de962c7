#include "ebpf_loader.h"

#include <errno.h>
#include <linux/types.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "process.skel.h"

#define LOG_NAME "receiver/ebpf"

/* A kernel hook and its implementations, best first. */
struct hook {
        const char *name;          /* what it gives: "process.exec" */
        const char *variants[2];   /* program names in bpf/process.bpf.c */
        const char *kinds[2];
};

static const struct hook hooks[] = {
        { "process.fork", { "fork_btf", "fork_raw" }, { "tp_btf", "raw_tp" } },
        { "process.exec", { "exec_btf", "exec_raw" }, { "tp_btf", "raw_tp" } },
        { "process.exit", { "exit_btf", "exit_raw" }, { "tp_btf", "raw_tp" } },
};
#define N_HOOKS (sizeof(hooks) / sizeof(hooks[0]))
#define N_VARIANTS 2

struct kprobes {
        struct process_bpf *skel;
        struct ring_buffer *rb;
        struct bpf_link *links[N_HOOKS];
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
        char line[1024];
        vsnprintf(line, sizeof(line), fmt, ap);
        line[strcspn(line, "\n")] = '\0';
        if (level == LIBBPF_WARN && line[0]) {
                keep(last_libbpf_error, sizeof(last_libbpf_error), line);
                if (strstr(line, "prog '") && strstr(line, "failed"))
                        keep(last_prog_error, sizeof(last_prog_error), line);
        }
        st_debug(LOG_NAME, "libbpf: %s", line);
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

static bool allowed(const struct kprobes_opts *o, const char *kind) {
        return !o->force || !*o->force || strcmp(o->force, kind) == 0;
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

/* Opens, configures and loads the object with variant choice[h] of every hook (-1: hook off).
 * On a load failure, *ret_failed is the hook whose program the kernel refused, or -1. */
static int try_load(const struct kprobes_opts *o, const int choice[N_HOOKS], struct process_bpf **ret, int *ret_failed) {
        struct process_bpf *skel = process_bpf__open();
        int r;
        *ret_failed = -1;
        if (!skel)
                return -errno;
        bpf_map__set_max_entries(skel->maps.events, (__u32) o->ring_bytes);
        skel->rodata->args_max = o->args_max;
        skel->rodata->wakeup_bytes = o->wakeup_bytes;
        skel->rodata->filter_uid_on = o->uid >= 0;
        skel->rodata->filter_uid = o->uid >= 0 ? (__u32) o->uid : 0;
        skel->rodata->filter_comm_on = o->comms && o->comms[0];
        skel->rodata->filter_cgroup_on = o->n_cgroup_ids > 0;
        for (size_t h = 0; h < N_HOOKS; h++)
                for (int v = 0; v < N_VARIANTS; v++) {
                        struct bpf_program *p = bpf_object__find_program_by_name(skel->obj, hooks[h].variants[v]);
                        if (!p)
                                continue;
                        bpf_program__set_autoload(p, choice[h] == v);
                        if (choice[h] == v && broken(o, hooks[h].variants[v]))
                                bpf_program__set_type(p, BPF_PROG_TYPE_SOCKET_FILTER); /* the verifier refuses it */
                }
        last_libbpf_error[0] = last_prog_error[0] = '\0';
        r = process_bpf__load(skel);
        if (r < 0) {
                /* which program failed: libbpf names it in its warning ("prog 'exec_btf': ...") */
                for (size_t h = 0; h < N_HOOKS && *ret_failed < 0; h++) {
                        char quoted[64];
                        if (choice[h] < 0)
                                continue;
                        snprintf(quoted, sizeof(quoted), "'%s'", hooks[h].variants[choice[h]]);
                        if (strstr(last_prog_error, quoted))
                                *ret_failed = (int) h;
                }
                process_bpf__destroy(skel);
                return r;
        }
        *ret = skel;
        return 0;
}

static int fill_filters(struct process_bpf *skel, const struct kprobes_opts *o) {
        __u8 one = 1;
        for (size_t i = 0; o->comms && o->comms[i]; i++) {
                char comm[ST_TASK_COMM_LEN] = { 0 };
                strncpy(comm, o->comms[i], sizeof(comm) - 1);
                if (bpf_map__update_elem(skel->maps.comm_filter, comm, sizeof(comm), &one, sizeof(one), BPF_ANY) < 0)
                        return -errno;
        }
        for (size_t i = 0; i < o->n_cgroup_ids; i++)
                if (bpf_map__update_elem(skel->maps.cgroup_filter, &o->cgroup_ids[i], sizeof(__u64), &one, sizeof(one),
                                         BPF_ANY) < 0)
                        return -errno;
        return 0;
}

int kprobes_open(const struct kprobes_opts *o, kprobes_record_fn fn, void *ctx, struct kprobes **ret, char *report,
                 size_t cap) {
        int choice[N_HOOKS];
        char why[N_HOOKS][192];
        struct process_bpf *skel = NULL;
        struct kprobes *k = NULL;
        int r = -ENOENT;

        report[0] = '\0';
        libbpf_set_print(libbpf_print);
        memset(why, 0, sizeof(why));
        for (size_t h = 0; h < N_HOOKS; h++) {
                choice[h] = -1;
                for (int v = 0; v < N_VARIANTS && choice[h] < 0; v++)
                        if (allowed(o, hooks[h].kinds[v]))
                                choice[h] = v;
                if (choice[h] < 0)
                        snprintf(why[h], sizeof(why[h]), "no allowed program kind (force: %s)", o->force);
        }
        /* Each refused program moves its hook to its next variant, or off; at most one round
         * per variant of every hook. */
        for (size_t round = 0; round <= N_HOOKS * N_VARIANTS; round++) {
                bool any = false;
                for (size_t h = 0; h < N_HOOKS; h++)
                        any |= choice[h] >= 0;
                if (!any)
                        break;
                int failed;
                r = try_load(o, choice, &skel, &failed);
                if (r == 0)
                        break;
                if (failed < 0) {
                        /* not one program's fault: no BPF at all (permissions, no BTF, old kernel) */
                        snprintf(report, cap, "cannot load BPF programs: %s%s%s", strerror(-r),
                                 last_libbpf_error[0] ? ": " : "", last_libbpf_error);
                        return r;
                }
                appendf(why[failed], sizeof(why[failed]), "%s%s refused: %s", why[failed][0] ? "; " : "",
                        hooks[failed].kinds[choice[failed]], strerror(-r));
                st_debug(LOG_NAME, "%s: %s program %s refused (%s), trying the next kind", hooks[failed].name,
                         hooks[failed].kinds[choice[failed]], hooks[failed].variants[choice[failed]], last_prog_error);
                int next = -1;
                for (int v = choice[failed] + 1; v < N_VARIANTS && next < 0; v++)
                        if (allowed(o, hooks[failed].kinds[v]))
                                next = v;
                choice[failed] = next;
        }
        if (!skel) {
                snprintf(report, cap, "no kernel hook could be loaded:");
                for (size_t h = 0; h < N_HOOKS; h++)
                        appendf(report, cap, " %s: %s;", hooks[h].name, why[h]);
                return r < 0 ? r : -ENOENT;
        }

        k = calloc(1, sizeof(*k));
        if (!k) {
                r = -ENOMEM;
                goto fail;
        }
        k->skel = skel;
        k->ncpus = libbpf_num_possible_cpus();
        if ((r = fill_filters(skel, o)) < 0) {
                snprintf(report, cap, "cannot fill the filter maps: %s", strerror(-r));
                goto fail;
        }
        k->rb = ring_buffer__new(bpf_map__fd(skel->maps.events), fn, ctx, NULL);
        if (!k->rb) {
                r = -errno;
                snprintf(report, cap, "cannot map the ring buffer: %s", strerror(-r));
                goto fail;
        }
        for (size_t h = 0; h < N_HOOKS; h++) {
                if (choice[h] < 0) {
                        appendf(report, cap, "%s%s: off (%s)", report[0] ? ", " : "", hooks[h].name, why[h]);
                        continue;
                }
                struct bpf_program *p = bpf_object__find_program_by_name(skel->obj, hooks[h].variants[choice[h]]);
                k->links[h] = p ? bpf_program__attach(p) : NULL;
                if (!k->links[h]) {
                        int e = p ? -errno : -ENOENT;
                        appendf(report, cap, "%s%s: off (%s attach failed: %s)", report[0] ? ", " : "", hooks[h].name,
                                hooks[h].kinds[choice[h]], strerror(-e));
                        continue;
                }
                k->attached++;
                appendf(report, cap, "%s%s: %s", report[0] ? ", " : "", hooks[h].name, hooks[h].kinds[choice[h]]);
                if (why[h][0])
                        appendf(report, cap, " (%s)", why[h]);
        }
        if (!k->attached) {
                r = -ENOENT;
                goto fail;
        }
        *ret = k;
        return 0;
fail:
        if (k)
                kprobes_free(k);
        else
                process_bpf__destroy(skel);
        return r;
}

void kprobes_free(struct kprobes *k) {
        if (!k)
                return;
        for (size_t h = 0; h < N_HOOKS; h++)
                bpf_link__destroy(k->links[h]);
        ring_buffer__free(k->rb);
        process_bpf__destroy(k->skel);
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
        if (bpf_map__lookup_elem(k->skel->maps.lost, &zero, sizeof(zero), per, (size_t) k->ncpus * sizeof(*per), 0) < 0) {
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
