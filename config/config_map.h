/* Config maps: a component declares its options once (name, type, default, where it lives in
 * its config struct, a description); defaults are applied, YAML is overlaid, unknown keys and
 * wrong types are errors with file:line:col — all here, not in each component. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tree.h"

enum st_cfg_type {
        ST_CFG_STRING,   /* char *            */
        ST_CFG_BOOL,     /* bool              */
        ST_CFG_INT,      /* int64_t, min..max */
        ST_CFG_DOUBLE,   /* double            */
        ST_CFG_DURATION, /* int64_t ns: "200ms", "5s", "1m30s", "0" */
        ST_CFG_SIZE,     /* uint64_t bytes: "4MiB", "512KiB", "1GB", 1024 */
        ST_CFG_ENUM,     /* int: index in .enums */
        ST_CFG_STRINGS,  /* struct st_strv: a sequence of strings */
        ST_CFG_MAP,      /* struct st_kvv: string → string (headers) */
        ST_CFG_SECTION,  /* a nested struct at .offset, described by .sub */
        ST_CFG_LIST,     /* struct st_list: a sequence of .sub structs of .elem_size */
        ST_CFG_VALUE,    /* struct st_cfg_value: a typed YAML scalar (attribute values) */
};

struct st_strv { char **v; size_t n; };
struct st_kvv { char **k, **v; size_t n; };
struct st_list { void *v; size_t n; };

enum st_value_type { ST_VALUE_NONE, ST_VALUE_STRING, ST_VALUE_INT, ST_VALUE_DOUBLE, ST_VALUE_BOOL };
struct st_cfg_value {
        enum st_value_type type;
        char *s;
        int64_t i;
        double d;
        bool b;
};

struct st_cfg_field {
        const char *name;
        enum st_cfg_type type;
        size_t offset;
        const char *def;  /* default, written as it would be in YAML; NULL = zero/empty */
        const char *desc;
        const struct st_cfg_field *sub; /* SECTION, LIST: terminated by a field with name NULL */
        size_t elem_size;               /* LIST */
        const char *const *enums;       /* ENUM: NULL-terminated */
        int64_t min, max;               /* INT: checked when min < max */
        size_t present;                 /* offsetof(bool) + 1, set when the key is given; 0 = none */
        bool required;
};
#define ST_CFG_PRESENT(T, m) (offsetof(T, m) + 1)
#define ST_CFG_END { .name = NULL }

/* Context for a component's own validation: errors name the offending key's position. */
struct st_cfg_ctx {
        struct st_diag *diag;
        const st_node *node; /* the component's config node (may be NULL: defaults only) */
        const st_node *at;   /* where to report when a key is absent: the component's key */
};
/* path: "protocols.grpc.endpoint" relative to the component; reported at that key's value, or
 * at the nearest present ancestor. */
void st_cfg_errorf(struct st_cfg_ctx *c, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Applies defaults, then node (may be NULL). Returns -EINVAL when anything was reported. */
int st_cfg_load(const struct st_cfg_field *fields, void *cfg, const st_node *node, struct st_diag *d);
void st_cfg_free(const struct st_cfg_field *fields, void *cfg); /* frees what load allocated */

/* Central parsers, exported for the places that read values outside a config map. */
int st_parse_duration(const char *s, int64_t *ret_ns);
int st_parse_size(const char *s, uint64_t *ret_bytes);
int st_parse_bool(const char *s, bool *ret);
int st_parse_int(const char *s, int64_t *ret);

/* Writes "name  type  default  description" lines for `strata components -v`. */
void st_cfg_describe(const struct st_cfg_field *fields, const char *prefix, st_buf *out);
