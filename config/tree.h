/* YAML → a tree of nodes that remember where they came from (file:line:col), with
 * ${env:NAME}, ${NAME} and ${NAME:-default} substituted in scalars ($$ is a literal $). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

enum st_node_kind { ST_NODE_NULL, ST_NODE_SCALAR, ST_NODE_MAP, ST_NODE_SEQ };

typedef struct st_node st_node;
struct st_node {
        enum st_node_kind kind;
        const char *file; /* owned by the root */
        int line, col;    /* 1-based */
        char *value;      /* scalars, after substitution */
        bool quoted;      /* a quoted scalar is always a string */
        size_t n;
        st_node **keys;   /* maps: the key scalars */
        st_node **items;  /* map values, sequence items */
};

/* Diagnostics: one "file:line:col: message" line per problem. */
struct st_diag {
        st_buf text;
        size_t errors;
};
void st_diag_at(struct st_diag *d, const st_node *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void st_diag_file(struct st_diag *d, const char *file, int line, int col, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
void st_diag_free(struct st_diag *d);

/* Parses YAML. Problems go to d; returns -EINVAL when there was any, -errno for I/O. */
int st_tree_parse_file(const char *path, st_node **ret, struct st_diag *d);
int st_tree_parse_string(const char *name, const char *text, size_t len, st_node **ret, struct st_diag *d);
void st_node_free(st_node *n); /* NULL-safe; frees the whole tree from its root */

const st_node *st_node_get(const st_node *map, const char *key); /* NULL if absent or not a map */
const char *st_node_kind_name(enum st_node_kind k);
