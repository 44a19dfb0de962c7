/* The kernel receiver: process life cycle (and, next, connections and code loads) from BPF
 * programs, as OTLP log records; keeps the context store's process table current.
 *
 * One thread per instance waits on the ring buffer's epoll fd (and an eventfd for stop), with
 * the flush interval as its timeout: records wake it in batches (wakeup_bytes), the timeout
 * bounds their latency. Without BPF (no privileges, no BTF, hooks refused) it says why, keeps
 * the /proc-seeded process table, and the rest of the agent runs. */
#include <errno.h>
#include <inttypes.h>
#include <linux/types.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cgroup.h"
#include "container.h"
#include "peer.h"
#include "clock.h"
#include "component.h"
#include "doctor.h"
#include "ebpf_decode.h"
#include "ebpf_loader.h"
#include "ebpf_metrics.h"
#include "ebpf_records.h"
#include "log.h"
#include "process_table.h"

#define MiB (UINT64_C(1) << 20)
/* How often part of the process table is checked against /proc for exits never seen, and
 * how many processes per pass: a large host is covered over several passes, so that the
 * reader never stalls for long. */
#define RECONCILE_PERIOD_NS (10 * ST_NS_PER_SEC)
#define RECONCILE_BATCH 2000

struct ebpf_filters {
        int64_t uid;
        struct st_strv comms;
        struct st_strv cgroups;
};

struct ebpf_config {
        struct st_strv events;
        uint64_t ring_buffer_size;
        uint64_t wakeup_bytes;
        int64_t flush_interval;
        int64_t max_args_bytes;
        int64_t max_batch_records;
        int64_t exited_process_ttl;
        bool seed_from_proc;
        char *proc_root;
        int program_kind;
        struct ebpf_filters filters;
        int64_t metrics_interval;
        int64_t metrics_max_series;
        struct st_strv records;
        int64_t network_sample_every;
};

static const char *const kinds[] = { "auto", "tp_btf", "raw_tp", NULL };

static const struct st_cfg_field filter_fields[] = {
        { .name = "uid", .type = ST_CFG_INT, .offset = offsetof(struct ebpf_filters, uid), .def = "-1", .min = -1,
          .max = UINT32_MAX, .desc = "only events of processes running as this uid (-1: all)" },
        { .name = "comms", .type = ST_CFG_STRINGS, .offset = offsetof(struct ebpf_filters, comms),
          .desc = "only events of processes with these names (comm, at most 15 bytes)" },
        { .name = "cgroups", .type = ST_CFG_STRINGS, .offset = offsetof(struct ebpf_filters, cgroups),
          .desc = "only events of processes in these cgroup v2 paths (relative to the cgroup2 mount) or ids" },
        ST_CFG_END,
};

static const struct st_cfg_field ebpf_fields[] = {
        { .name = "events", .type = ST_CFG_STRINGS, .offset = offsetof(struct ebpf_config, events),
          .desc = "what to collect: process (fork/exec/exit), network (TCP connect/accept/close), code (loaded files), dns (UDP queries to port 53); default all" },
        { .name = "ring_buffer_size", .type = ST_CFG_SIZE, .offset = offsetof(struct ebpf_config, ring_buffer_size),
          .def = "8MiB", .desc = "kernel→agent ring buffer (a power of two, at least 4KiB)" },
        { .name = "wakeup_bytes", .type = ST_CFG_SIZE, .offset = offsetof(struct ebpf_config, wakeup_bytes),
          .def = "64KiB", .desc = "wake the reader when this much is pending (0: on every event); the rest waits for flush_interval" },
        { .name = "flush_interval", .type = ST_CFG_DURATION, .offset = offsetof(struct ebpf_config, flush_interval),
          .def = "200ms", .desc = "longest an event waits in the kernel or in a batch" },
        { .name = "max_args_bytes", .type = ST_CFG_INT, .offset = offsetof(struct ebpf_config, max_args_bytes),
          .def = "1024", .min = 0, .max = ST_ARGS_MAX, .desc = "argv bytes kept per exec" },
        { .name = "max_batch_records", .type = ST_CFG_INT, .offset = offsetof(struct ebpf_config, max_batch_records),
          .def = "4096", .min = 1, .max = 1 << 20, .desc = "records per batch handed to the pipeline" },
        { .name = "exited_process_ttl", .type = ST_CFG_DURATION, .offset = offsetof(struct ebpf_config, exited_process_ttl),
          .def = "30s", .desc = "how long an exited process stays in the process table" },
        { .name = "seed_from_proc", .type = ST_CFG_BOOL, .offset = offsetof(struct ebpf_config, seed_from_proc),
          .def = "true", .desc = "learn running processes from /proc at start" },
        { .name = "proc_root", .type = ST_CFG_STRING, .offset = offsetof(struct ebpf_config, proc_root), .def = "/proc",
          .desc = "where procfs is mounted (a container with the host's at /host/proc)" },
        { .name = "program_kind", .type = ST_CFG_ENUM, .offset = offsetof(struct ebpf_config, program_kind),
          .def = "auto", .enums = kinds, .desc = "BPF program kinds to use: auto (tp_btf, else raw_tp), tp_btf or raw_tp" },
        { .name = "filters", .type = ST_CFG_SECTION, .offset = offsetof(struct ebpf_config, filters), .sub = filter_fields,
          .desc = "in-kernel filters; all that are set must match" },
        { .name = "records", .type = ST_CFG_STRINGS, .offset = offsetof(struct ebpf_config, records),
          .desc = "which event kinds become log records (process, network, code, dns; default all); the others feed only the metrics and the process table" },
        { .name = "network_sample_every", .type = ST_CFG_INT, .offset = offsetof(struct ebpf_config, network_sample_every),
          .def = "1", .min = 1, .max = 1000000, .desc = "follow 1 in N TCP connections, chosen in the kernel (metrics scale back up)" },
        { .name = "metrics_interval", .type = ST_CFG_DURATION, .offset = offsetof(struct ebpf_config, metrics_interval),
          .def = "10s", .desc = "how often the aggregated metrics are sent (when a metrics pipeline takes this receiver)" },
        { .name = "metrics_max_series", .type = ST_CFG_INT, .offset = offsetof(struct ebpf_config, metrics_max_series),
          .def = "2000", .min = 1, .max = 1000000, .desc = "series kept; past it, points go to an otel.metric.overflow series" },
        ST_CFG_END,
};

struct ebpf_receiver {
        struct st_component_settings set;
        const struct ebpf_config *cfg;
        struct st_proctab *procs;
        struct kprobes *k;
        bool providing_peers; /* the connection owner source (peer.h) */
        pthread_t thread;
        bool running;
        int stop_fd;
        struct krec_builder kb;
        struct st_ev_loss reported_loss;
        uint64_t refused_pending, refused_first_ns, refused_last_ns; /* pipeline refusals not yet told */
        uint64_t *cgroup_ids;
        size_t n_cgroup_ids;
        struct kmetrics *metrics;       /* NULL when no metrics pipeline takes this receiver */
        unsigned record_kinds;          /* KPROBES_* bits that become log records */
        uint64_t metrics_start_unix_ns;
        int64_t next_metrics_ns;
        struct st_tel_metric *m_lost, *m_decode_errors, *m_events, *m_up, *m_hooks, *m_processes;
};

static unsigned event_bit(const char *name) {
        return strcmp(name, "process") == 0 ? KPROBES_PROCESS : strcmp(name, "network") == 0 ? KPROBES_NETWORK
             : strcmp(name, "code") == 0    ? KPROBES_CODE
             : strcmp(name, "dns") == 0     ? KPROBES_DNS
                                            : 0;
}

static int ebpf_validate(const void *cfgp, struct st_cfg_ctx *ctx) {
        const struct ebpf_config *c = cfgp;
        size_t before = ctx->diag ? ctx->diag->errors : 0;
        long page = sysconf(_SC_PAGESIZE);
        if (c->ring_buffer_size < 4096 || (c->ring_buffer_size & (c->ring_buffer_size - 1)) ||
            c->ring_buffer_size % (uint64_t) page || c->ring_buffer_size > (UINT64_C(1) << 30))
                st_cfg_errorf(ctx, "ring_buffer_size", "must be a power of two between the page size and 1GiB");
        if (c->wakeup_bytes >= c->ring_buffer_size)
                st_cfg_errorf(ctx, "wakeup_bytes", "must be smaller than ring_buffer_size");
        for (size_t i = 0; i < c->events.n; i++)
                if (!event_bit(c->events.v[i]))
                        st_cfg_errorf(ctx, "events", "'%s' is not one of process, network, code, dns", c->events.v[i]);
        for (size_t i = 0; i < c->records.n; i++)
                if (!event_bit(c->records.v[i]))
                        st_cfg_errorf(ctx, "records", "'%s' is not one of process, network, code, dns", c->records.v[i]);
        if (c->flush_interval <= 0)
                st_cfg_errorf(ctx, "flush_interval", "must be positive");
        if (c->metrics_interval < ST_NS_PER_MS * 100)
                st_cfg_errorf(ctx, "metrics_interval", "must be at least 100ms");
        for (size_t i = 0; i < c->filters.comms.n; i++)
                if (strlen(c->filters.comms.v[i]) >= ST_TASK_COMM_LEN)
                        st_cfg_errorf(ctx, "filters.comms", "'%s' is longer than a comm (15 bytes)", c->filters.comms.v[i]);
        return ctx->diag && ctx->diag->errors > before ? -EINVAL : 0;
}

static int ebpf_create(const struct st_component_settings *set, const void *cfg, void **ret) {
        struct ebpf_receiver *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->set = *set;
        r->cfg = cfg;
        r->stop_fd = -1;
        r->m_lost = st_tel_metric(set->tel, "ebpf_lost_events_total", "Kernel events lost because the ring buffer was full.", false);
        r->m_decode_errors = st_tel_metric(set->tel, "ebpf_decode_errors_total", "Ring-buffer records that could not be decoded.", false);
        r->m_events = st_tel_metric(set->tel, "ebpf_events_total", "Kernel events read from the ring buffer.", false);
        r->m_up = st_tel_metric(set->tel, "ebpf_up", "1 when kernel collection runs, 0 when it is off.", true);
        r->m_hooks = st_tel_metric(set->tel, "ebpf_hooks_attached", "Kernel hooks attached.", true);
        r->m_processes = st_tel_metric(set->tel, "ebpf_processes", "Processes in the process table.", true);
        *ret = r;
        return 0;
}

/* --- the reader thread ------------------------------------------------------------------- */

static void flush(struct ebpf_receiver *r) {
        const struct st_consumer *next = &r->set.next[ST_LOGS];
        if (r->refused_pending && st_consumer_set(next) &&
            krec_add_gap(&r->kb, "pipeline_refused", r->refused_pending, r->refused_first_ns, r->refused_last_ns) == 0)
                r->refused_pending = 0;
        size_t gap_records = r->kb.gap_records;
        uint64_t gap_lost = r->kb.gap_lost;
        st_batch *b = krec_take(&r->kb);
        if (r->kb.dropped) {
                /* records that could not be built or kept (out of memory): lost like a refusal */
                uint64_t now = st_boottime_ns();
                st_tel_add(&r->set.tel->sig[ST_LOGS].refused, r->kb.dropped);
                if (!r->refused_pending)
                        r->refused_first_ns = now;
                r->refused_last_ns = now;
                r->refused_pending += r->kb.dropped;
                r->kb.dropped = 0;
        }
        if (!b)
                return;
        size_t items = b->items;
        int e = st_consume(next, b);
        if (e == 0) {
                st_tel_add(&r->set.tel->sig[ST_LOGS].accepted, items);
        } else {
                /* kernel events cannot be asked for again: counted, and told as a gap next time;
                 * a gap record refused with them stands for the events it told of, not for one */
                uint64_t now = st_boottime_ns();
                st_tel_add(&r->set.tel->sig[ST_LOGS].refused, items);
                if (!r->refused_pending)
                        r->refused_first_ns = now;
                r->refused_last_ns = now;
                r->refused_pending += (items > gap_records ? items - gap_records : 0) + gap_lost;
                st_debug(r->set.log_name, "pipeline refused %zu records: %s", items, strerror(-e));
        }
        st_batch_unref(b);
}

static void send_metrics(struct ebpf_receiver *r) {
        st_batch *b = NULL;
        int e = kmetrics_build(r->metrics, r->metrics_start_unix_ns, (uint64_t) st_wall_ns(), &b);
        if (e < 0) {
                st_warn(r->set.log_name, "cannot build the metrics: %s, ignoring until the next interval", strerror(-e));
                return;
        }
        if (!b)
                return;
        size_t items = b->items;
        e = st_consume(&r->set.next[ST_METRICS], b);
        /* cumulative: a refused report is superseded by the next one, nothing is lost for good */
        st_tel_add(e == 0 ? &r->set.tel->sig[ST_METRICS].accepted : &r->set.tel->sig[ST_METRICS].refused, items);
        st_batch_unref(b);
}

static void check_losses(struct ebpf_receiver *r) {
        struct st_ev_loss now;
        if (!r->k || kprobes_losses(r->k, &now) < 0 || now.count <= r->reported_loss.count)
                return;
        uint64_t delta = now.count - r->reported_loss.count;
        uint64_t from = r->reported_loss.count ? r->reported_loss.last_ns : now.first_ns;
        st_tel_metric_add(r->m_lost, (int64_t) delta);
        st_warn(r->set.log_name, "%" PRIu64 " kernel events lost (ring buffer full); raise ring_buffer_size", delta);
        if (st_consumer_set(&r->set.next[ST_LOGS]))
                krec_add_gap(&r->kb, "ring_buffer_full", delta, from, now.last_ns);
        r->reported_loss = now;
}

static void process_from_exec(const struct kevent *ev, struct st_process *p, char *line, size_t cap) {
        const struct st_ev_header *h = ev->h;
        *p = (struct st_process) { .pid = h->pid, .ppid = ev->exec->ppid, .start_ns = h->start_ns, .uid = h->uid,
                                   .gid = h->gid, .cgroup_id = h->cgroup_id };
        memcpy(p->comm, h->comm, sizeof(p->comm) - 1);
        size_t n = ev->path_len < cap - 1 ? ev->path_len : cap - 1;
        p->exe = strndup(ev->path, n);
        kevent_command_line(ev->args, ev->args_len, line, cap);
        p->cmdline = line[0] ? strdup(line) : NULL;
}

static bool exec_path_indirect(const char *p, size_t n) {
        return !n || p[0] != '/' || (n > 8 && memcmp(p, "/dev/fd/", 8) == 0) ||
               (n > 14 && memcmp(p, "/proc/self/fd/", 14) == 0);
}

static int on_record(void *ctx, void *data, size_t size) {
        struct ebpf_receiver *r = ctx;
        struct kevent ev;
        struct st_process proc = { 0 };
        bool have = false;
        char line[ST_ARGS_MAX + 1];

        st_tel_metric_add(r->m_events, 1);
        if (kevent_decode(data, size, &ev) < 0) {
                st_tel_metric_add(r->m_decode_errors, 1);
                return 0;
        }
        const struct st_ev_header *h = ev.h;
        char exe[ST_PATH_MAX + 1];
        if (ev.type == ST_EV_EXEC && !ev.exec->script && exec_path_indirect(ev.path, ev.path_len)) {
                /* "./app", "bin/app" or fexecve's "/dev/fd/3": what exec was given, not where
                 * the file is; /proc/PID/exe knows, while the process lives and has not exec'd
                 * again (same inode; not the device: btrfs subvolumes show another st_dev than
                 * the kernel's s_dev). A script's exe is its interpreter: then the argument stays. */
                char link[64];
                struct stat st;
                snprintf(link, sizeof(link), "%s/%u/exe", r->cfg->proc_root, h->pid);
                ssize_t n = readlink(link, exe, sizeof(exe));
                if (n > 0 && (size_t) n < sizeof(exe) && stat(link, &st) == 0 &&
                    (uint64_t) st.st_ino == ev.exec->exe_inode) {
                        ev.path = exe;
                        ev.path_len = (size_t) n;
                }
        }
        switch (ev.type) {
        case ST_EV_FORK:
                st_proctab_fork(r->procs, h->pid, h->tid, ev.fork->child_pid, ev.fork->child_start_ns);
                have = st_proctab_get(r->procs, h->pid, 0, &proc) == 0;
                break;
        case ST_EV_EXEC:
                process_from_exec(&ev, &proc, line, sizeof(line));
                if (st_container_resolve(h->cgroup_id, ev.exec->memcg_id, r->cfg->proc_root, h->pid, &proc.container) == 0)
                        st_process_drop_sandbox(&proc);
                else if (st_proctab_exec(r->procs, &proc) == 0) {
                        /* gone already, or in no container: the table keeps what the parent had */
                        st_process_clear(&proc);
                        have = st_proctab_get(r->procs, h->pid, h->start_ns, &proc) == 0;
                        break;
                }
                st_proctab_exec(r->procs, &proc);
                have = true;
                break;
        case ST_EV_EXIT:
                have = st_proctab_get(r->procs, h->pid, h->start_ns, &proc) == 0;
                st_proctab_exit(r->procs, h->pid, h->start_ns, ev.exit->exit_code, h->ts_ns);
                break;
        default: /* network, code: about a process that exists */
                have = st_proctab_get(r->procs, h->pid, h->start_ns, &proc) == 0;
                break;
        }
        bool net = ev.type == ST_EV_CONNECT || ev.type == ST_EV_ACCEPT || ev.type == ST_EV_CLOSE;
        unsigned kind = net ? KPROBES_NETWORK : ev.type == ST_EV_CODE ? KPROBES_CODE : ev.type == ST_EV_DNS ? KPROBES_DNS : KPROBES_PROCESS;
        if (r->metrics)
                kmetrics_add(r->metrics, &ev, net ? (uint32_t) r->cfg->network_sample_every : 1);
        if (st_consumer_set(&r->set.next[ST_LOGS]) && (r->record_kinds & kind)) {
                if (krec_add(&r->kb, &ev, have ? &proc : NULL) < 0)
                        r->kb.dropped++; /* out of memory: counted and told at the next flush */
                if ((int64_t) r->kb.records >= r->cfg->max_batch_records)
                        flush(r);
        }
        st_process_clear(&proc);
        return 0;
}

static void *reader_main(void *arg) {
        struct ebpf_receiver *r = arg;
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event e = { .events = EPOLLIN };
        bool stop = false;

        if (ep < 0) {
                st_error(r->set.log_name, "epoll_create1: %s; kernel events are not read", strerror(errno));
                return NULL;
        }
        e.data.fd = kprobes_epoll_fd(r->k);
        epoll_ctl(ep, EPOLL_CTL_ADD, e.data.fd, &e);
        e.data.fd = r->stop_fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, r->stop_fd, &e);

        int64_t next_flush = st_now_ns() + r->cfg->flush_interval;
        int64_t next_reconcile = st_now_ns() + RECONCILE_PERIOD_NS;
        while (!stop) {
                struct epoll_event got[2];
                int64_t wait_ns = next_flush - st_now_ns();
                int timeout = wait_ns > 0 ? (int) ((wait_ns + ST_NS_PER_MS - 1) / ST_NS_PER_MS) : 0;
                int n = epoll_wait(ep, got, 2, timeout);
                for (int i = 0; i < n; i++)
                        if (got[i].data.fd == r->stop_fd)
                                stop = true;
                kprobes_consume(r->k); /* also what is pending without a wake-up (BPF_RB_NO_WAKEUP) */
                if (stop || st_now_ns() >= next_flush) {
                        check_losses(r);
                        flush(r);
                        krec_clock_sync(&r->kb);
                        uint64_t now = st_boottime_ns(), ttl = (uint64_t) r->cfg->exited_process_ttl;
                        st_proctab_expire(r->procs, now > ttl ? now - ttl : 0);
                        st_tel_metric_set(r->m_processes, (int64_t) st_proctab_size(r->procs));
                        next_flush = st_now_ns() + r->cfg->flush_interval;
                }
                if (st_now_ns() >= next_reconcile) {
                        /* exits never seen (filtered, lost, or before start) must not keep
                         * entries, nor their pids, forever */
                        size_t gone = st_proctab_reconcile(r->procs, r->cfg->proc_root, st_boottime_ns(), RECONCILE_BATCH);
                        if (gone)
                                st_debug(r->set.log_name, "%zu processes gone without an exit event", gone);
                        next_reconcile = st_now_ns() + RECONCILE_PERIOD_NS;
                }
                if (r->metrics && (stop || st_now_ns() >= r->next_metrics_ns)) {
                        send_metrics(r);
                        r->next_metrics_ns = st_now_ns() + r->cfg->metrics_interval;
                }
        }
        close(ep);
        return NULL;
}

/* --- life cycle ------------------------------------------------------------------------------ */

static int resolve_cgroups(struct ebpf_receiver *r) {
        const struct st_strv *cg = &r->cfg->filters.cgroups;
        char mount[1024];
        bool have_mount = st_cgroup2_mount("/proc/self/mounts", mount, sizeof(mount)) == 0;
        if (!cg->n)
                return 0;
        r->cgroup_ids = calloc(cg->n, sizeof(*r->cgroup_ids));
        if (!r->cgroup_ids)
                return -ENOMEM;
        for (size_t i = 0; i < cg->n; i++) {
                char *end;
                uint64_t id = strtoull(cg->v[i], &end, 10);
                if (*cg->v[i] == '/' || *end)
                        id = have_mount ? st_cgroup2_id(mount, cg->v[i]) : 0;
                if (!id) {
                        st_error(r->set.log_name, "filters.cgroups: '%s' is no cgroup v2 path or id here", cg->v[i]);
                        return -ENOENT;
                }
                r->cgroup_ids[r->n_cgroup_ids++] = id;
        }
        return 0;
}

static void seed(struct ebpf_receiver *r) {
        const struct ebpf_config *c = r->cfg;
        if (!c->seed_from_proc)
                return;
        int e = st_proctab_seed(r->procs, c->proc_root);
        if (e < 0)
                st_warn(r->set.log_name, "cannot read %s: %s; processes started before strata are unknown, ignoring",
                        c->proc_root, strerror(-e));
        else
                st_info(r->set.log_name, "%d running processes learnt from %s (%zu known)", e, c->proc_root,
                        st_proctab_size(r->procs));
        st_tel_metric_set(r->m_processes, (int64_t) st_proctab_size(r->procs));
}

static int peer_lookup(void *data, const struct st_conn_key *k, struct st_conn_owner *ret) {
        struct ebpf_receiver *r = data;
        struct st_peer_key pk = { .family = k->family, .client_port = k->client_port, .server_port = k->server_port };
        struct st_peer_owner o;
        memcpy(pk.client_addr, k->client_addr, sizeof(pk.client_addr));
        int e = kprobes_peer_lookup(r->k, &pk, &o);
        if (e < 0)
                return e == -ENODEV ? e : -ENOENT;
        *ret = (struct st_conn_owner) { .pid = o.pid, .tid = o.tid, .uid = o.uid, .start_ns = o.start_ns,
                                        .cgroup_id = o.cgroup_id };
        return 0;
}

static int peer_watch(void *data, uint16_t port, bool add) {
        struct ebpf_receiver *r = data;
        int e = kprobes_own_port(r->k, port, add);
        if (e < 0)
                st_warn(r->set.log_name, "cannot %s port %u for sender attribution: %s, ignoring",
                        add ? "follow" : "stop following", (unsigned) port, strerror(-e));
        return e;
}

static int ebpf_start(void *self) {
        struct ebpf_receiver *r = self;
        const struct ebpf_config *c = r->cfg;
        char report[1024];
        int e;

        r->procs = st_proctab_global();
        if (!r->procs)
                return -ENOMEM;
        if ((e = resolve_cgroups(r)) < 0)
                return e;

        const char *force = c->program_kind == 0 ? NULL : kinds[c->program_kind];
        unsigned objects = c->events.n ? 0 : KPROBES_PROCESS | KPROBES_NETWORK | KPROBES_CODE | KPROBES_DNS;
        for (size_t i = 0; i < c->events.n; i++)
                objects |= event_bit(c->events.v[i]);
        r->record_kinds = c->records.n ? 0 : KPROBES_PROCESS | KPROBES_NETWORK | KPROBES_CODE | KPROBES_DNS;
        for (size_t i = 0; i < c->records.n; i++)
                r->record_kinds |= event_bit(c->records.v[i]);
        r->kb.net_sample_every = (uint32_t) c->network_sample_every;
        struct kprobes_opts o = {
                .objects = objects,
                .ring_bytes = c->ring_buffer_size, .args_max = (uint32_t) c->max_args_bytes,
                .net_sample_every = (uint32_t) c->network_sample_every,
                .wakeup_bytes = c->wakeup_bytes, .uid = c->filters.uid,
                .comms = (const char *const *) c->filters.comms.v, .cgroup_ids = r->cgroup_ids,
                .n_cgroup_ids = r->n_cgroup_ids, .force = force,
                .break_program = getenv("STRATA_TEST_EBPF_BREAK_PROGRAM"),
        };
        /* comms is NULL-terminated for the loader: config strv has n entries, v[n] may not be NULL */
        const char **comms = calloc(c->filters.comms.n + 1, sizeof(*comms));
        if (!comms)
                return -ENOMEM;
        for (size_t i = 0; i < c->filters.comms.n; i++)
                comms[i] = c->filters.comms.v[i];
        o.comms = comms;
        e = kprobes_open(&o, on_record, r, &r->k, report, sizeof(report));
        free(comms);
        if (e < 0) {
                /* degrade, don't fail: the rest of the agent (and the /proc process table) runs */
                st_warn(r->set.log_name, "kernel collection is off: %s", report);
                st_tel_metric_set(r->m_up, 0);
                seed(r);
                return 0;
        }
        st_info(r->set.log_name, "kernel hooks: %s", report);
        st_tel_metric_set(r->m_up, 1);
        st_tel_metric_set(r->m_hooks, (int64_t) kprobes_attached(r->k));

        if (st_consumer_set(&r->set.next[ST_METRICS])) {
                if ((e = kmetrics_new((size_t) c->metrics_max_series, &r->metrics)) < 0)
                        return e;
                r->metrics_start_unix_ns = (uint64_t) st_wall_ns();
                r->next_metrics_ns = st_now_ns() + c->metrics_interval;
        }
        r->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (r->stop_fd < 0 || (e = pthread_create(&r->thread, NULL, reader_main, r)) != 0) {
                e = r->stop_fd < 0 ? -errno : -e;
                st_error(r->set.log_name, "cannot start the reader thread: %s", strerror(-e));
                kprobes_free(r->k);
                r->k = NULL;
                return e;
        }
        r->running = true;
        (void) pthread_setname_np(r->thread, "ebpf-reader");
        /* the connections to strata's own ports: receivers attribute their senders with them */
        if (kprobes_peer_lookup(r->k, &(struct st_peer_key) { 0 }, &(struct st_peer_owner) { 0 }) != -ENODEV) {
                struct st_conn_owner_source src = { .lookup = peer_lookup, .watch_port = peer_watch, .data = r };
                st_conn_owner_provide(&src);
                r->providing_peers = true;
        }
        /* after attaching, so that a process born between the scan and the attach is not
         * missed; with the reader running, so that a long scan does not fill the ring buffer
         * (the table is shared, and an entry the kernel made first wins over /proc's) */
        seed(r);
        return 0;
}

/* Stops the thread (which reads what is left in the ring buffer and flushes it downstream
 * first), then detaches the programs. */
static int ebpf_shutdown(void *self, int64_t deadline_ns) {
        struct ebpf_receiver *r = self;
        if (!r)
                return 0;
        if (r->providing_peers) {
                st_conn_owner_provide(NULL); /* waits for lookups underway */
                r->providing_peers = false;
        }
        if (r->running) {
                uint64_t one = 1;
                if (write(r->stop_fd, &one, sizeof(one)) < 0)
                        st_warn(r->set.log_name, "cannot wake the reader: %s, ignoring", strerror(errno));
                pthread_join(r->thread, NULL);
                r->running = false;
        }
        kprobes_free(r->k);
        r->k = NULL;
        return 0;
}

static void ebpf_destroy(void *self) {
        struct ebpf_receiver *r = self;
        if (!r)
                return;
        ebpf_shutdown(r, 0);
        krec_reset(&r->kb);
        kmetrics_free(r->metrics);
        if (r->stop_fd >= 0)
                close(r->stop_fd);
        free(r->cgroup_ids);
        free(r);
}

/* --- strata doctor --------------------------------------------------------------------------- */

static uint64_t effective_caps(void) {
        FILE *f = fopen("/proc/self/status", "re");
        char line[256];
        unsigned long long caps = 0;
        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "CapEff: %llx", &caps) == 1)
                        break;
        fclose(f);
        return caps;
}

static int ignore_record(void *ctx, void *data, size_t size) { return 0; }

static void ebpf_doctor(st_buf *out) {
        enum { CAP_SYS_ADMIN_BIT = 21, CAP_PERFMON_BIT = 38, CAP_BPF_BIT = 39 };
        uint64_t caps = effective_caps();
        bool admin = caps & (UINT64_C(1) << CAP_SYS_ADMIN_BIT), perfmon = caps & (UINT64_C(1) << CAP_PERFMON_BIT),
             bpf = caps & (UINT64_C(1) << CAP_BPF_BIT);
        char buf[2048];

        st_doctor_line(out, "privileges", admin || (bpf && perfmon), "CAP_BPF %s, CAP_PERFMON %s, CAP_SYS_ADMIN %s",
                       bpf ? "yes" : "no", perfmon ? "yes" : "no", admin ? "yes" : "no");
        bool btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
        st_doctor_line(out, "kernel BTF", btf, "%s", btf ? "/sys/kernel/btf/vmlinux" : "/sys/kernel/btf/vmlinux is missing: CO-RE programs cannot load");
        if (st_cgroup2_mount("/proc/self/mounts", buf, sizeof(buf)) == 0)
                st_doctor_line(out, "cgroup v2", 1, "mounted at %s", buf);
        else
                st_doctor_line(out, "cgroup v2", 0, "no cgroup2 mount: events carry no cgroup id");
        bool tracefs = access("/sys/kernel/tracing/events", F_OK) == 0 || access("/sys/kernel/debug/tracing/events", F_OK) == 0;
        int e = errno;
        st_doctor_line(out, "tracefs", tracefs, "%s",
                       tracefs        ? "mounted: syscall tracepoints for accept and code loads"
                       : e == EACCES ? "not readable by this user"
                                     : "not mounted (the receiver mounts it when it can)");

        struct kprobes *k = NULL;
        struct kprobes_opts o = { .objects = KPROBES_PROCESS | KPROBES_NETWORK | KPROBES_CODE | KPROBES_DNS, .ring_bytes = 1 << 16,
                                  .args_max = 256, .uid = -1 };
        int r = kprobes_open(&o, ignore_record, NULL, &k, buf, sizeof(buf));
        st_doctor_line(out, "kernel hooks", r == 0, "%s", buf[0] ? buf : strerror(-r));
        kprobes_free(k);
}

const struct st_factory st_receiver_ebpf = {
        .type = "ebpf",
        .kind = ST_RECEIVER,
        .signals = ST_SIG_BIT(ST_LOGS) | ST_SIG_BIT(ST_METRICS),
        .description = "kernel events from eBPF (processes, TCP connections, code loads) as log records and aggregated metrics; keeps the process table",
        .config_size = sizeof(struct ebpf_config),
        .config = ebpf_fields,
        .validate = ebpf_validate,
        .create = ebpf_create,
        .start = ebpf_start,
        .shutdown = ebpf_shutdown,
        .destroy = ebpf_destroy,
        .doctor = ebpf_doctor,
};
