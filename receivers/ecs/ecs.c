/* The ecs receiver: per-container metrics of this ECS task from the task metadata endpoint
 * v4's /task/stats (Docker's stats format), every `interval`:
 *
 *   container.cpu.utilization   gauge, cores busy (the Docker formula: CPU time delta over
 *                               system time delta, times online CPUs)
 *   container.cpu.time          sum, cumulative, seconds
 *   container.memory.usage      gauge, bytes (and container.memory.limit)
 *   container.network.io        sum, cumulative, bytes, network.io.direction, network.interface.name
 *   container.disk.io           sum, cumulative, bytes, disk.io.direction
 *
 * Each container is its own resource: the task's identity and the container's. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "component.h"
#include "ecs_metadata.h"
#include "log.h"
#include "otlp_attr.h"
#include "stop_signal.h"

struct ecs_cfg {
        int64_t interval;
        char *endpoint;
};

static const struct st_cfg_field ecs_fields[] = {
        { .name = "interval", .type = ST_CFG_DURATION, .offset = offsetof(struct ecs_cfg, interval), .def = "30s",
          .desc = "how often the stats are read" },
        { .name = "endpoint", .type = ST_CFG_STRING, .offset = offsetof(struct ecs_cfg, endpoint), .def = "",
          .desc = "the task metadata endpoint (\"\" = ECS_CONTAINER_METADATA_URI_V4)" },
        ST_CFG_END,
};

struct ecs_receiver {
        struct st_component_settings set;
        const struct ecs_cfg *cfg;
        const char *base;
        struct st_ecs_task task;
        bool have_task;
        /* when each container was first seen: the start of its cumulative sums */
        struct {
                char id[160];
                uint64_t start;
        } starts[32];
        size_t n_starts;
        pthread_t thread;
        bool running;
        struct st_stop stop;
        struct st_tel_metric *m_errors;
};

/* --- building ------------------------------------------------------------------------------- */

struct bld {
        st_arena *a;
        st_metric **m;
        size_t n, cap;
        bool oom;
        uint64_t now, start;
};

/* One metric with one point (attributes: up to two key/value pairs). */
static void point(struct bld *b, const char *name, const char *unit, bool sum, double v, const char *k1, const char *v1,
                  const char *k2, const char *v2) {
        st_arena *a = b->a;
        st_metric *m = st_arena_zalloc(a, sizeof(*m));
        st_number_point *p = st_arena_zalloc(a, sizeof(*p));
        st_number_point **pv = st_arena_zalloc(a, sizeof(*pv));
        st_key_value **attrs = st_arena_zalloc(a, 2 * sizeof(*attrs));
        if (!m || !p || !pv || !attrs) {
                b->oom = true;
                return;
        }
        opentelemetry__proto__metrics__v1__metric__init(m);
        opentelemetry__proto__metrics__v1__number_data_point__init(p);
        m->name = (char *) name;
        m->unit = (char *) unit;
        p->time_unix_nano = b->now;
        p->start_time_unix_nano = sum ? b->start : 0;
        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        p->as_double = v;
        if (k1 && v1 && !(attrs[p->n_attributes++] = st_kv_str(a, k1, v1)))
                b->oom = true;
        if (k2 && v2 && !(attrs[p->n_attributes++] = st_kv_str(a, k2, v2)))
                b->oom = true;
        p->attributes = attrs;
        pv[0] = p;
        if (sum) {
                Opentelemetry__Proto__Metrics__V1__Sum *s = st_arena_zalloc(a, sizeof(*s));
                if (!s) {
                        b->oom = true;
                        return;
                }
                opentelemetry__proto__metrics__v1__sum__init(s);
                s->data_points = pv;
                s->n_data_points = 1;
                s->is_monotonic = 1;
                s->aggregation_temporality = OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
                m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
                m->sum = s;
        } else {
                Opentelemetry__Proto__Metrics__V1__Gauge *g = st_arena_zalloc(a, sizeof(*g));
                if (!g) {
                        b->oom = true;
                        return;
                }
                opentelemetry__proto__metrics__v1__gauge__init(g);
                g->data_points = pv;
                g->n_data_points = 1;
                m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
                m->gauge = g;
        }
        if (b->n == b->cap) {
                size_t cap = b->cap ? 2 * b->cap : 16;
                st_metric **v2m = st_arena_alloc(a, cap * sizeof(*v2m));
                if (!v2m) {
                        b->oom = true;
                        return;
                }
                if (b->n)
                        memcpy(v2m, b->m, b->n * sizeof(*v2m));
                b->m = v2m;
                b->cap = cap;
        }
        b->m[b->n++] = m;
}

static bool num(json_object *o, const char *path, double *ret) {
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", path);
        json_object *cur = o;
        for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
                if (!json_object_object_get_ex(cur, k, &cur))
                        return false;
        if (!(json_object_is_type(cur, json_type_int) || json_object_is_type(cur, json_type_double)))
                return false;
        *ret = json_object_get_double(cur);
        return true;
}

/* One container's Docker stats → its metrics. */
static void container_metrics(struct bld *b, json_object *st) {
        double cpu, pre, sys, presys, cpus = 1, v;
        if (num(st, "cpu_stats.cpu_usage.total_usage", &cpu)) {
                point(b, "container.cpu.time", "s", true, cpu / 1e9, NULL, NULL, NULL, NULL);
                if (num(st, "precpu_stats.cpu_usage.total_usage", &pre) && num(st, "cpu_stats.system_cpu_usage", &sys) &&
                    num(st, "precpu_stats.system_cpu_usage", &presys) && sys > presys) {
                        num(st, "cpu_stats.online_cpus", &cpus);
                        point(b, "container.cpu.utilization", "1", false, (cpu - pre) / (sys - presys) * cpus, NULL, NULL, NULL, NULL);
                }
        }
        if (num(st, "memory_stats.usage", &v))
                point(b, "container.memory.usage", "By", false, v, NULL, NULL, NULL, NULL);
        if (num(st, "memory_stats.limit", &v))
                point(b, "container.memory.limit", "By", false, v, NULL, NULL, NULL, NULL);
        json_object *nets = NULL;
        if (json_object_object_get_ex(st, "networks", &nets) && json_object_is_type(nets, json_type_object)) {
                json_object_object_foreach(nets, ifname, ifs) {
                        if (num(ifs, "rx_bytes", &v))
                                point(b, "container.network.io", "By", true, v, "network.io.direction", "receive", "network.interface.name", ifname);
                        if (num(ifs, "tx_bytes", &v))
                                point(b, "container.network.io", "By", true, v, "network.io.direction", "transmit", "network.interface.name", ifname);
                }
        }
        json_object *blk = NULL, *io = NULL;
        double rd = 0, wr = 0;
        bool any = false;
        if (json_object_object_get_ex(st, "blkio_stats", &blk) && json_object_object_get_ex(blk, "io_service_bytes_recursive", &io) &&
            json_object_is_type(io, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(io); i++) {
                        json_object *e = json_object_array_get_idx(io, i), *op = NULL;
                        if (!json_object_object_get_ex(e, "op", &op) || !json_object_is_type(op, json_type_string) || !num(e, "value", &v))
                                continue;
                        const char *o = json_object_get_string(op);
                        if (strcasecmp(o, "read") == 0)
                                rd += v, any = true;
                        else if (strcasecmp(o, "write") == 0)
                                wr += v, any = true;
                }
        }
        if (any) {
                point(b, "container.disk.io", "By", true, rd, "disk.io.direction", "read", NULL, NULL);
                point(b, "container.disk.io", "By", true, wr, "disk.io.direction", "write", NULL, NULL);
        }
}

static st_resource *resource(st_arena *a, const struct st_ecs_task *t, const struct st_ecs_container *c) {
        st_resource *res = st_arena_zalloc(a, sizeof(*res));
        st_key_value **v = st_arena_zalloc(a, 16 * sizeof(*v));
        if (!res || !v)
                return NULL;
        opentelemetry__proto__resource__v1__resource__init(res);
        char launch[32];
        size_t i = 0;
        for (; t->launch_type[i] && i + 1 < sizeof(launch); i++)
                launch[i] = (char) (t->launch_type[i] >= 'A' && t->launch_type[i] <= 'Z' ? t->launch_type[i] + 32 : t->launch_type[i]);
        launch[i] = '\0';
        const char *pairs[][2] = {
                { "cloud.provider", "aws" }, { "cloud.platform", "aws_ecs" }, { "cloud.region", t->region },
                { "cloud.availability_zone", t->zone }, { "cloud.account.id", t->account }, { "aws.ecs.cluster.arn", t->cluster_arn },
                { "aws.ecs.task.arn", t->task_arn }, { "aws.ecs.task.family", t->family }, { "aws.ecs.task.revision", t->revision },
                { "aws.ecs.launchtype", launch }, { "container.id", c->id }, { "container.name", c->name },
                { "container.image.name", c->image },
        };
        for (size_t k = 0; k < sizeof(pairs) / sizeof(pairs[0]); k++)
                if (*pairs[k][1] && !(v[res->n_attributes++] = st_kv_str(a, pairs[k][0], pairs[k][1])))
                        return NULL;
        res->attributes = v;
        return res;
}

/* A container's cumulative sums start when strata first saw it (a fixed start: a new one
 * every time would read as a counter reset). */
static uint64_t start_of(struct ecs_receiver *r, const char *id, uint64_t now) {
        for (size_t i = 0; i < r->n_starts; i++)
                if (strcmp(r->starts[i].id, id) == 0)
                        return r->starts[i].start;
        size_t i = r->n_starts < 32 ? r->n_starts++ : 31;
        snprintf(r->starts[i].id, sizeof(r->starts[i].id), "%s", id);
        r->starts[i].start = now;
        return now;
}

static void collect(struct ecs_receiver *r) {
        char err[512], *text = NULL;
        size_t len;
        /* again every time: containers that start after strata (dependsOn) get their ids late */
        struct st_ecs_task t;
        if (st_ecs_task_fetch(r->base, &t, err, sizeof(err)) == 0) {
                r->task = t;
                r->have_task = true;
        } else if (!r->have_task) {
                st_tel_metric_add(r->m_errors, 1);
                st_warn(r->set.log_name, "cannot read the task metadata: %s; retrying", err);
                return;
        }
        if (st_ecs_get(r->base, "/task/stats", &text, &len, err, sizeof(err)) < 0) {
                st_tel_metric_add(r->m_errors, 1);
                st_warn(r->set.log_name, "cannot read the task stats: %s; retrying", err);
                return;
        }
        json_tokener *tok = json_tokener_new();
        json_object *stats = tok ? json_tokener_parse_ex(tok, text, (int) len) : NULL;
        json_tokener_free(tok);
        free(text);
        if (!json_object_is_type(stats, json_type_object)) {
                st_tel_metric_add(r->m_errors, 1);
                st_warn(r->set.log_name, "the task stats are not a JSON object, ignoring");
                json_object_put(stats);
                return;
        }
        st_batch *batch;
        if (st_batch_new(ST_METRICS, &batch) < 0) {
                json_object_put(stats);
                return;
        }
        st_arena *a = &batch->arena;
        st_metrics_req *req = (st_metrics_req *) batch->req;
        req->resource_metrics = st_arena_zalloc(a, (r->task.n_containers ? r->task.n_containers : 1) * sizeof(void *));
        bool oom = !req->resource_metrics;
        uint64_t now = (uint64_t) st_wall_ns();
        for (size_t i = 0; !oom && i < r->task.n_containers; i++) {
                const struct st_ecs_container *c = &r->task.containers[i];
                json_object *st = NULL;
                if (c->is_pause || !json_object_object_get_ex(stats, c->id, &st) || !json_object_is_type(st, json_type_object))
                        continue; /* stopped, or not started yet: null */
                struct bld b = { .a = a, .now = now, .start = start_of(r, c->id, now) };
                container_metrics(&b, st);
                st_resource_metrics *rm = st_arena_zalloc(a, sizeof(*rm));
                st_scope_metrics *sm = st_arena_zalloc(a, sizeof(*sm));
                st_scope *scope = st_arena_zalloc(a, sizeof(*scope));
                void **one = st_arena_zalloc(a, sizeof(void *));
                st_resource *res = resource(a, &r->task, c);
                if (b.oom || !rm || !sm || !scope || !one || !res) {
                        oom = true;
                        break;
                }
                if (!b.n)
                        continue;
                opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
                opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
                opentelemetry__proto__common__v1__instrumentation_scope__init(scope);
                scope->name = (char *) "strata/ecs";
                sm->scope = scope;
                sm->metrics = b.m;
                sm->n_metrics = b.n;
                one[0] = sm;
                rm->scope_metrics = (st_scope_metrics **) one;
                rm->n_scope_metrics = 1;
                rm->resource = res;
                req->resource_metrics[req->n_resource_metrics++] = rm;
        }
        json_object_put(stats);
        st_batch_recount(batch);
        if (!oom && batch->items && st_consumer_set(&r->set.next[ST_METRICS])) {
                int e = st_consume(&r->set.next[ST_METRICS], batch);
                st_tel_add(e < 0 ? &r->set.tel->sig[ST_METRICS].refused : &r->set.tel->sig[ST_METRICS].accepted, batch->items);
        }
        st_batch_unref(batch);
}

static void *run(void *arg) {
        struct ecs_receiver *r = arg;
        st_ecs_set_stop(&r->stop.raised); /* shutdown does not wait for a request to time out */
        while (!st_stop_raised(&r->stop)) {
                int64_t t0 = st_wall_ns();
                collect(r);
                st_stop_sleep_until(&r->stop, t0 + r->cfg->interval);
        }
        return NULL;
}

static int ecs_create(const struct st_component_settings *set, const void *cfg, void **ret) {
        struct ecs_receiver *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->set = *set;
        r->cfg = cfg;
        st_stop_init(&r->stop);
        r->m_errors = st_tel_metric(set->tel, "ecs_errors_total", "Failed reads of the task metadata endpoint.", false);
        *ret = r;
        return 0;
}

static int ecs_start(void *self) {
        struct ecs_receiver *r = self;
        r->base = r->cfg->endpoint && *r->cfg->endpoint ? r->cfg->endpoint : st_ecs_metadata_uri();
        if (!r->base) {
                /* not in ECS: say so and do nothing (a config shared by ECS and other hosts) */
                st_warn(r->set.log_name, "ECS_CONTAINER_METADATA_URI_V4 is not set (not in an ECS task): no task metrics");
                return 0;
        }
        int e = -pthread_create(&r->thread, NULL, run, r);
        if (e < 0)
                return e;
        r->running = true;
        (void) pthread_setname_np(r->thread, "ecs-stats");
        st_info(r->set.log_name, "task stats every %" PRId64 "s from %s", r->cfg->interval / ST_NS_PER_SEC, r->base);
        return 0;
}

static int ecs_shutdown(void *self, int64_t deadline_ns) {
        struct ecs_receiver *r = self;
        (void) deadline_ns;
        if (!r || !r->running)
                return 0;
        st_stop_raise(&r->stop);
        pthread_join(r->thread, NULL);
        r->running = false;
        return 0;
}

static void ecs_destroy(void *self) {
        struct ecs_receiver *r = self;
        if (!r)
                return;
        ecs_shutdown(r, 0);
        st_stop_destroy(&r->stop);
        free(r);
}

const struct st_factory st_receiver_ecs = {
        .type = "ecs",
        .kind = ST_RECEIVER,
        .signals = ST_SIG_BIT(ST_METRICS),
        .description = "per-container CPU, memory, network and disk metrics of this ECS task (task metadata endpoint v4)",
        .config_size = sizeof(struct ecs_cfg),
        .config = ecs_fields,
        .create = ecs_create,
        .start = ecs_start,
        .shutdown = ecs_shutdown,
        .destroy = ecs_destroy,
};
