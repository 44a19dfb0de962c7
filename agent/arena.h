/* Arena: a bump allocator that owns every allocation of one batch.
 *
 * Protobuf-c unpacks into it (through st_arena_allocator()), processors add to it, and freeing
 * the batch frees all of it in one step. Single-threaded by design: a batch is built by one
 * thread and read-only once shared. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

struct st_arena_chunk;

typedef struct st_arena {
        struct st_arena_chunk *head;   /* newest chunk; allocations come from here */
        size_t bytes;                  /* total chunk bytes owned (what memory accounting sees) */
        size_t first_chunk;            /* size of the first chunk to allocate */
        ProtobufCAllocator pb;         /* protobuf-c view of this arena */
} st_arena;

void st_arena_init(st_arena *a);
/* The first chunk will hold about size_hint bytes: small batches stay small. */
void st_arena_init_sized(st_arena *a, size_t size_hint);
void st_arena_reset(st_arena *a);  /* frees every chunk; the arena is reusable afterwards */

/* Returns 16-byte aligned memory, or NULL when out of memory. */
void *st_arena_alloc(st_arena *a, size_t n);
void *st_arena_zalloc(st_arena *a, size_t n);
char *st_arena_strdup(st_arena *a, const char *s);
void *st_arena_memdup(st_arena *a, const void *p, size_t n);

static inline ProtobufCAllocator *st_arena_allocator(st_arena *a) { return &a->pb; }

/* Bytes held by all arenas in the process (for the memory limiter and self-telemetry). */
uint64_t st_arena_total_bytes(void);
