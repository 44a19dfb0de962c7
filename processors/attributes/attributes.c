/* The attributes processor: insert, update, upsert or delete the attributes of every span,
 * log record and metric data point (the Collector's attributesprocessor, without
 * include/exclude matching). The actions are agent/attr_actions.c, shared with the resource
 * processor. */
#include <errno.h>
#include <stdlib.h>

#include "attr_actions.h"
#include "component.h"

struct attributes_cfg {
        struct st_list actions; /* struct st_attr_action_cfg */
};

static const struct st_cfg_field attributes_fields[] = {
        { .name = "actions", .type = ST_CFG_LIST, .offset = offsetof(struct attributes_cfg, actions),
          .sub = st_attr_action_fields, .elem_size = sizeof(struct st_attr_action_cfg),
          .desc = "actions on span, log record and data point attributes, applied in order", .required = true },
        ST_CFG_END
};

struct attributes_proc {
        struct st_consumer next;
        struct st_attr_actions acts;
};

static int attributes_validate(const void *cfg, struct st_cfg_ctx *ctx) {
        const struct attributes_cfg *c = cfg;
        return st_attr_actions_validate(&c->actions, "actions", ctx);
}

static int attributes_create(const struct st_component_settings *set, const void *cfg, void **ret) {
        const struct attributes_cfg *c = cfg;
        struct attributes_proc *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->next = set->next[set->signal];
        st_attr_actions_init(&p->acts, &c->actions);
        *ret = p;
        return 0;
}

/* The data points of one metric, whatever its kind. */
#define APPLY_POINTS(run, points, n)                                                             \
        do {                                                                                     \
                for (size_t k_ = 0; k_ < (n); k_++)                                              \
                        if ((r = st_attr_apply((run), &(points)[k_]->attributes,                 \
                                               &(points)[k_]->n_attributes)) < 0)                 \
                                return r;                                                        \
        } while (0)

static int apply_metric(struct st_attr_run *run, st_metric *m) {
        int r;
        switch (m->data_case) {
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                if (m->gauge)
                        APPLY_POINTS(run, m->gauge->data_points, m->gauge->n_data_points);
                break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                if (m->sum)
                        APPLY_POINTS(run, m->sum->data_points, m->sum->n_data_points);
                break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                if (m->histogram)
                        APPLY_POINTS(run, m->histogram->data_points, m->histogram->n_data_points);
                break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                if (m->exponential_histogram)
                        APPLY_POINTS(run, m->exponential_histogram->data_points, m->exponential_histogram->n_data_points);
                break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                if (m->summary)
                        APPLY_POINTS(run, m->summary->data_points, m->summary->n_data_points);
                break;
        default:
                break;
        }
        return 0;
}

static int apply_item(struct st_attr_run *run, enum st_signal s, void *item) {
        switch (s) {
        case ST_TRACES: {
                st_span *sp = item;
                return st_attr_apply(run, &sp->attributes, &sp->n_attributes);
        }
        case ST_LOGS: {
                st_log_record *lr = item;
                return st_attr_apply(run, &lr->attributes, &lr->n_attributes);
        }
        case ST_METRICS:
                return apply_metric(run, item);
        default:
                return -EINVAL;
        }
}

static int apply(struct attributes_proc *p, st_batch *b) {
        enum st_signal s = b->signal;
        struct st_attr_run run;
        int r = st_attr_run_init(&run, &p->acts, &b->arena);
        if (r < 0)
                return r;

        for (size_t i = 0; i < st_req_n(s, b->req); i++) {
                void *res = st_req_v(s, b->req)[i];
                for (size_t j = 0; j < st_res_n(s, res); j++) {
                        void *sc = st_res_v(s, res)[j];
                        for (size_t k = 0; k < st_scope_n(s, sc); k++)
                                if ((r = apply_item(&run, s, st_scope_v(s, sc)[k])) < 0)
                                        return r;
                }
        }
        return 0;
}

static int attributes_consume(void *self, st_batch *b) {
        struct attributes_proc *p = self;
        st_batch *w;
        int r = st_batch_writable(b, &w);
        if (r < 0)
                return r;
        r = apply(p, w);
        if (r >= 0)
                r = st_consume(&p->next, w);
        st_batch_unref(w);
        return r;
}

static void attributes_destroy(void *self) {
        free(self);
}

const struct st_factory st_processor_attributes = {
        .type = "attributes",
        .kind = ST_PROCESSOR,
        .signals = ST_SIG_ALL,
        .description = "inserts, updates or deletes span, log record and data point attributes",
        .mutates = true,
        .config_size = sizeof(struct attributes_cfg),
        .config = attributes_fields,
        .validate = attributes_validate,
        .create = attributes_create,
        .consume = attributes_consume,
        .destroy = attributes_destroy,
};
