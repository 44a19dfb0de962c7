/* The resource processor: insert, update, upsert or delete Resource attributes (the
 * Collector's resourceprocessor). The actions themselves are agent/attr_actions.c, shared with
 * the attributes processor. */
#include <errno.h>
#include <stdlib.h>

#include "attr_actions.h"
#include "component.h"

struct resource_cfg {
        struct st_list attributes; /* struct st_attr_action_cfg */
};

static const struct st_cfg_field resource_fields[] = {
        { .name = "attributes", .type = ST_CFG_LIST, .offset = offsetof(struct resource_cfg, attributes),
          .sub = st_attr_action_fields, .elem_size = sizeof(struct st_attr_action_cfg),
          .desc = "actions on resource attributes, applied in order", .required = true },
        ST_CFG_END
};

struct resource_proc {
        struct st_consumer next;
        enum st_signal signal;
        struct st_attr_actions acts;
};

static int resource_validate(const void *cfg, struct st_cfg_ctx *ctx) {
        const struct resource_cfg *c = cfg;
        return st_attr_actions_validate(&c->attributes, "attributes", ctx);
}

static int resource_create(const struct st_component_settings *set, const void *cfg, void **ret) {
        const struct resource_cfg *c = cfg;
        struct resource_proc *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->next = set->next[set->signal];
        p->signal = set->signal;
        st_attr_actions_init(&p->acts, &c->attributes);
        *ret = p;
        return 0;
}

static int apply(struct resource_proc *p, st_batch *b) {
        enum st_signal s = b->signal;
        struct st_attr_run run;
        int r = st_attr_run_init(&run, &p->acts, &b->arena);
        if (r < 0)
                return r;

        for (size_t i = 0; i < st_req_n(s, b->req); i++) {
                void *entry = st_req_v(s, b->req)[i];
                st_resource *res = st_res_resource(s, entry);

                if (!res) {
                        /* No Resource yet: only create one when the actions added something. */
                        st_key_value **v = NULL;
                        size_t n = 0;
                        if (p->acts.n_adding == 0)
                                continue;
                        if ((r = st_attr_apply(&run, &v, &n)) < 0)
                                return r;
                        if (n == 0)
                                continue;
                        res = st_arena_alloc(&b->arena, sizeof(*res));
                        if (!res)
                                return -ENOMEM;
                        opentelemetry__proto__resource__v1__resource__init(res);
                        res->attributes = v;
                        res->n_attributes = n;
                        ST_FIELD(entry, st_signals[s].res_resource, st_resource *) = res;
                        continue;
                }
                if ((r = st_attr_apply(&run, &res->attributes, &res->n_attributes)) < 0)
                        return r;
        }
        return 0;
}

static int resource_consume(void *self, st_batch *b) {
        struct resource_proc *p = self;
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

static void resource_destroy(void *self) {
        free(self);
}

const struct st_factory st_processor_resource = {
        .type = "resource",
        .kind = ST_PROCESSOR,
        .signals = ST_SIG_ALL,
        .description = "inserts, updates or deletes resource attributes",
        .mutates = true,
        .config_size = sizeof(struct resource_cfg),
        .config = resource_fields,
        .validate = resource_validate,
        .create = resource_create,
        .consume = resource_consume,
        .destroy = resource_destroy,
};
