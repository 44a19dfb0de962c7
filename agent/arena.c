#include "arena.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_MIN_CHUNK 1024u
#define ARENA_DEFAULT_CHUNK (16u * 1024u)
#define ARENA_ALIGN 16u

struct st_arena_chunk {
        struct st_arena_chunk *next;
        size_t size;  /* usable bytes after the header */
        size_t used;
        _Alignas(16) unsigned char data[];
};

static _Atomic uint64_t total_bytes;

static void *pb_alloc(void *data, size_t n) { return st_arena_alloc(data, n); }
static void pb_free(void *data, void *p) { (void) data; (void) p; /* freed with the arena */ }

void st_arena_init_sized(st_arena *a, size_t size_hint) {
        if (size_hint < ARENA_MIN_CHUNK)
                size_hint = ARENA_MIN_CHUNK;
        if (size_hint > 1u << 20)
                size_hint = 1u << 20;
        *a = (st_arena) { .first_chunk = size_hint, .pb = { .alloc = pb_alloc, .free = pb_free, .allocator_data = a } };
}

void st_arena_init(st_arena *a) { st_arena_init_sized(a, ARENA_DEFAULT_CHUNK); }

void st_arena_reset(st_arena *a) {
        struct st_arena_chunk *c = a->head;
        while (c) {
                struct st_arena_chunk *next = c->next;
                free(c);
                c = next;
        }
        atomic_fetch_sub_explicit(&total_bytes, a->bytes, memory_order_relaxed);
        a->head = NULL;
        a->bytes = 0;
        if (!a->first_chunk)
                a->first_chunk = ARENA_DEFAULT_CHUNK;
        a->pb.allocator_data = a; /* the struct may have moved since init */
}

void *st_arena_alloc(st_arena *a, size_t n) {
        struct st_arena_chunk *c = a->head;
        size_t need = (n + ARENA_ALIGN - 1) & ~(size_t) (ARENA_ALIGN - 1);
        if (need < n)
                return NULL;
        if (!c || c->size - c->used < need) {
                /* Grow geometrically so that a large batch needs few chunks. */
                size_t size = c ? c->size * 2 : a->first_chunk;
                if (size > 1u << 20)
                        size = 1u << 20;
                if (size < need)
                        size = need;
                struct st_arena_chunk *nc = malloc(sizeof(*nc) + size);
                if (!nc)
                        return NULL;
                nc->size = size;
                nc->used = 0;
                if (c && need > c->size - c->used && size == need && c->size - c->used > ARENA_DEFAULT_CHUNK / 4) {
                        /* An oversize block: keep the current chunk as head, it still has room. */
                        nc->next = c->next;
                        c->next = nc;
                        nc->used = need;
                } else {
                        nc->next = c;
                        a->head = nc;
                        nc->used = need;
                }
                a->bytes += sizeof(*nc) + size;
                atomic_fetch_add_explicit(&total_bytes, sizeof(*nc) + size, memory_order_relaxed);
                return nc->data;
        }
        void *p = c->data + c->used;
        c->used += need;
        return p;
}

void *st_arena_zalloc(st_arena *a, size_t n) {
        void *p = st_arena_alloc(a, n);
        if (p)
                memset(p, 0, n);
        return p;
}

void *st_arena_memdup(st_arena *a, const void *p, size_t n) {
        void *q = st_arena_alloc(a, n ? n : 1);
        if (q && n)
                memcpy(q, p, n);
        return q;
}

char *st_arena_strdup(st_arena *a, const char *s) {
        return st_arena_memdup(a, s, strlen(s) + 1);
}

uint64_t st_arena_total_bytes(void) {
        return atomic_load_explicit(&total_bytes, memory_order_relaxed);
}
