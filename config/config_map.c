#include "config_map.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FIELD(cfg, f, T) ((T *) ((char *) (cfg) + (f)->offset))

int st_parse_int(const char *s, int64_t *ret) {
        char *end;
        int base = 10;
        const char *p = s;
        if (*p == '+' || *p == '-')
                p++;
        if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
                base = 16;
        else if (p[0] == '0' && p[1] == 'o') {
                /* YAML 1.2 octal: 0o660 */
                char tmp[64];
                if (strlen(s) >= sizeof(tmp))
                        return -EINVAL;
                snprintf(tmp, sizeof(tmp), "%.*s%s", (int) (p - s), s, p + 2);
                errno = 0;
                long long v = strtoll(tmp, &end, 8);
                if (errno || end == tmp || *end)
                        return -EINVAL;
                *ret = v;
                return 0;
        }
        errno = 0;
        long long v = strtoll(s, &end, base);
        if (errno == ERANGE)
                return -ERANGE;
        if (end == s || *end || !*s)
                return -EINVAL;
        *ret = v;
        return 0;
}

int st_parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
        for (size_t i = 0; i < 3; i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

int st_parse_duration(const char *s, int64_t *ret_ns) {
        static const struct { const char *unit; int64_t ns; } units[] = {
                { "ns", 1 }, { "us", 1000 }, { "µs", 1000 }, { "ms", 1000000 },
                { "s", 1000000000 }, { "m", INT64_C(60000000000) }, { "h", INT64_C(3600000000000) },
        };
        const char *p = s;
        double total = 0;
        if (strcmp(s, "0") == 0) {
                *ret_ns = 0;
                return 0;
        }
        if (!*p)
                return -EINVAL;
        while (*p) {
                char *end;
                if (!isdigit((unsigned char) *p) && *p != '.')
                        return -EINVAL;
                double v = strtod(p, &end);
                if (end == p)
                        return -EINVAL;
                p = end;
                size_t best = 0;
                int64_t mult = 0;
                for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                        size_t l = strlen(units[i].unit);
                        if (strncmp(p, units[i].unit, l) == 0 && l > best) {
                                best = l;
                                mult = units[i].ns;
                        }
                }
                if (!best)
                        return -EINVAL; /* a number without a unit */
                p += best;
                total += v * (double) mult;
        }
        if (total > (double) INT64_MAX)
                return -ERANGE;
        *ret_ns = (int64_t) llround(total);
        return 0;
}

int st_parse_size(const char *s, uint64_t *ret_bytes) {
        static const struct { const char *unit; uint64_t mult; } units[] = {
                { "", 1 }, { "B", 1 },
                { "KiB", 1ull << 10 }, { "MiB", 1ull << 20 }, { "GiB", 1ull << 30 }, { "TiB", 1ull << 40 },
                { "KB", 1000ull }, { "MB", 1000000ull }, { "GB", 1000000000ull }, { "TB", 1000000000000ull },
                { "K", 1ull << 10 }, { "M", 1ull << 20 }, { "G", 1ull << 30 }, { "k", 1ull << 10 },
        };
        char *end;
        if (!isdigit((unsigned char) *s))
                return -EINVAL;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || v < 0)
                return -EINVAL;
        while (*end == ' ')
                end++;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (strcmp(end, units[i].unit) == 0) {
                        double b = v * (double) units[i].mult;
                        if (b >= 18446744073709551615.0)
                                return -ERANGE;
                        *ret_bytes = (uint64_t) b;
                        return 0;
                }
        return -EINVAL;
}

static const char *type_name(enum st_cfg_type t) {
        switch (t) {
        case ST_CFG_STRING: return "string";
        case ST_CFG_BOOL: return "bool";
        case ST_CFG_INT: return "int";
        case ST_CFG_DOUBLE: return "number";
        case ST_CFG_DURATION: return "duration";
        case ST_CFG_SIZE: return "size";
        case ST_CFG_ENUM: return "enum";
        case ST_CFG_STRINGS: return "list of strings";
        case ST_CFG_MAP: return "map of strings";
        case ST_CFG_SECTION: return "section";
        case ST_CFG_LIST: return "list of sections";
        case ST_CFG_VALUE: return "value";
        }
        return "?";
}

static void apply_defaults(const struct st_cfg_field *fields, void *cfg, struct st_diag *d);
static int load_section(const struct st_cfg_field *fields, void *cfg, const st_node *node, struct st_diag *d);

static char *xstrdup(const char *s) {
        char *p = strdup(s);
        if (!p)
                abort(); /* config loading happens once at start-up; out of memory there is fatal */
        return p;
}

static void value_from_scalar(const st_node *n, struct st_cfg_value *v) {
        int64_t i;
        bool b;
        char *end;
        free(v->s);
        *v = (struct st_cfg_value) { 0 };
        if (n->kind == ST_NODE_NULL)
                return;
        if (!n->quoted && st_parse_bool(n->value, &b) == 0 && (strcasecmp(n->value, "true") == 0 || strcasecmp(n->value, "false") == 0)) {
                v->type = ST_VALUE_BOOL;
                v->b = b;
        } else if (!n->quoted && st_parse_int(n->value, &i) == 0) {
                v->type = ST_VALUE_INT;
                v->i = i;
        } else if (!n->quoted && (v->d = strtod(n->value, &end), end != n->value && !*end)) {
                v->type = ST_VALUE_DOUBLE;
        } else {
                v->type = ST_VALUE_STRING;
                v->s = xstrdup(n->value);
        }
}

static int expect_scalar(const struct st_cfg_field *f, const st_node *n, struct st_diag *d) {
        if (n->kind == ST_NODE_SCALAR)
                return 0;
        st_diag_at(d, n, "'%s' must be a %s, not %s", f->name, type_name(f->type), st_node_kind_name(n->kind));
        return -EINVAL;
}

/* Reads one value into cfg. n is never NULL. */
static int load_field(const struct st_cfg_field *f, void *cfg, const st_node *n, struct st_diag *d) {
        int r;
        switch (f->type) {
        case ST_CFG_STRING:
                if (n->kind == ST_NODE_NULL) {
                        free(*FIELD(cfg, f, char *));
                        *FIELD(cfg, f, char *) = NULL;
                        return 0;
                }
                if ((r = expect_scalar(f, n, d)) < 0)
                        return r;
                free(*FIELD(cfg, f, char *));
                *FIELD(cfg, f, char *) = xstrdup(n->value);
                return 0;
        case ST_CFG_BOOL:
                if ((r = expect_scalar(f, n, d)) < 0)
                        return r;
                if (st_parse_bool(n->value, FIELD(cfg, f, bool)) < 0) {
                        st_diag_at(d, n, "'%s' must be true or false, not '%s'", f->name, n->value);
                        return -EINVAL;
                }
                return 0;
        case ST_CFG_INT: {
                int64_t v;
                if ((r = expect_scalar(f, n, d)) < 0)
                        return r;
                if (st_parse_int(n->value, &v) < 0) {
                        st_diag_at(d, n, "'%s' must be an integer, not '%s'", f->name, n->value);
                        return -EINVAL;
                }
                if (f->min < f->max && (v < f->min || v > f->max)) {
                        st_diag_at(d, n, "'%s' must be between %" PRId64 " and %" PRId64 ", not %" PRId64, f->name, f->min,
                                   f->max, v);
                        return -EINVAL;
                }
                *FIELD(cfg, f, int64_t) = v;
                return 0;
        }
        case ST_CFG_DOUBLE: {
                char *end;
                if ((r = expect_scalar(f, n, d)) < 0)
                        return r;
                double v = strtod(n->value, &end);
                if (end == n->value || *end || !isfinite(v)) {
                        st_diag_at(d, n, "'%s' must be a number, not '%s'", f->name, n->value);
                        return -EINVAL;
                }
                *FIELD(cfg, f, double) = v;
                return 0;
        }
        case ST_CFG_DURATION:
                if ((r = expect_scalar(f, n, d)) < 0)
                        return r;
                if (st_parse_duration(n->value, FIELD(cfg, f, int64_t)) < 0) {
                        st_diag_at(d, n, "'%s' must be a duration like 200ms, 5s or 1m30s, not '%s'", f->name, n->value);
                        return -EINVAL;
                }
                return 0;
        case ST_CFG_SIZE:
                if ((r = expect_scalar(f, n, d)) < 0)
                        return r;
                if (st_parse_size(n->value, FIELD(cfg, f, uint64_t)) < 0) {
                        st_diag_at(d, n, "'%s' must be a size like 4MiB, 512KiB or 1024, not '%s'", f->name, n->value);
                        return -EINVAL;
                }
                return 0;
        case ST_CFG_ENUM: {
                if ((r = expect_scalar(f, n, d)) < 0)
                        return r;
                for (int i = 0; f->enums[i]; i++)
                        if (strcmp(f->enums[i], n->value) == 0) {
                                *FIELD(cfg, f, int) = i;
                                return 0;
                        }
                st_buf allowed = { 0 };
                for (int i = 0; f->enums[i]; i++)
                        st_buf_printf(&allowed, "%s%s", i ? ", " : "", f->enums[i]);
                st_diag_at(d, n, "'%s' must be one of %s, not '%s'", f->name, st_buf_cstr(&allowed), n->value);
                st_buf_free(&allowed);
                return -EINVAL;
        }
        case ST_CFG_STRINGS: {
                struct st_strv *sv = FIELD(cfg, f, struct st_strv);
                if (n->kind == ST_NODE_NULL)
                        return 0;
                if (n->kind != ST_NODE_SEQ) {
                        st_diag_at(d, n, "'%s' must be a list of strings, not %s", f->name, st_node_kind_name(n->kind));
                        return -EINVAL;
                }
                for (size_t i = 0; i < sv->n; i++)
                        free(sv->v[i]);
                free(sv->v);
                sv->v = calloc(n->n ? n->n : 1, sizeof(char *));
                sv->n = 0;
                r = 0;
                for (size_t i = 0; i < n->n; i++) {
                        if (n->items[i]->kind != ST_NODE_SCALAR) {
                                st_diag_at(d, n->items[i], "items of '%s' must be strings, not %s", f->name,
                                           st_node_kind_name(n->items[i]->kind));
                                r = -EINVAL;
                                continue;
                        }
                        sv->v[sv->n++] = xstrdup(n->items[i]->value);
                }
                return r;
        }
        case ST_CFG_MAP: {
                struct st_kvv *kv = FIELD(cfg, f, struct st_kvv);
                if (n->kind == ST_NODE_NULL)
                        return 0;
                if (n->kind != ST_NODE_MAP) {
                        st_diag_at(d, n, "'%s' must be a map of strings, not %s", f->name, st_node_kind_name(n->kind));
                        return -EINVAL;
                }
                r = 0;
                kv->k = realloc(kv->k, (kv->n + n->n + 1) * sizeof(char *));
                kv->v = realloc(kv->v, (kv->n + n->n + 1) * sizeof(char *));
                if (!kv->k || !kv->v)
                        abort();
                for (size_t i = 0; i < n->n; i++) {
                        if (n->items[i]->kind == ST_NODE_MAP || n->items[i]->kind == ST_NODE_SEQ) {
                                st_diag_at(d, n->items[i], "'%s.%s' must be a string, not %s", f->name, n->keys[i]->value,
                                           st_node_kind_name(n->items[i]->kind));
                                r = -EINVAL;
                                continue;
                        }
                        kv->k[kv->n] = xstrdup(n->keys[i]->value);
                        kv->v[kv->n++] = xstrdup(n->items[i]->value ? n->items[i]->value : "");
                }
                return r;
        }
        case ST_CFG_SECTION:
                if (f->present)
                        *(bool *) ((char *) cfg + f->present - 1) = true;
                return load_section(f->sub, FIELD(cfg, f, char), n, d);
        case ST_CFG_LIST: {
                struct st_list *l = FIELD(cfg, f, struct st_list);
                if (n->kind == ST_NODE_NULL)
                        return 0;
                if (n->kind != ST_NODE_SEQ) {
                        st_diag_at(d, n, "'%s' must be a list, not %s", f->name, st_node_kind_name(n->kind));
                        return -EINVAL;
                }
                l->v = calloc(n->n ? n->n : 1, f->elem_size);
                if (!l->v)
                        abort();
                l->n = n->n;
                r = 0;
                for (size_t i = 0; i < n->n; i++) {
                        void *elem = (char *) l->v + i * f->elem_size;
                        apply_defaults(f->sub, elem, d);
                        if (load_section(f->sub, elem, n->items[i], d) < 0)
                                r = -EINVAL;
                }
                return r;
        }
        case ST_CFG_VALUE:
                if (n->kind == ST_NODE_MAP || n->kind == ST_NODE_SEQ) {
                        st_diag_at(d, n, "'%s' must be a string, number or bool, not %s", f->name, st_node_kind_name(n->kind));
                        return -EINVAL;
                }
                value_from_scalar(n, FIELD(cfg, f, struct st_cfg_value));
                return 0;
        }
        return -EINVAL;
}

static void apply_defaults(const struct st_cfg_field *fields, void *cfg, struct st_diag *d) {
        for (const struct st_cfg_field *f = fields; f->name; f++) {
                if (f->type == ST_CFG_SECTION) {
                        apply_defaults(f->sub, FIELD(cfg, f, char), d);
                        continue;
                }
                if (!f->def)
                        continue;
                st_node def = { .kind = ST_NODE_SCALAR, .file = "<default>", .value = (char *) f->def };
                load_field(f, cfg, &def, d);
        }
}

static int load_section(const struct st_cfg_field *fields, void *cfg, const st_node *node, struct st_diag *d) {
        int r = 0;
        if (!node || node->kind == ST_NODE_NULL)
                goto required;
        if (node->kind != ST_NODE_MAP) {
                st_diag_at(d, node, "expected a map of settings, not %s", st_node_kind_name(node->kind));
                return -EINVAL;
        }
        for (size_t i = 0; i < node->n; i++) {
                const char *key = node->keys[i]->value;
                const struct st_cfg_field *f;
                for (f = fields; f->name; f++)
                        if (strcmp(f->name, key) == 0)
                                break;
                if (!f->name) {
                        st_buf known = { 0 };
                        for (f = fields; f->name; f++)
                                st_buf_printf(&known, "%s%s", f == fields ? "" : ", ", f->name);
                        st_diag_at(d, node->keys[i], "unknown key '%s' (known keys: %s)", key,
                                   known.len ? st_buf_cstr(&known) : "none");
                        st_buf_free(&known);
                        r = -EINVAL;
                        continue;
                }
                if (load_field(f, cfg, node->items[i], d) < 0)
                        r = -EINVAL;
        }
required:
        for (const struct st_cfg_field *f = fields; f->name; f++) {
                if (!f->required || st_node_get(node, f->name))
                        continue;
                if (node)
                        st_diag_at(d, node, "missing required key '%s'", f->name);
                r = -EINVAL;
        }
        return r;
}

int st_cfg_load(const struct st_cfg_field *fields, void *cfg, const st_node *node, struct st_diag *d) {
        size_t before = d->errors;
        apply_defaults(fields, cfg, d);
        int r = load_section(fields, cfg, node, d);
        if (r < 0 && d->errors == before) /* a required key with no node to point at */
                st_diag_file(d, node ? node->file : NULL, node ? node->line : 0, node ? node->col : 0,
                             "missing required settings");
        return d->errors > before ? -EINVAL : 0;
}

void st_cfg_free(const struct st_cfg_field *fields, void *cfg) {
        if (!cfg)
                return;
        for (const struct st_cfg_field *f = fields; f->name; f++) {
                switch (f->type) {
                case ST_CFG_STRING:
                        free(*FIELD(cfg, f, char *));
                        *FIELD(cfg, f, char *) = NULL;
                        break;
                case ST_CFG_STRINGS: {
                        struct st_strv *sv = FIELD(cfg, f, struct st_strv);
                        for (size_t i = 0; i < sv->n; i++)
                                free(sv->v[i]);
                        free(sv->v);
                        *sv = (struct st_strv) { 0 };
                        break;
                }
                case ST_CFG_MAP: {
                        struct st_kvv *kv = FIELD(cfg, f, struct st_kvv);
                        for (size_t i = 0; i < kv->n; i++) {
                                free(kv->k[i]);
                                free(kv->v[i]);
                        }
                        free(kv->k);
                        free(kv->v);
                        *kv = (struct st_kvv) { 0 };
                        break;
                }
                case ST_CFG_SECTION:
                        st_cfg_free(f->sub, FIELD(cfg, f, char));
                        break;
                case ST_CFG_LIST: {
                        struct st_list *l = FIELD(cfg, f, struct st_list);
                        for (size_t i = 0; i < l->n; i++)
                                st_cfg_free(f->sub, (char *) l->v + i * f->elem_size);
                        free(l->v);
                        *l = (struct st_list) { 0 };
                        break;
                }
                case ST_CFG_VALUE: {
                        struct st_cfg_value *v = FIELD(cfg, f, struct st_cfg_value);
                        free(v->s);
                        *v = (struct st_cfg_value) { 0 };
                        break;
                }
                default:
                        break;
                }
        }
}

static const st_node *walk_path(const st_node *n, const char *path) {
        char seg[128];
        const char *p = path;
        while (n && *p) {
                size_t l = strcspn(p, ".[");
                if (l) {
                        if (l >= sizeof(seg))
                                return n;
                        memcpy(seg, p, l);
                        seg[l] = 0;
                        const st_node *c = st_node_get(n, seg);
                        if (!c)
                                return n;
                        n = c;
                        p += l;
                }
                if (*p == '[') {
                        char *end;
                        unsigned long i = strtoul(p + 1, &end, 10);
                        if (*end != ']' || n->kind != ST_NODE_SEQ || i >= n->n)
                                return n;
                        n = n->items[i];
                        p = end + 1;
                }
                if (*p == '.')
                        p++;
        }
        return n;
}

void st_cfg_errorf(struct st_cfg_ctx *c, const char *path, const char *fmt, ...) {
        const st_node *at = c->node ? walk_path(c->node, path ? path : "") : c->at;
        st_buf msg = { 0 };
        va_list ap;
        va_start(ap, fmt);
        st_buf_vprintf(&msg, fmt, ap);
        va_end(ap);
        if (path && *path)
                st_diag_at(c->diag, at, "%s: %s", path, st_buf_cstr(&msg));
        else
                st_diag_at(c->diag, at, "%s", st_buf_cstr(&msg));
        st_buf_free(&msg);
}

void st_cfg_describe(const struct st_cfg_field *fields, const char *prefix, st_buf *out) {
        for (const struct st_cfg_field *f = fields; f->name; f++) {
                char name[256];
                snprintf(name, sizeof(name), "%s%s", prefix, f->name);
                if (f->type == ST_CFG_SECTION || f->type == ST_CFG_LIST) {
                        char sub[260];
                        st_buf_printf(out, "      %-40s %-16s %s\n", name, type_name(f->type), f->desc ? f->desc : "");
                        snprintf(sub, sizeof(sub), "%s%s.", name, f->type == ST_CFG_LIST ? "[]" : "");
                        st_cfg_describe(f->sub, sub, out);
                        continue;
                }
                st_buf_printf(out, "      %-40s %-16s %s%s%s%s\n", name, type_name(f->type), f->desc ? f->desc : "",
                              f->def ? " (default " : "", f->def ? f->def : "", f->def ? ")" : f->required ? " (required)" : "");
        }
}
