/* Attribute actions (insert, update, upsert, delete) on OTLP attribute lists, shared by the
 * resource processor (Resource attributes) and the attributes processor (span, log record and
 * data point attributes) — the Collector's `attributes:` action list.
 *
 * Config, one list element:  { key: k, value: v, from_attribute: other, action: upsert }
 *   insert  adds k when it is absent;      update  replaces k when it is present;
 *   upsert  does either;                   delete  removes every k.
 * value is a typed YAML scalar; from_attribute copies the value of another attribute of the
 * same list instead (the action is skipped when that attribute is absent).
 *
 * Actions run in order on a writable batch; everything new lives in the batch's arena. Nothing
 * is changed in place except the attribute pointer arrays: a KeyValue or AnyValue is never
 * written once it is in a list, so lists may share them. */
#pragma once
#include <stddef.h>

#include "arena.h"
#include "config_map.h"
#include "otlp.h"

enum st_attr_action_kind { ST_ATTR_INSERT, ST_ATTR_UPDATE, ST_ATTR_UPSERT, ST_ATTR_DELETE };

/* One element of an `attributes:` list. */
struct st_attr_action_cfg {
        char *key;
        struct st_cfg_value value;
        char *from_attribute;
        int action; /* enum st_attr_action_kind */
};
/* The config map of one element: use as .sub of an ST_CFG_LIST with
 * .elem_size = sizeof(struct st_attr_action_cfg). */
extern const struct st_cfg_field st_attr_action_fields[];

/* Checks what the config map cannot: a key, a value or from_attribute (not both) where the
 * action needs one, at least one action. path is the list's key ("attributes"). */
int st_attr_actions_validate(const struct st_list *actions, const char *path, struct st_cfg_ctx *ctx);

/* The actions of one processor instance; points into the config, which outlives it. */
struct st_attr_actions {
        const struct st_attr_action_cfg *v;
        size_t n;
        size_t n_adding; /* insert/upsert actions: room reserved when a list must grow */
};
void st_attr_actions_init(struct st_attr_actions *a, const struct st_list *actions);

/* Applying the actions to the lists of one batch. Keys and string values are copied into the
 * arena once per batch, not once per list. */
struct st_attr_run {
        const struct st_attr_actions *acts;
        st_arena *arena;
        char **keys, **strs; /* per action, filled on first use */
};
int st_attr_run_init(struct st_attr_run *run, const struct st_attr_actions *acts, st_arena *arena);
/* Applies every action to one attribute list (*v may be NULL when *n is 0). -ENOMEM. */
int st_attr_apply(struct st_attr_run *run, st_key_value ***v, size_t *n);
