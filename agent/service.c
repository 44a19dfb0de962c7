#include "service.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "component.h"
#include "fanout.h"
#include "log.h"

struct component {
        char *id; /* "otlp/tempo" */
        enum st_kind kind;
        const struct st_factory *f;
        const st_node *node, *key;
        void *cfg;
        bool used;
        /* receivers and exporters: the one instance; processors: see struct stage */
        void *inst;
        bool started;
        struct st_component_settings set;
        char *log_name;
};

struct stage { /* one processor instance in one pipeline */
        struct component *c;
        void *inst;
        bool started;
        struct st_component_settings set;
        char *log_name;
};

struct pipeline {
        char *name;
        enum st_signal signal;
        const st_node *key;
        struct component **receivers, **exporters;
        size_t n_receivers, n_exporters;
        struct stage *stages;
        size_t n_stages;
        struct st_fanout exporters_fanout;
        struct st_consumer head; /* where receivers deliver */
};

struct st_service {
        st_node *root;
        struct component *comps;
        size_t n_comps;
        struct pipeline *pipes;
        size_t n_pipes;
        struct st_fanout recv_fanout[64][ST_SIGNAL_COUNT]; /* indexed like receivers in comps (bounded) */
        struct st_service_telemetry tel;
        int64_t shutdown_timeout;
        bool started;
};

static const char *const kind_keys[] = { "receivers", "processors", "exporters" };

const char *st_kind_name(enum st_kind k) {
        static const char *const names[] = { "receiver", "processor", "exporter" };
        return (unsigned) k < 3 ? names[k] : "component";
}

const struct st_factory *st_factory_find(enum st_kind kind, const char *type) {
        for (size_t i = 0; st_factories[i]; i++)
                if (st_factories[i]->kind == kind && strcmp(st_factories[i]->type, type) == 0)
                        return st_factories[i];
        return NULL;
}

static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const log_encodings[] = { "console", "json", NULL };

static const struct st_cfg_field telemetry_logs_fields[] = {
        { "level", ST_CFG_ENUM, offsetof(struct st_service_telemetry, log_level), "info", "least severe level logged",
          .enums = log_levels },
        { "encoding", ST_CFG_ENUM, offsetof(struct st_service_telemetry, log_encoding), "console", "console or json",
          .enums = log_encodings },
        ST_CFG_END,
};
/* metrics.level is read into a scratch slot: the map needs a place, the value is unused. */
struct telemetry_cfg {
        struct st_service_telemetry t;
        char *unused_level;
};
static const struct st_cfg_field telemetry_metrics_fields2[] = {
        { "address", ST_CFG_STRING, offsetof(struct telemetry_cfg, t.metrics_address), "127.0.0.1:8888",
          "host:port of the /metrics and /healthz endpoint; empty to turn it off" },
        { "level", ST_CFG_STRING, offsetof(struct telemetry_cfg, unused_level), NULL, "accepted for compatibility" },
        ST_CFG_END,
};
static const struct st_cfg_field telemetry_fields[] = {
        { "metrics", ST_CFG_SECTION, 0, .sub = telemetry_metrics_fields2 },
        { "logs", ST_CFG_SECTION, 0, .sub = telemetry_logs_fields },
        ST_CFG_END,
};

static int split_id(const char *id, char *type, size_t n) {
        const char *slash = strchr(id, '/');
        size_t l = slash ? (size_t) (slash - id) : strlen(id);
        if (l == 0 || l >= n || (slash && !slash[1]))
                return -EINVAL;
        memcpy(type, id, l);
        type[l] = 0;
        return 0;
}

static struct component *find_comp(struct st_service *s, enum st_kind kind, const char *id) {
        for (size_t i = 0; i < s->n_comps; i++)
                if (s->comps[i].kind == kind && strcmp(s->comps[i].id, id) == 0)
                        return &s->comps[i];
        return NULL;
}

static void load_components(struct st_service *s, enum st_kind kind, const st_node *sec, struct st_diag *d) {
        if (!sec || sec->kind == ST_NODE_NULL)
                return;
        if (sec->kind != ST_NODE_MAP) {
                st_diag_at(d, sec, "'%s' must be a map of component ids to settings", kind_keys[kind]);
                return;
        }
        for (size_t i = 0; i < sec->n; i++) {
                const char *id = sec->keys[i]->value;
                char type[128];
                if (split_id(id, type, sizeof(type)) < 0) {
                        st_diag_at(d, sec->keys[i], "bad %s id '%s': expected type or type/name", st_kind_name(kind), id);
                        continue;
                }
                const struct st_factory *f = st_factory_find(kind, type);
                if (!f) {
                        st_buf known = { 0 };
                        for (size_t j = 0; st_factories[j]; j++)
                                if (st_factories[j]->kind == kind)
                                        st_buf_printf(&known, "%s%s", known.len ? ", " : "", st_factories[j]->type);
                        st_diag_at(d, sec->keys[i], "unknown %s type '%s' (known: %s)", st_kind_name(kind), type,
                                   st_buf_cstr(&known));
                        st_buf_free(&known);
                        continue;
                }
                struct component *c = &s->comps[s->n_comps++];
                *c = (struct component) { .id = strdup(id), .kind = kind, .f = f, .node = sec->items[i], .key = sec->keys[i] };
                c->cfg = calloc(1, f->config_size ? f->config_size : 1);
                if (!c->id || !c->cfg)
                        abort();
                if (st_cfg_load(f->config, c->cfg, c->node, d) < 0)
                        continue;
                if (f->validate) {
                        struct st_cfg_ctx ctx = { .diag = d, .node = c->node->kind == ST_NODE_MAP ? c->node : NULL, .at = c->key };
                        f->validate(c->cfg, &ctx);
                }
        }
}

static void load_pipeline(struct st_service *s, const st_node *key, const st_node *p, struct st_diag *d) {
        char signame[32];
        if (split_id(key->value, signame, sizeof(signame)) < 0 || st_signal_from_name(signame) < 0) {
                st_diag_at(d, key, "bad pipeline id '%s': expected traces, metrics or logs, optionally /name", key->value);
                return;
        }
        if (!p || p->kind != ST_NODE_MAP) {
                st_diag_at(d, p ? p : key, "pipeline '%s' must be a map with receivers, processors and exporters", key->value);
                return;
        }
        struct pipeline *pl = &s->pipes[s->n_pipes++];
        *pl = (struct pipeline) { .name = strdup(key->value), .signal = st_signal_from_name(signame), .key = key };
        if (!pl->name)
                abort();
        for (size_t i = 0; i < p->n; i++) {
                const char *k = p->keys[i]->value;
                if (strcmp(k, "receivers") && strcmp(k, "processors") && strcmp(k, "exporters"))
                        st_diag_at(d, p->keys[i], "unknown key '%s' in pipeline '%s' (known keys: receivers, processors, exporters)",
                                   k, pl->name);
        }
        for (enum st_kind kind = ST_RECEIVER; kind <= ST_EXPORTER; kind++) {
                const st_node *list = st_node_get(p, kind_keys[kind]);
                if (!list || list->kind == ST_NODE_NULL || (list->kind == ST_NODE_SEQ && list->n == 0)) {
                        if (kind != ST_PROCESSOR)
                                st_diag_at(d, list ? list : key, "pipeline '%s' needs at least one %s", pl->name, st_kind_name(kind));
                        continue;
                }
                if (list->kind != ST_NODE_SEQ) {
                        st_diag_at(d, list, "'%s' must be a list of component ids", kind_keys[kind]);
                        continue;
                }
                for (size_t j = 0; j < list->n; j++) {
                        const st_node *item = list->items[j];
                        if (item->kind != ST_NODE_SCALAR) {
                                st_diag_at(d, item, "component ids must be strings");
                                continue;
                        }
                        struct component *c = find_comp(s, kind, item->value);
                        if (!c) {
                                char type[128];
                                /* Don't repeat an error already given for an unknown type. */
                                if (split_id(item->value, type, sizeof(type)) == 0 && !st_node_get(st_node_get(s->root, kind_keys[kind]), item->value))
                                        st_diag_at(d, item, "pipeline '%s' uses %s '%s', which is not defined under '%s'",
                                                   pl->name, st_kind_name(kind), item->value, kind_keys[kind]);
                                continue;
                        }
                        if (!(c->f->signals & ST_SIG_BIT(pl->signal))) {
                                st_diag_at(d, item, "%s '%s' does not support %s", st_kind_name(kind), c->id, st_signal_name(pl->signal));
                                continue;
                        }
                        for (size_t k2 = 0; k2 < j; k2++)
                                if (list->items[k2]->value && strcmp(list->items[k2]->value, item->value) == 0)
                                        st_diag_at(d, item, "%s '%s' is listed twice in pipeline '%s'", st_kind_name(kind), c->id, pl->name);
                        c->used = true;
                        if (kind == ST_RECEIVER) {
                                pl->receivers = realloc(pl->receivers, (pl->n_receivers + 1) * sizeof(void *));
                                pl->receivers[pl->n_receivers++] = c;
                        } else if (kind == ST_EXPORTER) {
                                pl->exporters = realloc(pl->exporters, (pl->n_exporters + 1) * sizeof(void *));
                                pl->exporters[pl->n_exporters++] = c;
                        } else {
                                pl->stages = realloc(pl->stages, (pl->n_stages + 1) * sizeof(*pl->stages));
                                pl->stages[pl->n_stages++] = (struct stage) { .c = c };
                        }
                        if ((kind == ST_RECEIVER && !pl->receivers) || (kind == ST_EXPORTER && !pl->exporters) ||
                            (kind == ST_PROCESSOR && !pl->stages))
                                abort();
                }
        }
}

int st_service_load(const char *file, const char *text, size_t len, struct st_diag *d, struct st_service **ret) {
        struct st_service *s = calloc(1, sizeof(*s));
        size_t before = d->errors;
        int r;
        if (!s)
                return -ENOMEM;
        r = text ? st_tree_parse_string(file, text, len, &s->root, d) : st_tree_parse_file(file, &s->root, d);
        if (r < 0)
                goto fail;
        if (s->root->kind != ST_NODE_MAP) {
                st_diag_at(d, s->root, "the config must be a map with receivers, processors, exporters and service");
                r = -EINVAL;
                goto fail;
        }
        size_t total = 0;
        for (size_t i = 0; i < s->root->n; i++) {
                const char *k = s->root->keys[i]->value;
                bool known = false;
                for (int j = 0; j < 3; j++)
                        if (strcmp(k, kind_keys[j]) == 0) {
                                known = true;
                                if (s->root->items[i]->kind == ST_NODE_MAP)
                                        total += s->root->items[i]->n;
                        }
                if (!known && strcmp(k, "service") != 0)
                        st_diag_at(d, s->root->keys[i], "unknown top-level key '%s' (known keys: receivers, processors, exporters, service)", k);
        }
        s->comps = calloc(total ? total : 1, sizeof(*s->comps));
        if (!s->comps) {
                r = -ENOMEM;
                goto fail;
        }
        for (enum st_kind kind = ST_RECEIVER; kind <= ST_EXPORTER; kind++)
                load_components(s, kind, st_node_get(s->root, kind_keys[kind]), d);

        const st_node *svc = st_node_get(s->root, "service");
        struct telemetry_cfg tc = { 0 };
        s->shutdown_timeout = 10 * ST_NS_PER_SEC;
        if (!svc || svc->kind != ST_NODE_MAP) {
                st_diag_at(d, svc ? svc : s->root, "missing 'service' with 'pipelines'");
        } else {
                for (size_t i = 0; i < svc->n; i++) {
                        const char *k = svc->keys[i]->value;
                        if (strcmp(k, "pipelines") && strcmp(k, "telemetry") && strcmp(k, "shutdown_timeout"))
                                st_diag_at(d, svc->keys[i], "unknown key '%s' in service (known keys: pipelines, telemetry, shutdown_timeout)", k);
                }
                const st_node *st = st_node_get(svc, "shutdown_timeout");
                if (st && (st->kind != ST_NODE_SCALAR || st_parse_duration(st->value, &s->shutdown_timeout) < 0))
                        st_diag_at(d, st, "'shutdown_timeout' must be a duration like 10s");
                const st_node *pipes = st_node_get(svc, "pipelines");
                if (!pipes || pipes->kind != ST_NODE_MAP || pipes->n == 0) {
                        st_diag_at(d, pipes ? pipes : svc, "'service.pipelines' must define at least one pipeline");
                } else {
                        s->pipes = calloc(pipes->n, sizeof(*s->pipes));
                        if (!s->pipes) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        for (size_t i = 0; i < pipes->n; i++)
                                load_pipeline(s, pipes->keys[i], pipes->items[i], d);
                }
        }
        st_cfg_load(telemetry_fields, &tc, svc ? st_node_get(svc, "telemetry") : NULL, d);
        free(tc.unused_level);
        s->tel = tc.t;

        size_t n_recv = 0;
        for (size_t i = 0; i < s->n_comps; i++)
                if (s->comps[i].kind == ST_RECEIVER && ++n_recv > 64)
                        st_diag_at(d, s->comps[i].key, "more than 64 receivers are not supported");
        /* A receiver feeds its pipelines, and a pipeline its exporters, through a fan-out. */
        if (s->n_pipes > ST_FANOUT_MAX)
                st_diag_at(d, s->pipes[ST_FANOUT_MAX].key, "more than %d pipelines are not supported", ST_FANOUT_MAX);
        for (size_t p = 0; p < s->n_pipes; p++)
                if (s->pipes[p].n_exporters > ST_FANOUT_MAX)
                        st_diag_at(d, s->pipes[p].key, "more than %d exporters in one pipeline are not supported", ST_FANOUT_MAX);
        if (d->errors > before) {
                r = -EINVAL;
                goto fail;
        }
        *ret = s;
        return 0;
fail:
        st_service_free(s);
        return r < 0 ? r : -EINVAL;
}

const struct st_service_telemetry *st_service_telemetry(const struct st_service *s) { return &s->tel; }
int64_t st_service_shutdown_timeout(const struct st_service *s) { return s->shutdown_timeout; }

/* Where a drop of the whole pipeline is counted: its first component. */
static struct st_component_telemetry *pipeline_head_tel(const struct pipeline *pl) {
        if (pl->n_stages > 0)
                return pl->stages[0].set.tel;
        return pl->n_exporters > 0 ? pl->exporters[0]->set.tel : NULL;
}

static int component_consume(void *data, st_batch *b) {
        struct component *c = data;
        return c->f->consume(c->inst, b);
}

static int stage_consume(void *data, st_batch *b) {
        struct stage *st = data;
        return st->c->f->consume(st->inst, b);
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...) {
        va_list ap;
        char *p;
        va_start(ap, fmt);
        int n = vasprintf(&p, fmt, ap);
        va_end(ap);
        if (n < 0)
                abort();
        return p;
}

static int create_component(struct component *c) {
        c->log_name = xasprintf("%s/%s", st_kind_name(c->kind), c->id);
        c->set.id = c->id;
        c->set.log_name = c->log_name;
        c->set.kind = c->kind;
        c->set.tel = st_tel_component(st_kind_name(c->kind), c->id);
        if (!c->set.tel)
                return -ENOMEM;
        int r = c->f->create(&c->set, c->cfg, &c->inst);
        if (r < 0)
                st_error(c->log_name, "cannot create: %s", strerror(-r));
        return r;
}

static void stop_all(struct st_service *s, int64_t deadline);

int st_service_start(struct st_service *s) {
        int r;
        size_t ri = 0;

        /* Create downstream-first: exporters, then each pipeline's processors from the last. */
        for (size_t i = 0; i < s->n_comps; i++) {
                struct component *c = &s->comps[i];
                if (c->kind == ST_EXPORTER && c->used && (r = create_component(c)) < 0)
                        goto fail;
        }
        for (size_t p = 0; p < s->n_pipes; p++) {
                struct pipeline *pl = &s->pipes[p];
                for (size_t e = 0; e < pl->n_exporters; e++)
                        if ((r = st_fanout_add(&pl->exporters_fanout,
                                            (struct st_consumer) { .consume = component_consume, .data = pl->exporters[e] },
                                            pl->exporters[e]->set.tel)) < 0)
                                goto fail;
                struct st_consumer next = st_fanout_consumer(&pl->exporters_fanout);
                for (size_t k = pl->n_stages; k-- > 0;) {
                        struct stage *st = &pl->stages[k];
                        st->log_name = xasprintf("processor/%s[%s]", st->c->id, pl->name);
                        st->set = (struct st_component_settings) {
                                .id = st->c->id, .log_name = st->log_name, .kind = ST_PROCESSOR, .signal = pl->signal,
                                .tel = st_tel_component("processor", st->c->id),
                        };
                        st->set.next[pl->signal] = next;
                        if (!st->set.tel) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        r = st->c->f->create(&st->set, st->c->cfg, &st->inst);
                        if (r < 0) {
                                st_error(st->log_name, "cannot create: %s", strerror(-r));
                                goto fail;
                        }
                        next = (struct st_consumer) { .consume = stage_consume, .data = st };
                }
                pl->head = next;
        }
        for (size_t i = 0; i < s->n_comps; i++) {
                struct component *c = &s->comps[i];
                if (c->kind != ST_RECEIVER)
                        continue;
                struct st_fanout *fo = s->recv_fanout[ri++];
                if (!c->used)
                        continue;
                for (size_t p = 0; p < s->n_pipes; p++)
                        for (size_t k = 0; k < s->pipes[p].n_receivers; k++)
                                if (s->pipes[p].receivers[k] == c &&
                                    (r = st_fanout_add(&fo[s->pipes[p].signal], s->pipes[p].head, pipeline_head_tel(&s->pipes[p]))) < 0)
                                        goto fail;
                for (int sig = 0; sig < ST_SIGNAL_COUNT; sig++)
                        if (fo[sig].n)
                                c->set.next[sig] = st_fanout_consumer(&fo[sig]);
                if ((r = create_component(c)) < 0)
                        goto fail;
        }

        /* Start downstream-first too, so that nothing is received before it can be sent. */
        for (size_t i = 0; i < s->n_comps; i++) {
                struct component *c = &s->comps[i];
                if (c->kind != ST_EXPORTER || !c->inst)
                        continue;
                if (c->f->start && (r = c->f->start(c->inst)) < 0) {
                        st_error(c->log_name, "cannot start: %s", strerror(-r));
                        goto fail;
                }
                c->started = true;
        }
        for (size_t p = 0; p < s->n_pipes; p++)
                for (size_t k = s->pipes[p].n_stages; k-- > 0;) {
                        struct stage *st = &s->pipes[p].stages[k];
                        if (st->c->f->start && (r = st->c->f->start(st->inst)) < 0) {
                                st_error(st->log_name, "cannot start: %s", strerror(-r));
                                goto fail;
                        }
                        st->started = true;
                }
        for (size_t i = 0; i < s->n_comps; i++) {
                struct component *c = &s->comps[i];
                if (c->kind != ST_RECEIVER || !c->inst)
                        continue;
                if (c->f->start && (r = c->f->start(c->inst)) < 0) {
                        st_error(c->log_name, "cannot start: %s", strerror(-r));
                        goto fail;
                }
                c->started = true;
        }
        s->started = true;
        return 0;
fail:
        stop_all(s, st_now_ns() + s->shutdown_timeout);
        return r;
}

static void stop_all(struct st_service *s, int64_t deadline) {
        /* Upstream-first: receivers stop accepting, processors flush downstream in pipeline
         * order, exporters drain their queues — all against one deadline. */
        for (size_t i = 0; i < s->n_comps; i++) {
                struct component *c = &s->comps[i];
                if (c->kind == ST_RECEIVER && c->inst && c->f->shutdown)
                        c->f->shutdown(c->inst, deadline);
        }
        for (size_t p = 0; p < s->n_pipes; p++)
                for (size_t k = 0; k < s->pipes[p].n_stages; k++) {
                        struct stage *st = &s->pipes[p].stages[k];
                        if (st->inst && st->c->f->shutdown)
                                st->c->f->shutdown(st->inst, deadline);
                }
        for (size_t i = 0; i < s->n_comps; i++) {
                struct component *c = &s->comps[i];
                if (c->kind == ST_EXPORTER && c->inst && c->f->shutdown)
                        c->f->shutdown(c->inst, deadline);
        }
}

int st_service_shutdown(struct st_service *s) {
        int64_t deadline = st_now_ns() + s->shutdown_timeout;
        stop_all(s, deadline);
        s->started = false;
        return st_now_ns() <= deadline ? 0 : -ETIMEDOUT;
}

void st_service_describe(const struct st_service *s, st_buf *out) {
        for (size_t p = 0; p < s->n_pipes; p++) {
                const struct pipeline *pl = &s->pipes[p];
                st_buf_printf(out, "%s: [", pl->name);
                for (size_t i = 0; i < pl->n_receivers; i++)
                        st_buf_printf(out, "%s%s", i ? ", " : "", pl->receivers[i]->id);
                st_buf_puts(out, "] -> [");
                for (size_t i = 0; i < pl->n_stages; i++)
                        st_buf_printf(out, "%s%s", i ? ", " : "", pl->stages[i].c->id);
                st_buf_puts(out, "] -> [");
                for (size_t i = 0; i < pl->n_exporters; i++)
                        st_buf_printf(out, "%s%s", i ? ", " : "", pl->exporters[i]->id);
                st_buf_puts(out, "]\n");
        }
}

void st_service_free(struct st_service *s) {
        if (!s)
                return;
        /* Destroy upstream-first, mirroring shutdown. */
        for (size_t i = 0; i < s->n_comps; i++)
                if (s->comps[i].kind == ST_RECEIVER && s->comps[i].inst)
                        s->comps[i].f->destroy(s->comps[i].inst);
        for (size_t p = 0; p < s->n_pipes; p++) {
                struct pipeline *pl = &s->pipes[p];
                for (size_t k = 0; k < pl->n_stages; k++) {
                        if (pl->stages[k].inst)
                                pl->stages[k].c->f->destroy(pl->stages[k].inst);
                        free(pl->stages[k].log_name);
                }
                free(pl->stages);
                free(pl->receivers);
                free(pl->exporters);
                st_fanout_free(&pl->exporters_fanout);
                free(pl->name);
        }
        for (size_t i = 0; i < s->n_comps; i++)
                if (s->comps[i].kind == ST_EXPORTER && s->comps[i].inst)
                        s->comps[i].f->destroy(s->comps[i].inst);
        for (size_t i = 0; i < s->n_comps; i++) {
                struct component *c = &s->comps[i];
                st_cfg_free(c->f->config, c->cfg);
                free(c->cfg);
                free(c->id);
                free(c->log_name);
        }
        for (size_t i = 0; i < 64; i++)
                for (int sig = 0; sig < ST_SIGNAL_COUNT; sig++)
                        st_fanout_free(&s->recv_fanout[i][sig]);
        free(s->comps);
        free(s->pipes);
        free(s->tel.metrics_address);
        st_node_free(s->root);
        free(s);
}
