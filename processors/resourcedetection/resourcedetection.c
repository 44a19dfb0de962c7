/* The resourcedetection processor: where strata runs, on every record's resource.
 *
 * Detector `ecs` (the ECS task metadata endpoint v4): cloud.provider, cloud.platform=aws_ecs,
 * cloud.region, cloud.availability_zone, cloud.account.id, aws.ecs.cluster.arn,
 * aws.ecs.task.arn, aws.ecs.task.family, aws.ecs.task.revision, aws.ecs.launchtype, and the
 * container: the one whose container.id the record already has, else the task's only
 * application container (not strata's own, not ECS's pause). Attributes the resource has are
 * kept. The task is read at start and again every `refresh` by a thread of its own (never on
 * a pipeline's thread); a failed read keeps the last. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "component.h"
#include "ecs_metadata.h"
#include "log.h"
#include "otlp_attr.h"
#include "stop_signal.h"

struct rd_cfg {
        struct st_strv detectors;
        int64_t refresh;
};

static const struct st_cfg_field rd_fields[] = {
        { .name = "detectors", .type = ST_CFG_STRINGS, .offset = offsetof(struct rd_cfg, detectors),
          .desc = "where to detect from: ecs (the ECS task metadata endpoint v4); default all" },
        { .name = "refresh", .type = ST_CFG_DURATION, .offset = offsetof(struct rd_cfg, refresh), .def = "5m",
          .desc = "how often the metadata is read again" },
        ST_CFG_END,
};

struct rd {
        char *log_name;
        struct st_consumer next;
        pthread_rwlock_t lock; /* task and have */
        struct st_ecs_task task;
        atomic_bool have;
        const struct rd_cfg *cfg;
        pthread_t thread;
        bool running;
        struct st_stop stop;
};

static int rd_validate(const void *cfg, struct st_cfg_ctx *ctx) {
        const struct rd_cfg *c = cfg;
        for (size_t i = 0; i < c->detectors.n; i++)
                if (strcmp(c->detectors.v[i], "ecs") != 0) {
                        st_cfg_errorf(ctx, "detectors", "unknown detector '%s' (ecs)", c->detectors.v[i]);
                        return -EINVAL;
                }
        return 0;
}

static void fetch(struct rd *p, bool at_start) {
        const char *uri = st_ecs_metadata_uri();
        char err[512];
        struct st_ecs_task t;
        if (!uri) {
                if (at_start)
                        st_warn(p->log_name, "detector ecs: ECS_CONTAINER_METADATA_URI_V4 is not set (not in an ECS task), ignoring");
                return;
        }
        if (st_ecs_task_fetch(uri, &t, err, sizeof(err)) < 0) {
                st_warn(p->log_name, "detector ecs: cannot read the task metadata: %s%s", err,
                        atomic_load(&p->have) ? "; keeping what was read before" : "");
                return;
        }
        pthread_rwlock_wrlock(&p->lock);
        bool first = !atomic_load(&p->have);
        p->task = t;
        atomic_store(&p->have, true);
        pthread_rwlock_unlock(&p->lock);
        if (first)
                st_info(p->log_name, "detector ecs: task %s of %s (%s, %s)", t.task_arn, t.cluster_arn, t.launch_type[0] ? t.launch_type : "?",
                        t.zone[0] ? t.zone : "?");
}

static int rd_create(const struct st_component_settings *set, const void *cfg, void **ret) {
        struct rd *p = calloc(1, sizeof(*p));
        if (!p || !(p->log_name = strdup(set->log_name))) {
                free(p);
                return -ENOMEM;
        }
        p->next = set->next[set->signal];
        p->cfg = cfg;
        pthread_rwlock_init(&p->lock, NULL);
        atomic_init(&p->have, false);
        st_stop_init(&p->stop);
        *ret = p;
        return 0;
}

static void *refresher(void *arg) {
        struct rd *p = arg;
        st_ecs_set_stop(&p->stop.raised);
        while (st_stop_sleep_until(&p->stop, st_wall_ns() + p->cfg->refresh))
                fetch(p, false);
        return NULL;
}

static int rd_start(void *self) {
        struct rd *p = self;
        fetch(p, true); /* at start, so that the first records already have it */
        if (!st_ecs_metadata_uri())
                return 0;
        int e = -pthread_create(&p->thread, NULL, refresher, p);
        if (e < 0)
                return e;
        p->running = true;
        (void) pthread_setname_np(p->thread, "resourcedetect");
        return 0;
}

static int rd_shutdown(void *self, int64_t deadline_ns) {
        struct rd *p = self;
        (void) deadline_ns;
        if (!p || !p->running)
                return 0;
        st_stop_raise(&p->stop);
        pthread_join(p->thread, NULL);
        p->running = false;
        return 0;
}

static bool has(const st_resource *res, const char *key, const char **ret_value) {
        for (size_t i = 0; res && i < res->n_attributes; i++) {
                const st_key_value *kv = res->attributes[i];
                if (kv && kv->key && strcmp(kv->key, key) == 0) {
                        if (ret_value)
                                *ret_value = kv->value && kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
                                                     ? kv->value->string_value
                                                     : NULL;
                        return true;
                }
        }
        return false;
}

#define MAX_ADDS 16

struct adds {
        st_arena *a;
        const st_resource *res;
        st_key_value *v[MAX_ADDS];
        size_t n;
        bool oom;
};

static void put(struct adds *ad, const char *key, const char *value) {
        if (!value || !*value || ad->n == MAX_ADDS || has(ad->res, key, NULL))
                return;
        st_key_value *kv = st_kv_str(ad->a, key, value);
        if (!kv) {
                ad->oom = true;
                return;
        }
        ad->v[ad->n++] = kv;
}

/* "fargate", "ec2" (the semantic conventions' values) */
static void lower(char *dst, size_t cap, const char *s) {
        size_t i = 0;
        for (; s[i] && i + 1 < cap; i++)
                dst[i] = (char) (s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
        dst[i] = '\0';
}

static int detect(struct rd *p, st_batch *b) {
        enum st_signal s = b->signal;
        int r = 0;
        pthread_rwlock_rdlock(&p->lock);
        const struct st_ecs_task *t = &p->task;
        char launch[32];
        lower(launch, sizeof(launch), t->launch_type);
        for (size_t i = 0; atomic_load(&p->have) && i < st_req_n(s, b->req) && r >= 0; i++) {
                void *entry = st_req_v(s, b->req)[i];
                st_resource *res = st_res_resource(s, entry);
                if (!res) {
                        if (!(res = st_arena_zalloc(&b->arena, sizeof(*res)))) {
                                r = -ENOMEM;
                                break;
                        }
                        opentelemetry__proto__resource__v1__resource__init(res);
                        ST_FIELD(entry, st_signals[s].res_resource, st_resource *) = res;
                }
                struct adds ad = { .a = &b->arena, .res = res };
                put(&ad, "cloud.provider", "aws");
                put(&ad, "cloud.platform", "aws_ecs");
                put(&ad, "cloud.region", t->region);
                put(&ad, "cloud.availability_zone", t->zone);
                put(&ad, "cloud.account.id", t->account);
                put(&ad, "aws.ecs.cluster.arn", t->cluster_arn);
                put(&ad, "aws.ecs.task.arn", t->task_arn);
                put(&ad, "aws.ecs.task.family", t->family);
                put(&ad, "aws.ecs.task.revision", t->revision);
                put(&ad, "aws.ecs.launchtype", launch);
                const char *cid = NULL;
                const struct st_ecs_container *c = NULL;
                if (has(res, "container.id", &cid) && cid) {
                        for (size_t k = 0; k < t->n_containers && !c; k++)
                                if (strcmp(t->containers[k].id, cid) == 0)
                                        c = &t->containers[k];
                } else
                        c = st_ecs_app_container(t);
                if (c) {
                        put(&ad, "container.id", c->id);
                        put(&ad, "container.name", c->name);
                        put(&ad, "container.image.name", c->image);
                }
                if (ad.oom) {
                        r = -ENOMEM;
                        break;
                }
                if (!ad.n)
                        continue;
                st_key_value **v = st_arena_alloc(&b->arena, (res->n_attributes + ad.n) * sizeof(*v));
                if (!v) {
                        r = -ENOMEM;
                        break;
                }
                if (res->n_attributes)
                        memcpy(v, res->attributes, res->n_attributes * sizeof(*v));
                memcpy(v + res->n_attributes, ad.v, ad.n * sizeof(*v));
                res->attributes = v;
                res->n_attributes += ad.n;
        }
        pthread_rwlock_unlock(&p->lock);
        b->wire = NULL;
        b->wire_len = 0;
        return r;
}

static int rd_consume(void *self, st_batch *b) {
        struct rd *p = self;
        if (!atomic_load(&p->have))
                return st_consume(&p->next, b);
        st_batch *w;
        int r = st_batch_writable(b, &w);
        if (r < 0)
                return r;
        r = detect(p, w);
        if (r >= 0)
                r = st_consume(&p->next, w);
        st_batch_unref(w);
        return r;
}

static void rd_destroy(void *self) {
        struct rd *p = self;
        if (!p)
                return;
        rd_shutdown(p, 0);
        pthread_rwlock_destroy(&p->lock);
        st_stop_destroy(&p->stop);
        free(p->log_name);
        free(p);
}

const struct st_factory st_processor_resourcedetection = {
        .type = "resourcedetection",
        .kind = ST_PROCESSOR,
        .signals = ST_SIG_ALL,
        .description = "where strata runs (ECS task and container) on every record's resource",
        .mutates = true,
        .config_size = sizeof(struct rd_cfg),
        .config = rd_fields,
        .validate = rd_validate,
        .create = rd_create,
        .start = rd_start,
        .consume = rd_consume,
        .shutdown = rd_shutdown,
        .destroy = rd_destroy,
};
