#include "attr_actions.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

static const st_any_value no_value = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
static const char *const action_names[] = { "insert", "update", "upsert", "delete", NULL };

const struct st_cfg_field st_attr_action_fields[] = {
        { .name = "key", .type = ST_CFG_STRING, .offset = offsetof(struct st_attr_action_cfg, key),
          .desc = "attribute key to act on", .required = true },
        { .name = "value", .type = ST_CFG_VALUE, .offset = offsetof(struct st_attr_action_cfg, value),
          .desc = "value to set (string, int, double or bool)" },
        { .name = "from_attribute", .type = ST_CFG_STRING, .offset = offsetof(struct st_attr_action_cfg, from_attribute),
          .desc = "take the value from this attribute instead" },
        { .name = "action", .type = ST_CFG_ENUM, .offset = offsetof(struct st_attr_action_cfg, action),
          .enums = action_names, .desc = "insert, update, upsert or delete", .required = true },
        ST_CFG_END
};

static const struct st_attr_action_cfg *elem(const struct st_list *l, size_t i) {
        return (const struct st_attr_action_cfg *) l->v + i;
}

int st_attr_actions_validate(const struct st_list *actions, const char *path, struct st_cfg_ctx *ctx) {
        int r = 0;
        if (actions->n == 0) {
                st_cfg_errorf(ctx, path, "at least one action is required");
                return -EINVAL;
        }
        for (size_t i = 0; i < actions->n; i++) {
                const struct st_attr_action_cfg *a = elem(actions, i);
                char p[128];
                bool has_value = a->value.type != ST_VALUE_NONE, has_from = a->from_attribute && *a->from_attribute;

                if (!a->key || !*a->key) {
                        snprintf(p, sizeof(p), "%s[%zu].key", path, i);
                        st_cfg_errorf(ctx, p, "must not be empty");
                        r = -EINVAL;
                }
                if (a->action == ST_ATTR_DELETE)
                        continue;
                snprintf(p, sizeof(p), "%s[%zu].value", path, i);
                if (!has_value && !has_from) {
                        st_cfg_errorf(ctx, p, "action '%s' needs a value or from_attribute", action_names[a->action]);
                        r = -EINVAL;
                } else if (has_value && has_from) {
                        st_cfg_errorf(ctx, p, "set either value or from_attribute, not both");
                        r = -EINVAL;
                }
        }
        return r;
}

void st_attr_actions_init(struct st_attr_actions *a, const struct st_list *actions) {
        *a = (struct st_attr_actions) { .v = actions->v, .n = actions->n };
        for (size_t i = 0; i < a->n; i++)
                if (a->v[i].action == ST_ATTR_INSERT || a->v[i].action == ST_ATTR_UPSERT)
                        a->n_adding++;
}

int st_attr_run_init(struct st_attr_run *run, const struct st_attr_actions *acts, st_arena *arena) {
        char **tab = st_arena_zalloc(arena, 2 * (acts->n ? acts->n : 1) * sizeof(char *));
        if (!tab)
                return -ENOMEM;
        *run = (struct st_attr_run) { .acts = acts, .arena = arena, .keys = tab, .strs = tab + acts->n };
        return 0;
}

static const char *run_key(struct st_attr_run *run, size_t i) {
        if (!run->keys[i])
                run->keys[i] = st_arena_strdup(run->arena, run->acts->v[i].key);
        return run->keys[i];
}

static ssize_t find(st_key_value *const *v, size_t n, const char *key) {
        for (size_t i = 0; i < n; i++)
                if (v[i]->key && strcmp(v[i]->key, key) == 0)
                        return (ssize_t) i;
        return -1;
}

/* A new KeyValue with action i's key and its value (or a copy of src's value), KeyValue and
 * AnyValue in one allocation. */
static st_key_value *make_kv(struct st_attr_run *run, size_t i, const st_any_value *src) {
        struct kv_pair {
                st_key_value kv;
                st_any_value v;
        } *p;
        const struct st_cfg_value *cv = &run->acts->v[i].value;
        const char *key = run_key(run, i);

        if (!key || !(p = st_arena_alloc(run->arena, sizeof(*p))))
                return NULL;
        opentelemetry__proto__common__v1__key_value__init(&p->kv);
        p->kv.key = (char *) key;
        p->kv.value = &p->v;
        if (src) {
                p->v = *src; /* shallow: nested arrays and maps are shared, never written */
                return &p->kv;
        }
        opentelemetry__proto__common__v1__any_value__init(&p->v);
        switch (cv->type) {
        case ST_VALUE_STRING:
                if (!run->strs[i] && !(run->strs[i] = st_arena_strdup(run->arena, cv->s)))
                        return NULL;
                p->v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
                p->v.string_value = run->strs[i];
                break;
        case ST_VALUE_INT:
                p->v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
                p->v.int_value = cv->i;
                break;
        case ST_VALUE_DOUBLE:
                p->v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
                p->v.double_value = cv->d;
                break;
        case ST_VALUE_BOOL:
                p->v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
                p->v.bool_value = cv->b;
                break;
        case ST_VALUE_NONE:
                break; /* validation rules this out; an empty value is still valid OTLP */
        }
        return &p->kv;
}

/* Appends kv; the first growth of a list reserves room for every adding action so that a
 * list grows at most once per batch. */
static int push(struct st_attr_run *run, st_key_value ***v, size_t *n, size_t *cap, st_key_value *kv) {
        if (*n == *cap) {
                size_t ncap = *n + (run->acts->n_adding ? run->acts->n_adding : 1);
                st_key_value **nv = st_arena_alloc(run->arena, ncap * sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                if (*n)
                        memcpy(nv, *v, *n * sizeof(*nv));
                *v = nv;
                *cap = ncap;
        }
        (*v)[(*n)++] = kv;
        return 0;
}

int st_attr_apply(struct st_attr_run *run, st_key_value ***v, size_t *n) {
        size_t cap = *n; /* whether the array has spare room is unknown: assume none */

        for (size_t i = 0; i < run->acts->n; i++) {
                const struct st_attr_action_cfg *a = &run->acts->v[i];
                const st_any_value *src = NULL;
                st_key_value *kv;
                ssize_t at = find(*v, *n, a->key);

                if (a->action == ST_ATTR_DELETE) {
                        size_t w = 0;
                        if (at < 0)
                                continue;
                        for (size_t j = 0; j < *n; j++) /* every copy: duplicate keys happen in bad input */
                                if (!(*v)[j]->key || strcmp((*v)[j]->key, a->key) != 0)
                                        (*v)[w++] = (*v)[j];
                        *n = w;
                        continue;
                }
                if ((a->action == ST_ATTR_INSERT && at >= 0) || (a->action == ST_ATTR_UPDATE && at < 0))
                        continue;
                if (a->from_attribute && *a->from_attribute) {
                        ssize_t from = find(*v, *n, a->from_attribute);
                        if (from < 0)
                                continue;
                        src = (*v)[from]->value;
                        if (!src) /* a KeyValue without value: copy "no value" */
                                src = &no_value;
                }
                kv = make_kv(run, i, src);
                if (!kv)
                        return -ENOMEM;
                if (at >= 0)
                        (*v)[at] = kv; /* replace the pointer, never the KeyValue: it may be shared */
                else if (push(run, v, n, &cap, kv) < 0)
                        return -ENOMEM;
        }
        return 0;
}
