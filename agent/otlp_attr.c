#include "otlp_attr.h"

#include <string.h>

/* The pair in one allocation: attributes are made per record, on hot paths. */
static st_key_value *kv_new(st_arena *a, const char *key, Opentelemetry__Proto__Common__V1__AnyValue__ValueCase c) {
        struct {
                st_key_value kv;
                st_any_value v;
        } *p = st_arena_alloc(a, sizeof(*p));
        if (!p)
                return NULL;
        opentelemetry__proto__common__v1__key_value__init(&p->kv);
        opentelemetry__proto__common__v1__any_value__init(&p->v);
        p->kv.key = (char *) key;
        p->kv.value = &p->v;
        p->v.value_case = c;
        return &p->kv;
}

st_key_value *st_kv_str(st_arena *a, const char *key, const char *s) {
        char *c = s ? st_arena_strdup(a, s) : NULL;
        return c ? st_kv_static(a, key, c) : NULL;
}

st_key_value *st_kv_static(st_arena *a, const char *key, const char *s) {
        st_key_value *kv = kv_new(a, key, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
        if (kv)
                kv->value->string_value = (char *) s;
        return kv;
}

st_key_value *st_kv_int(st_arena *a, const char *key, int64_t i) {
        st_key_value *kv = kv_new(a, key, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
        if (kv)
                kv->value->int_value = i;
        return kv;
}

const st_any_value *st_kv_find(st_key_value *const *v, size_t n, const char *key) {
        for (size_t i = 0; i < n; i++)
                if (v[i] && v[i]->key && strcmp(v[i]->key, key) == 0)
                        return v[i]->value;
        return NULL;
}

bool st_kv_int_of(st_key_value *const *v, size_t n, const char *key, int64_t *ret) {
        const st_any_value *a = st_kv_find(v, n, key);
        if (!a || a->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE)
                return false;
        *ret = a->int_value;
        return true;
}
