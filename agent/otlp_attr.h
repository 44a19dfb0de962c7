/* OTLP attributes (KeyValue) built in a batch's arena, and looked up. Keys are borrowed: pass
 * a string that outlives the batch (a literal), or copy it into the arena first. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "otlp.h"

/* A string attribute; the value is copied into the arena. NULL when out of memory (or no s). */
st_key_value *st_kv_str(st_arena *a, const char *key, const char *s);
/* A string attribute whose value outlives every batch (a literal): not copied. */
st_key_value *st_kv_static(st_arena *a, const char *key, const char *s);
st_key_value *st_kv_int(st_arena *a, const char *key, int64_t i);

/* The value of the first attribute named key, or NULL. */
const st_any_value *st_kv_find(st_key_value *const *v, size_t n, const char *key);
/* The int value of the attribute named key; false when absent or not an int. */
bool st_kv_int_of(st_key_value *const *v, size_t n, const char *key, int64_t *ret);
