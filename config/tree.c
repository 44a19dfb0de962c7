#include "tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 64

/* The message, kept on one line: messages quote values from the file, and a value may hold
 * newlines (a block or quoted scalar) or other control characters, which are escaped. */
static void diag_message(struct st_diag *d, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void diag_message(struct st_diag *d, const char *fmt, va_list ap) {
        st_buf msg = { 0 };
        st_buf_vprintf(&msg, fmt, ap);
        for (size_t i = 0; i < msg.len; i++) {
                unsigned char c = (unsigned char) msg.data[i];
                if (c == '\n')
                        st_buf_puts(&d->text, "\\n");
                else if (c == '\r')
                        st_buf_puts(&d->text, "\\r");
                else if ((c < 0x20 && c != '\t') || c == 0x7f)
                        st_buf_printf(&d->text, "\\x%02x", c);
                else
                        st_buf_putc(&d->text, (char) c);
        }
        st_buf_free(&msg);
        st_buf_putc(&d->text, '\n');
        d->errors++;
}

void st_diag_file(struct st_diag *d, const char *file, int line, int col, const char *fmt, ...) {
        va_list ap;
        st_buf_printf(&d->text, "%s:%d:%d: ", file ? file : "<config>", line, col);
        va_start(ap, fmt);
        diag_message(d, fmt, ap);
        va_end(ap);
}

void st_diag_at(struct st_diag *d, const st_node *at, const char *fmt, ...) {
        va_list ap;
        st_buf_printf(&d->text, "%s:%d:%d: ", at && at->file ? at->file : "<config>", at ? at->line : 0,
                      at ? at->col : 0);
        va_start(ap, fmt);
        diag_message(d, fmt, ap);
        va_end(ap);
}

void st_diag_free(struct st_diag *d) {
        st_buf_free(&d->text);
        d->errors = 0;
}

const char *st_node_kind_name(enum st_node_kind k) {
        switch (k) {
        case ST_NODE_SCALAR: return "a scalar";
        case ST_NODE_MAP: return "a map";
        case ST_NODE_SEQ: return "a list";
        default: return "null";
        }
}

static void node_free_one(st_node *n) {
        if (!n)
                return;
        for (size_t i = 0; i < n->n; i++) {
                if (n->keys)
                        node_free_one(n->keys[i]);
                node_free_one(n->items[i]);
        }
        free(n->keys);
        free(n->items);
        free(n->value);
        free(n);
}

void st_node_free(st_node *n) {
        if (!n)
                return;
        char *file = (char *) n->file;
        node_free_one(n);
        free(file); /* the root owns the file name every node points to */
}

const st_node *st_node_get(const st_node *map, const char *key) {
        if (!map || map->kind != ST_NODE_MAP)
                return NULL;
        for (size_t i = 0; i < map->n; i++)
                if (strcmp(map->keys[i]->value, key) == 0)
                        return map->items[i];
        return NULL;
}

/* ${env:NAME}, ${NAME}, ${NAME:-default}, ${env:NAME:-default}; $$ is a literal $. */
static int substitute(const char *in, char **ret, const char **ret_err_name, bool *ret_unterminated) {
        st_buf out = { 0 };
        const char *p = in;
        *ret_unterminated = false;
        while (*p) {
                if (p[0] == '$' && p[1] == '$') {
                        st_buf_putc(&out, '$');
                        p += 2;
                        continue;
                }
                if (p[0] != '$' || p[1] != '{') {
                        st_buf_putc(&out, *p++);
                        continue;
                }
                const char *end = strchr(p + 2, '}');
                if (!end) {
                        st_buf_free(&out);
                        *ret_unterminated = true;
                        return -EINVAL;
                }
                const char *name = p + 2;
                if (strncmp(name, "env:", 4) == 0)
                        name += 4;
                const char *def = NULL;
                size_t name_len = (size_t) (end - name);
                const char *dash = strstr(name, ":-");
                if (dash && dash < end) {
                        def = dash + 2;
                        name_len = (size_t) (dash - name);
                }
                char var[256];
                if (name_len == 0 || name_len >= sizeof(var)) {
                        st_buf_free(&out);
                        *ret_err_name = "";
                        return -EINVAL;
                }
                memcpy(var, name, name_len);
                var[name_len] = 0;
                const char *val = getenv(var);
                if (val && *val)
                        st_buf_puts(&out, val);
                else if (def)
                        st_buf_append(&out, def, (size_t) (end - def));
                else if (!val) {
                        static __thread char missing[256];
                        snprintf(missing, sizeof(missing), "%s", var);
                        *ret_err_name = missing;
                        st_buf_free(&out);
                        return -ENOENT;
                }
                p = end + 1;
        }
        *ret = strdup(st_buf_cstr(&out));
        st_buf_free(&out);
        return *ret ? 0 : -ENOMEM;
}

struct builder {
        yaml_parser_t parser;
        const char *file;
        struct st_diag *diag;
        int depth;
};

static st_node *node_new(struct builder *b, enum st_node_kind kind, yaml_mark_t mark) {
        st_node *n = calloc(1, sizeof(*n));
        if (!n)
                return NULL;
        n->kind = kind;
        n->file = b->file;
        n->line = (int) mark.line + 1;
        n->col = (int) mark.column + 1;
        return n;
}

static int push_item(st_node *parent, st_node *key, st_node *item) {
        st_node **items = realloc(parent->items, (parent->n + 1) * sizeof(*items));
        if (!items)
                return -ENOMEM;
        parent->items = items;
        if (parent->kind == ST_NODE_MAP) {
                st_node **keys = realloc(parent->keys, (parent->n + 1) * sizeof(*keys));
                if (!keys)
                        return -ENOMEM;
                parent->keys = keys;
                keys[parent->n] = key;
        }
        items[parent->n++] = item;
        return 0;
}

static int parse_node(struct builder *b, yaml_event_t *ev, st_node **ret);

static int next_event(struct builder *b, yaml_event_t *ev) {
        if (!yaml_parser_parse(&b->parser, ev)) {
                st_diag_file(b->diag, b->file, (int) b->parser.problem_mark.line + 1,
                             (int) b->parser.problem_mark.column + 1, "YAML syntax error: %s%s%s",
                             b->parser.problem ? b->parser.problem : "unknown",
                             b->parser.context ? " " : "", b->parser.context ? b->parser.context : "");
                return -EINVAL;
        }
        return 0;
}

static int parse_collection(struct builder *b, st_node *n, yaml_event_type_t end_type) {
        for (;;) {
                yaml_event_t ev;
                st_node *key = NULL, *item = NULL;
                int r = next_event(b, &ev);
                if (r < 0)
                        return r;
                if (ev.type == end_type) {
                        yaml_event_delete(&ev);
                        return 0;
                }
                if (n->kind == ST_NODE_MAP) {
                        r = parse_node(b, &ev, &key);
                        yaml_event_delete(&ev);
                        if (r < 0)
                                return r;
                        if (key->kind != ST_NODE_SCALAR) {
                                st_diag_at(b->diag, key, "map keys must be scalars, not %s", st_node_kind_name(key->kind));
                                node_free_one(key);
                                return -EINVAL;
                        }
                        for (size_t i = 0; i < n->n; i++)
                                if (strcmp(n->keys[i]->value, key->value) == 0) {
                                        st_diag_at(b->diag, key, "duplicate key '%s' (first at line %d)", key->value,
                                                   n->keys[i]->line);
                                        break;
                                }
                        r = next_event(b, &ev);
                        if (r < 0) {
                                node_free_one(key);
                                return r;
                        }
                }
                r = parse_node(b, &ev, &item);
                yaml_event_delete(&ev);
                if (r < 0 || (r = push_item(n, key, item)) < 0) {
                        node_free_one(key);
                        node_free_one(item);
                        return r;
                }
        }
}

static int parse_node(struct builder *b, yaml_event_t *ev, st_node **ret) {
        st_node *n;
        int r;

        switch (ev->type) {
        case YAML_SCALAR_EVENT: {
                const char *v = (const char *) ev->data.scalar.value;
                bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                bool is_null = plain && (!*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
                                         strcmp(v, "NULL") == 0);
                n = node_new(b, is_null ? ST_NODE_NULL : ST_NODE_SCALAR, ev->start_mark);
                if (!n)
                        return -ENOMEM;
                n->quoted = !plain;
                const char *missing = NULL;
                bool unterminated = false;
                r = substitute(v, &n->value, &missing, &unterminated);
                if (r == -ENOENT) {
                        st_diag_at(b->diag, n, "environment variable %s is not set (give a default: ${%s:-value})", missing,
                                   missing);
                        n->value = strdup("");
                } else if (r == -EINVAL) {
                        st_diag_at(b->diag, n, unterminated ? "unterminated ${ in '%s'" : "bad variable reference in '%s'", v);
                        n->value = strdup("");
                }
                if (!n->value) {
                        node_free_one(n);
                        return -ENOMEM;
                }
                *ret = n;
                return 0;
        }
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT: {
                bool map = ev->type == YAML_MAPPING_START_EVENT;
                n = node_new(b, map ? ST_NODE_MAP : ST_NODE_SEQ, ev->start_mark);
                if (!n)
                        return -ENOMEM;
                if (++b->depth > MAX_DEPTH) {
                        st_diag_at(b->diag, n, "nesting deeper than %d levels", MAX_DEPTH);
                        node_free_one(n);
                        return -EINVAL;
                }
                r = parse_collection(b, n, map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT);
                b->depth--;
                if (r < 0) {
                        node_free_one(n);
                        return r;
                }
                *ret = n;
                return 0;
        }
        case YAML_ALIAS_EVENT:
                st_diag_file(b->diag, b->file, (int) ev->start_mark.line + 1, (int) ev->start_mark.column + 1,
                             "YAML aliases are not supported");
                return -EINVAL;
        default:
                st_diag_file(b->diag, b->file, (int) ev->start_mark.line + 1, (int) ev->start_mark.column + 1,
                             "unexpected YAML event %d", ev->type);
                return -EINVAL;
        }
}

int st_tree_parse_string(const char *name, const char *text, size_t len, st_node **ret, struct st_diag *d) {
        struct builder b = { .diag = d };
        st_node *root = NULL;
        size_t errors_before = d->errors;
        yaml_event_t ev;
        int r;

        b.file = strdup(name ? name : "<config>");
        if (!b.file)
                return -ENOMEM;
        if (!yaml_parser_initialize(&b.parser)) {
                free((char *) b.file);
                return -ENOMEM;
        }
        yaml_parser_set_input_string(&b.parser, (const unsigned char *) text, len);

        /* STREAM-START, DOCUMENT-START (or STREAM-END for an empty file), the root node. */
        r = next_event(&b, &ev);
        if (r < 0)
                goto fail;
        yaml_event_delete(&ev);
        r = next_event(&b, &ev);
        if (r < 0)
                goto fail;
        if (ev.type == YAML_STREAM_END_EVENT) {
                yaml_event_delete(&ev);
                root = node_new(&b, ST_NODE_MAP, (yaml_mark_t) { 0 });
                if (!root) {
                        r = -ENOMEM;
                        goto fail;
                }
                goto done;
        }
        yaml_event_delete(&ev);
        r = next_event(&b, &ev);
        if (r < 0)
                goto fail;
        r = parse_node(&b, &ev, &root);
        yaml_event_delete(&ev);
        if (r < 0)
                goto fail;
        r = next_event(&b, &ev); /* DOCUMENT-END */
        if (r < 0)
                goto fail;
        yaml_event_delete(&ev);
        r = next_event(&b, &ev);
        if (r < 0)
                goto fail;
        if (ev.type != YAML_STREAM_END_EVENT) {
                st_diag_file(d, b.file, (int) ev.start_mark.line + 1, (int) ev.start_mark.column + 1,
                             "only one YAML document is allowed");
                yaml_event_delete(&ev);
                r = -EINVAL;
                goto fail;
        }
        yaml_event_delete(&ev);
        if (root->kind == ST_NODE_NULL) {
                root->kind = ST_NODE_MAP; /* an empty document is an empty config */
                free(root->value);
                root->value = NULL;
        }
done:
        yaml_parser_delete(&b.parser);
        if (d->errors > errors_before) {
                st_node_free(root);
                return -EINVAL;
        }
        *ret = root;
        return 0;
fail:
        yaml_parser_delete(&b.parser);
        if (root)
                st_node_free(root);
        else
                free((char *) b.file);
        return r;
}

int st_tree_parse_file(const char *path, st_node **ret, struct st_diag *d) {
        FILE *f = fopen(path, "re");
        if (!f) {
                int r = -errno;
                st_diag_file(d, path, 0, 0, "cannot open config: %s", strerror(-r));
                return r;
        }
        st_buf text = { 0 };
        char chunk[8192];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                if (st_buf_append(&text, chunk, n) < 0) {
                        fclose(f);
                        st_buf_free(&text);
                        return -ENOMEM;
                }
        int err = ferror(f);
        fclose(f);
        if (err) {
                st_diag_file(d, path, 0, 0, "cannot read config");
                st_buf_free(&text);
                return -EIO;
        }
        int r = st_tree_parse_string(path, text.data ? text.data : "", text.len, ret, d);
        st_buf_free(&text);
        return r;
}
