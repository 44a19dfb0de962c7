/* The correlate processor: every record leaves with its process, container and trace.
 *
 *  - Enrichment (all signals): a resource whose process.pid strata observed itself (the
 *    kernel's records; senders attributed by SO_PEERCRED or the kernel's connection table,
 *    see peer.h) gets what the process table knows: process.*, container.* and k8s.pod.uid.
 *    What the sender claimed and the table contradicts is kept as strata.claimed.<key>.
 *    A pid the sender only claimed is never looked up: it may be another host's.
 *  - Traces: each span of an observed process goes into the span index (span_index.h), with
 *    thread.id when the SDK set it. The context channel (context_channel.h), when configured,
 *    feeds the same index as spans start and end.
 *  - Logs: kernel events (log records of an observed process without a trace id) wait in a
 *    bounded join window, since spans arrive after they end; then each gets the trace_id and
 *    span_id of the innermost span active on its thread (or, thread unknown, in its process) at
 *    its time, and strata.correlation.method says how. A process that has no span of its own
 *    (a child spawned inside a span) is joined through the thread of its parent that forked it.
 *    Under pressure (count or bytes) the oldest leave early, joined with what is known, and
 *    are counted; the pipeline is never blocked and the window never grows unbounded. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "component.h"
#include "context_channel.h"
#include "log.h"
#include "otlp_attr.h"
#include "process_table.h"
#include "span_events.h"
#include "span_index.h"
#include "unix_socket.h"

struct correlate_cfg {
        int64_t join_window;
        int64_t max_pending_records;
        uint64_t max_pending_bytes;
        bool enrich;
        bool span_events;
        char *context_socket;
        char *context_socket_mode;
};

static const struct st_cfg_field correlate_fields[] = {
        { .name = "join_window", .type = ST_CFG_DURATION, .offset = offsetof(struct correlate_cfg, join_window),
          .def = "5s", .desc = "how long kernel events wait for the spans they happened in (0: join with what is known at once)" },
        { .name = "max_pending_records", .type = ST_CFG_INT, .offset = offsetof(struct correlate_cfg, max_pending_records),
          .def = "100000", .min = 1, .max = INT32_MAX,
          .desc = "log records waiting at most; beyond, the oldest leave early (counted)" },
        { .name = "max_pending_bytes", .type = ST_CFG_SIZE, .offset = offsetof(struct correlate_cfg, max_pending_bytes),
          .def = "64MiB", .desc = "memory of the waiting batches at most; beyond, the oldest leave early (counted)" },
        { .name = "enrich", .type = ST_CFG_BOOL, .offset = offsetof(struct correlate_cfg, enrich), .def = "true",
          .desc = "add process.* and container.* resource attributes of observed processes from the process table" },
        { .name = "span_events", .type = ST_CFG_BOOL, .offset = offsetof(struct correlate_cfg, span_events), .def = "false",
          .desc = "also add each joined kernel event to its span as a span event (spans then wait twice join_window)" },
        { .name = "context_socket", .type = ST_CFG_STRING, .offset = offsetof(struct correlate_cfg, context_socket),
          .def = "", .desc = "Unix socket of the context channel (docs/context-channel.md); \"\" = off" },
        { .name = "context_socket_mode", .type = ST_CFG_STRING,
          .offset = offsetof(struct correlate_cfg, context_socket_mode), .def = "0660",
          .desc = "permissions of the context channel's socket file (octal)" },
        ST_CFG_END
};

struct held {
        st_batch *b;
        int64_t due_ns;
        size_t bytes;
};

struct correlate {
        const struct correlate_cfg *cfg;
        char *log_name;
        struct st_consumer next;
        struct st_component_telemetry *tel;
        enum st_signal signal;
        mode_t socket_mode;
        struct st_proctab *procs;
        struct st_spanidx *idx;
        struct st_ctxchan *chan;
        struct st_spanev *events; /* span_events: joined kernel events waiting for their span */
        int64_t window_ns;        /* how long a batch waits here */

        pthread_mutex_t lock; /* the window */
        pthread_cond_t cond;
        struct held *q;       /* a ring */
        size_t q_head, q_n, q_cap;
        size_t pending_records, pending_bytes;
        bool stopping, timer_running;
        bool windowed; /* batches wait here: set once by start(), read by consume() */
        pthread_t timer;

        struct st_tel_metric *m_exact, *m_process, *m_none, *m_early, *m_spans, *m_enriched, *m_pending, *m_span_events;
        _Atomic int64_t last_warn_ns;
};

static int correlate_validate(const void *cfg, struct st_cfg_ctx *ctx) {
        const struct correlate_cfg *c = cfg;
        mode_t m;
        if (c->join_window < 0 || c->join_window > 60 * ST_NS_PER_SEC) {
                st_cfg_errorf(ctx, "join_window", "must be between 0 and 60s");
                return -EINVAL;
        }
        if (c->context_socket && *c->context_socket && (c->context_socket[0] != '/' || strlen(c->context_socket) >= 108)) {
                st_cfg_errorf(ctx, "context_socket", "'%s' is not an absolute path of at most 107 bytes", c->context_socket);
                return -EINVAL;
        }
        if (st_parse_mode(c->context_socket_mode, &m) < 0) {
                st_cfg_errorf(ctx, "context_socket_mode", "'%s' is not an octal mode like 0660", c->context_socket_mode);
                return -EINVAL;
        }
        return 0;
}

/* --- attributes ----------------------------------------------------------------------------- */

/* The pid of a resource, when strata observed it: the kernel's records, or a sender the
 * receiver attributed (the batch says so; an attribute could be forged or forwarded). */
static bool observed_pid(const st_batch *b, const st_resource *res, uint32_t *ret) {
        int64_t pid;
        if (b->pid_source == ST_PIDS_CLAIMED || !res ||
            !st_kv_int_of(res->attributes, res->n_attributes, "process.pid", &pid) || pid <= 0 || pid > UINT32_MAX)
                return false;
        *ret = (uint32_t) pid;
        return true;
}

/* --- enrichment --------------------------------------------------------------------------------- */

struct adds {
        st_key_value **v;
        size_t n;
};

/* Adds key=s when absent; when present with another string value, the observed value wins
 * and the claim is kept as strata.claimed.<key>. */
static int put_str(st_arena *a, st_resource *res, struct adds *ad, const char *key, const char *claimed_key,
                   const char *s) {
        if (!s || !*s)
                return 0;
        for (size_t i = 0; i < res->n_attributes; i++) {
                st_key_value *kv = res->attributes[i];
                if (!kv || !kv->key || strcmp(kv->key, key) != 0)
                        continue;
                const st_any_value *v = kv->value;
                bool same = v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
                            v->string_value && strcmp(v->string_value, s) == 0;
                if (same || !claimed_key)
                        return 0; /* agreed, or a fact we do not overrule */
                st_key_value *obs = st_kv_str(a, key, s), *claim = st_arena_memdup(a, kv, sizeof(*kv));
                if (!obs || !claim)
                        return -ENOMEM;
                claim->key = (char *) claimed_key;
                res->attributes[i] = obs; /* the pointer array is ours (writable batch) */
                ad->v[ad->n++] = claim;
                return 0;
        }
        st_key_value *kv = st_kv_str(a, key, s);
        if (!kv)
                return -ENOMEM;
        ad->v[ad->n++] = kv;
        return 0;
}

static int put_int(st_arena *a, const st_resource *res, struct adds *ad, const char *key, int64_t i) {
        if (st_kv_find(res->attributes, res->n_attributes, key))
                return 0;
        st_key_value *kv = st_kv_int(a, key, i);
        if (!kv)
                return -ENOMEM;
        ad->v[ad->n++] = kv;
        return 0;
}

#define MAX_ADDS 12

struct enrich_ctx {
        st_arena *a;
        st_resource *res;
        struct adds ad;
        int r;
};

/* Under the process table's read lock: copies straight into the batch's arena. */
static void enrich_from(const struct st_process *proc, void *arg) {
        struct enrich_ctx *e = arg;
        st_arena *a = e->a;
        st_resource *res = e->res;
        struct adds *ad = &e->ad;
        const struct st_container_ref *c = &proc->container;
        if ((e->r = put_int(a, res, ad, "process.parent_pid", proc->ppid)) < 0 ||
            (e->r = put_str(a, res, ad, "process.executable.name", NULL, proc->comm)) < 0 ||
            (e->r = put_str(a, res, ad, "process.executable.path", NULL, proc->exe)) < 0 ||
            (e->r = put_str(a, res, ad, "process.command_line", NULL, proc->cmdline)) < 0 ||
            (e->r = put_int(a, res, ad, "process.user.id", proc->uid)) < 0)
                return;
        if (st_container_known(c) &&
            ((e->r = put_str(a, res, ad, "container.id", "strata.claimed.container.id", c->id)) < 0 ||
             (e->r = put_str(a, res, ad, "container.runtime.name", NULL, c->runtime)) < 0 ||
             (e->r = put_str(a, res, ad, "k8s.pod.uid", "strata.claimed.k8s.pod.uid", c->pod_uid)) < 0))
                return;
}

static int enrich_resource(struct correlate *p, st_arena *a, st_resource *res, uint32_t pid, bool learn) {
        st_key_value *added[MAX_ADDS];
        struct enrich_ctx e = { .a = a, .res = res, .ad = { .v = added } };
        int r = st_proctab_with(p->procs, pid, 0, enrich_from, &e);
        /* a sender no kernel receiver told the table of (a sidecar, no eBPF): from /proc */
        if (r == -ENOENT && learn && st_proctab_learn(p->procs, "/proc", pid) == 0)
                r = st_proctab_with(p->procs, pid, 0, enrich_from, &e);
        if (r < 0 || e.r < 0)
                return e.r;
        if (e.ad.n) {
                st_key_value **v = st_arena_alloc(a, (res->n_attributes + e.ad.n) * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                if (res->n_attributes)
                        memcpy(v, res->attributes, res->n_attributes * sizeof(*v));
                memcpy(v + res->n_attributes, added, e.ad.n * sizeof(*v));
                res->attributes = v;
                res->n_attributes += e.ad.n;
                st_tel_metric_add(p->m_enriched, 1);
        }
        return 0;
}

static int enrich(struct correlate *p, st_batch *b) {
        enum st_signal s = b->signal;
        for (size_t i = 0; i < st_req_n(s, b->req); i++) {
                st_resource *res = st_res_resource(s, st_req_v(s, b->req)[i]);
                uint32_t pid;
                if (observed_pid(b, res, &pid)) {
                        int r = enrich_resource(p, &b->arena, res, pid, b->pid_source == ST_PIDS_OBSERVED);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* --- spans into the index --------------------------------------------------------------------- */

static void index_spans(struct correlate *p, const st_batch *b, const st_traces_req *req) {
        st_spanidx_tick(p->idx, (uint64_t) st_wall_ns());
        for (size_t i = 0; i < req->n_resource_spans; i++) {
                const st_resource_spans *rs = req->resource_spans[i];
                uint32_t pid;
                if (!observed_pid(b, rs->resource, &pid))
                        continue;
                for (size_t j = 0; j < rs->n_scope_spans; j++)
                        for (size_t k = 0; k < rs->scope_spans[j]->n_spans; k++) {
                                const st_span *sp = rs->scope_spans[j]->spans[k];
                                struct st_span_ref ref;
                                if (sp->trace_id.len != 16 || sp->span_id.len != 8)
                                        continue;
                                memcpy(ref.trace_id, sp->trace_id.data, 16);
                                memcpy(ref.span_id, sp->span_id.data, 8);
                                uint64_t end = sp->end_time_unix_nano >= sp->start_time_unix_nano ? sp->end_time_unix_nano
                                                                                                 : sp->start_time_unix_nano;
                                /* thread unknown: an SDK's thread.id is its language's thread (a JVM
                                 * thread id, Python's get_ident()), not the kernel's tid */
                                if (st_spanidx_add(p->idx, pid, 0, sp->start_time_unix_nano, end, &ref) == 0)
                                        st_tel_metric_add(p->m_spans, 1);
                        }
        }
}

/* --- the join ------------------------------------------------------------------------------------ */

static bool wants_join(const st_log_record *lr) { return lr->trace_id.len == 0; }

/* Whether b holds kernel events to join (the kernel receiver's records without a trace: an
 * application's own logs are not joined by time, they carry their context or none). */
static bool joinable(const st_batch *b) {
        const st_logs_req *req = (const st_logs_req *) b->req;
        if (b->pid_source != ST_PIDS_KERNEL)
                return false;
        for (size_t i = 0; i < req->n_resource_logs; i++) {
                const st_resource_logs *rl = req->resource_logs[i];
                uint32_t pid;
                if (!observed_pid(b, rl->resource, &pid))
                        continue;
                for (size_t j = 0; j < rl->n_scope_logs; j++)
                        for (size_t k = 0; k < rl->scope_logs[j]->n_log_records; k++)
                                if (wants_join(rl->scope_logs[j]->log_records[k]))
                                        return true;
        }
        return false;
}

struct spawner {
        bool known;
        uint32_t ppid, tid;
        uint64_t at_unix_ns;
};

static void lineage(const struct st_process *proc, void *arg) {
        struct spawner *sp = arg;
        sp->ppid = proc->fork_tid ? proc->ppid : 0;
        sp->tid = proc->fork_tid;
        sp->at_unix_ns = proc->start_ns; /* boot time here; the caller converts */
}

static enum st_corr_method find(struct correlate *p, uint32_t pid, uint32_t tid, uint64_t t, struct spawner *sp,
                                int64_t boot_to_unix, struct st_span_ref *ret, bool *ret_via_parent) {
        enum st_corr_method m = st_spanidx_find(p->idx, pid, tid, t, ret);
        *ret_via_parent = false;
        if (m != ST_CORR_NONE)
                return m;
        /* a process spawned inside a span: the span of the parent's thread when it forked */
        if (!sp->known) {
                sp->known = true;
                if (st_proctab_with(p->procs, pid, 0, lineage, sp) == 0)
                        sp->at_unix_ns = (uint64_t) ((int64_t) sp->at_unix_ns + boot_to_unix);
        }
        if (!sp->ppid)
                return ST_CORR_NONE;
        m = st_spanidx_find(p->idx, sp->ppid, sp->tid, sp->at_unix_ns, ret);
        *ret_via_parent = m != ST_CORR_NONE;
        return m;
}

static int join_record(struct correlate *p, st_arena *a, st_log_record *lr, uint32_t pid, struct spawner *sp,
                       int64_t boot_to_unix) {
        int64_t tid = 0;
        struct st_span_ref ref;
        bool via_parent;
        if (!st_kv_int_of(lr->attributes, lr->n_attributes, "thread.id", &tid) || tid < 0 || tid > UINT32_MAX)
                tid = 0;
        enum st_corr_method m = find(p, pid, (uint32_t) tid, lr->time_unix_nano, sp, boot_to_unix, &ref, &via_parent);
        st_tel_metric_add(m == ST_CORR_EXACT_THREAD ? p->m_exact : m == ST_CORR_PROCESS_TIME ? p->m_process : p->m_none, 1);
        st_key_value **v = st_arena_alloc(a, (lr->n_attributes + 2) * sizeof(*v));
        st_key_value *mk = st_kv_static(a, "strata.correlation.method", st_corr_method_name(m));
        if (!v || !mk)
                return -ENOMEM;
        if (lr->n_attributes)
                memcpy(v, lr->attributes, lr->n_attributes * sizeof(*v));
        v[lr->n_attributes] = mk;
        size_t n = lr->n_attributes + 1;
        if (via_parent) {
                st_key_value *pk = st_kv_int(a, "strata.correlation.parent_pid", sp->ppid);
                if (!pk)
                        return -ENOMEM;
                v[n++] = pk;
        }
        lr->attributes = v;
        lr->n_attributes = n;
        if (m != ST_CORR_NONE) {
                uint8_t *ids = st_arena_alloc(a, 24);
                if (!ids)
                        return -ENOMEM;
                memcpy(ids, ref.trace_id, 16);
                memcpy(ids + 16, ref.span_id, 8);
                lr->trace_id = (ProtobufCBinaryData) { 16, ids };
                lr->span_id = (ProtobufCBinaryData) { 8, ids + 16 };
                /* full or out of memory: the record still carries its span, counted there */
                if (p->events)
                        (void) st_spanev_add(p->events, ref.trace_id, ref.span_id, lr, st_now_ns());
        }
        return 0;
}

static int join(struct correlate *p, st_batch *b) {
        st_logs_req *req = (st_logs_req *) b->req;
        int64_t boot_to_unix = st_boot_to_unix_ns();
        for (size_t i = 0; i < req->n_resource_logs; i++) {
                st_resource_logs *rl = req->resource_logs[i];
                struct spawner sp = { 0 };
                uint32_t pid;
                if (!observed_pid(b, rl->resource, &pid))
                        continue;
                for (size_t j = 0; j < rl->n_scope_logs; j++)
                        for (size_t k = 0; k < rl->scope_logs[j]->n_log_records; k++) {
                                st_log_record *lr = rl->scope_logs[j]->log_records[k];
                                if (!wants_join(lr))
                                        continue;
                                int r = join_record(p, &b->arena, lr, pid, &sp, boot_to_unix);
                                if (r < 0)
                                        return r;
                        }
        }
        b->wire = NULL; /* changed */
        b->wire_len = 0;
        return 0;
}

/* span_events: each span takes the kernel events joined to it. */
static int attach(struct correlate *p, st_batch *b) {
        st_traces_req *req = (st_traces_req *) b->req;
        for (size_t i = 0; i < req->n_resource_spans; i++) {
                st_resource_spans *rs = req->resource_spans[i];
                for (size_t j = 0; j < rs->n_scope_spans; j++)
                        for (size_t k = 0; k < rs->scope_spans[j]->n_spans; k++) {
                                int n = st_spanev_attach(p->events, rs->scope_spans[j]->spans[k], &b->arena);
                                if (n < 0)
                                        return n;
                                st_tel_metric_add(p->m_span_events, n);
                        }
        }
        b->wire = NULL; /* changed */
        b->wire_len = 0;
        return 0;
}

/* --- the window ----------------------------------------------------------------------------------- */

static void dropped(struct correlate *p, size_t items, int r) {
        if (p->tel)
                st_tel_add(&p->tel->sig[p->signal].dropped, items);
        int64_t now = st_now_ns(), last = atomic_load(&p->last_warn_ns);
        if (now - last >= ST_NS_PER_SEC && atomic_compare_exchange_strong(&p->last_warn_ns, &last, now))
                st_warn(p->log_name, "dropped %zu %s after their join window: the next consumer refused them: %s", items,
                        st_signals[p->signal].item_name, strerror(-r));
}

/* Joins and sends a batch that left the window (consumes the reference). */
static void release(struct correlate *p, st_batch *b) {
        int r = p->signal == ST_TRACES ? attach(p, b) : join(p, b);
        if (r >= 0)
                r = st_consume(&p->next, b);
        if (r < 0)
                dropped(p, b->items, r);
        st_batch_unref(b);
}

/* Takes the head of the window (locked). */
static st_batch *pop(struct correlate *p) {
        struct held h = p->q[p->q_head];
        p->q_head = (p->q_head + 1) % p->q_cap;
        p->q_n--;
        p->pending_records -= h.b->items;
        p->pending_bytes -= h.bytes;
        st_tel_metric_set(p->m_pending, (int64_t) p->pending_records);
        return h.b;
}

static void *timer_main(void *arg) {
        struct correlate *p = arg;
        pthread_mutex_lock(&p->lock);
        for (;;) {
                int64_t now = st_now_ns();
                if (p->q_n && (p->q[p->q_head].due_ns <= now || p->stopping)) {
                        st_batch *b = pop(p);
                        pthread_mutex_unlock(&p->lock);
                        release(p, b);
                        pthread_mutex_lock(&p->lock);
                        continue;
                }
                if (p->stopping)
                        break;
                /* the stores forget what no waiting record can need */
                st_spanidx_tick(p->idx, (uint64_t) st_wall_ns());
                if (p->events)
                        st_spanev_tick(p->events, st_now_ns());
                int64_t wake = p->q_n ? p->q[p->q_head].due_ns : now + ST_NS_PER_SEC;
                struct timespec ts = st_ns_to_timespec(st_wall_ns() + (wake - now));
                pthread_cond_timedwait(&p->cond, &p->lock, &ts);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

static int hold(struct correlate *p, st_batch *b) {
        size_t bytes = b->arena.bytes + b->wire_len; /* what holding it keeps alive */
        st_batch *early[16];
        size_t n_early = 0;
        int r = 0;

        pthread_mutex_lock(&p->lock);
        if (p->stopping) {
                pthread_mutex_unlock(&p->lock);
                release(p, st_batch_ref(b)); /* no window any more: join with what is known */
                return 0;
        }
        /* make room: the oldest leave early */
        while (p->q_n && n_early < 16 &&
               (p->pending_records + b->items > (size_t) p->cfg->max_pending_records ||
                p->pending_bytes + bytes > p->cfg->max_pending_bytes))
                early[n_early++] = pop(p);
        if (p->q_n == p->q_cap) {
                size_t cap = p->q_cap ? 2 * p->q_cap : 64;
                struct held *q = malloc(cap * sizeof(*q));
                if (!q) {
                        r = -ENOMEM;
                        goto out;
                }
                for (size_t i = 0; i < p->q_n; i++)
                        q[i] = p->q[(p->q_head + i) % p->q_cap];
                free(p->q);
                p->q = q;
                p->q_head = 0;
                p->q_cap = cap;
        }
        p->q[(p->q_head + p->q_n) % p->q_cap] = (struct held) { st_batch_ref(b), st_now_ns() + p->window_ns, bytes };
        p->q_n++;
        p->pending_records += b->items;
        p->pending_bytes += bytes;
        st_tel_metric_set(p->m_pending, (int64_t) p->pending_records);
        if (p->q_n == 1)
                pthread_cond_signal(&p->cond);
out:
        pthread_mutex_unlock(&p->lock);
        for (size_t i = 0; i < n_early; i++) {
                st_tel_metric_add(p->m_early, (int64_t) early[i]->items);
                release(p, early[i]);
        }
        return r;
}

/* --- the component ---------------------------------------------------------------------------- */

static int correlate_consume(void *self, st_batch *b) {
        struct correlate *p = self;
        st_batch *w = NULL;
        int r;

        /* housekeeping of the shared stores, at most once a second whoever calls */
        st_spanidx_tick(p->idx, (uint64_t) st_wall_ns());
        if (p->events)
                st_spanev_tick(p->events, st_now_ns());
        if (p->signal == ST_TRACES) {
                const st_traces_req *req = (const st_traces_req *) st_batch_req(b);
                if (!req)
                        return -ENOMEM;
                index_spans(p, b, req);
        }
        if (p->cfg->enrich || p->signal == ST_LOGS || p->events) {
                if ((r = st_batch_writable(b, &w)) < 0)
                        return r;
                b = w;
                if (p->cfg->enrich && (r = enrich(p, b)) < 0)
                        goto out;
        }
        bool kernel = p->signal == ST_LOGS && joinable(b);
        if (p->windowed && (p->signal == ST_TRACES || kernel)) {
                r = hold(p, b); /* after shutdown began, it joins and sends at once */
                goto out;
        }
        if (kernel && (r = join(p, b)) < 0)
                goto out; /* a zero window: joined with what is known at once */
        if (p->signal == ST_TRACES && p->events && (r = attach(p, b)) < 0)
                goto out;
        r = st_consume(&p->next, b);
out:
        st_batch_unref(w);
        return r;
}

static int correlate_create(const struct st_component_settings *set, const void *cfg, void **ret) {
        const struct correlate_cfg *c = cfg;
        struct correlate *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->cfg = c;
        p->next = set->next[set->signal];
        p->signal = set->signal;
        p->tel = set->tel;
        p->log_name = strdup(set->log_name);
        p->procs = st_proctab_global();
        p->idx = st_spanidx_global();
        (void) st_parse_mode(c->context_socket_mode, &p->socket_mode); /* validated */
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->cond, NULL);
        if (!p->log_name || !p->procs || !p->idx) {
                free(p->log_name);
                free(p);
                return -ENOMEM;
        }
        st_spanidx_keep_at_least(p->idx, (uint64_t) c->join_window * 2 + 10 * (uint64_t) ST_NS_PER_SEC);
        /* spans wait longer than kernel events: an event reaches its span's store only when it
         * leaves its own window, and it may arrive up to one window after its span */
        p->window_ns = p->signal == ST_TRACES ? 2 * c->join_window + ST_NS_PER_SEC : c->join_window;
        if (c->span_events && p->signal != ST_METRICS && !(p->events = st_spanev_global())) {
                free(p->log_name);
                free(p);
                return -ENOMEM;
        }
        if (p->tel) {
                p->m_exact = st_tel_metric(p->tel, "correlate_joined_exact_thread_total", "kernel events joined to a span of their thread", false);
                p->m_process = st_tel_metric(p->tel, "correlate_joined_process_time_total", "kernel events joined to a span of their process (thread unknown)", false);
                p->m_none = st_tel_metric(p->tel, "correlate_unjoined_total", "kernel events with no span active where and when they happened", false);
                p->m_early = st_tel_metric(p->tel, "correlate_released_early_total", "log records that left the join window early (count or bytes limit)", false);
                p->m_spans = st_tel_metric(p->tel, "correlate_spans_indexed_total", "spans of observed processes added to the span index", false);
                p->m_enriched = st_tel_metric(p->tel, "correlate_resources_enriched_total", "resources given process or container attributes", false);
                p->m_pending = st_tel_metric(p->tel, "correlate_pending_records", "records waiting in the join window", true);
                if (p->events)
                        p->m_span_events = st_tel_metric(p->tel, "correlate_span_events_total", "kernel events added to their spans as span events", false);
        }
        *ret = p;
        return 0;
}

static int correlate_start(void *self) {
        struct correlate *p = self;
        int r;
        if (p->cfg->context_socket && *p->cfg->context_socket &&
            (r = st_ctxchan_acquire(p->cfg->context_socket, p->socket_mode, p->log_name, &p->chan)) < 0)
                return r;
        if ((p->signal == ST_LOGS || (p->signal == ST_TRACES && p->events)) && p->cfg->join_window > 0) {
                r = -pthread_create(&p->timer, NULL, timer_main, p);
                if (r < 0) {
                        st_error(p->log_name, "cannot start the join window's thread: %s", strerror(-r));
                        return r;
                }
                p->timer_running = true;
                p->windowed = true;
                (void) pthread_setname_np(p->timer, "correlate");
        }
        return 0;
}

/* Releases every waiting batch at once, joined with what is known (the spans that were to
 * come will not: the pipelines upstream have stopped). */
static int correlate_shutdown(void *self, int64_t deadline_ns) {
        struct correlate *p = self;
        (void) deadline_ns;
        if (!p)
                return 0;
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
        if (p->timer_running) {
                pthread_join(p->timer, NULL);
                p->timer_running = false;
        }
        st_ctxchan_release(p->chan);
        p->chan = NULL;
        return 0;
}

static void correlate_destroy(void *self) {
        struct correlate *p = self;
        if (!p)
                return;
        correlate_shutdown(p, 0);
        while (p->q_n)
                st_batch_unref(pop(p)); /* never started, never drained: nothing was held */
        free(p->q);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->cond);
        free(p->log_name);
        free(p);
}

const struct st_factory st_processor_correlate = {
        .type = "correlate",
        .kind = ST_PROCESSOR,
        .signals = ST_SIG_ALL,
        .description = "adds process, container and trace context: kernel events joined to the spans they happened in",
        .mutates = true,
        .config_size = sizeof(struct correlate_cfg),
        .config = correlate_fields,
        .validate = correlate_validate,
        .create = correlate_create,
        .start = correlate_start,
        .consume = correlate_consume,
        .shutdown = correlate_shutdown,
        .destroy = correlate_destroy,
};
