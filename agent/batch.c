#include "batch.h"

#include <errno.h>

#include "wire.h"
#include <stdlib.h>
#include <string.h>

static st_batch *batch_alloc(enum st_signal s, size_t size_hint) {
        st_batch *b = calloc(1, sizeof(*b));
        if (!b)
                return NULL;
        atomic_init(&b->refs, 1);
        b->signal = s;
        st_arena_init_sized(&b->arena, size_hint);
        pthread_mutex_init(&b->lock, NULL);
        return b;
}

int st_batch_new(enum st_signal s, st_batch **ret) {
        st_batch *b = batch_alloc(s, 16 * 1024);
        if (!b)
                return -ENOMEM;
        const ProtobufCMessageDescriptor *d = st_signals[s].req;
        ProtobufCMessage *m = st_arena_alloc(&b->arena, d->sizeof_message);
        if (!m) {
                st_batch_unref(b);
                return -ENOMEM;
        }
        protobuf_c_message_init(d, m);
        b->req = m;
        *ret = b;
        return 0;
}

int st_batch_unpack(enum st_signal s, const uint8_t *data, size_t len, st_batch **ret) {
        /* Unpacked structs take about twice the wire size: size the first chunk for that so a
         * batch of one span holds ~1 KiB, not a default chunk (the batch processor keeps
         * thousands of them alive until it flushes). */
        st_batch *b = batch_alloc(s, len * 2 + 512);
        if (!b)
                return -ENOMEM;
        b->req = protobuf_c_message_unpack(st_signals[s].req, st_arena_allocator(&b->arena), len, data);
        if (!b->req) {
                st_batch_unref(b);
                return -EBADMSG;
        }
        b->cap_res = st_req_n(s, b->req);
        st_batch_recount(b);
        *ret = b;
        return 0;
}

int st_batch_from_wire_parts(enum st_signal s, const struct iovec *parts, size_t n, st_batch **ret) {
        size_t len = 0;
        for (size_t i = 0; i < n; i++)
                len += parts[i].iov_len;
        /* The copy is sized exactly; decoding later (if ever) grows the arena as needed. The
         * parts are gathered straight into it, and checked there: one copy in all. */
        st_batch *b = batch_alloc(s, len + 64);
        if (!b)
                return -ENOMEM;
        uint8_t *wire = st_arena_alloc(&b->arena, len ? len : 1);
        if (!wire) {
                st_batch_unref(b);
                return -ENOMEM;
        }
        for (size_t i = 0, at = 0; i < n; at += parts[i].iov_len, i++)
                if (parts[i].iov_len)
                        memcpy(wire + at, parts[i].iov_base, parts[i].iov_len);
        int r = st_wire_check(st_signals[s].req, wire, len);
        if (r < 0) {
                st_batch_unref(b);
                return r;
        }
        b->wire = wire;
        b->wire_len = len;
        b->items = st_wire_items(s, wire, len);
        *ret = b;
        return 0;
}

int st_batch_from_wire(enum st_signal s, const uint8_t *data, size_t len, st_batch **ret) {
        struct iovec part = { .iov_base = (void *) data, .iov_len = len };
        return st_batch_from_wire_parts(s, &part, 1, ret);
}

static int push_ptr(st_batch *dst, void ***v, size_t *n, size_t *cap, void *p);

/* Builds b->req from its other form. Called with b->lock held. */
static int materialize(st_batch *b) {
        const struct st_signal_layout *L = &st_signals[b->signal];
        if (b->wire) {
                b->req = protobuf_c_message_unpack(L->req, st_arena_allocator(&b->arena), b->wire_len, b->wire);
                if (!b->req)
                        return -ENOMEM; /* the bytes were checked on the way in */
                b->cap_res = st_req_n(b->signal, b->req);
                return 0;
        }
        if (!b->concat)
                return -EINVAL;
        /* A merged batch: its parts' resource entries, in order, shared (not copied). */
        ProtobufCMessage *m = st_arena_alloc(&b->arena, L->req->sizeof_message);
        if (!m)
                return -ENOMEM;
        protobuf_c_message_init(L->req, m);
        size_t cap = 0;
        for (size_t i = 0; i < b->n_borrowed; i++) {
                const ProtobufCMessage *pr = st_batch_req(b->borrowed[i]);
                if (!pr)
                        return -ENOMEM;
                for (size_t j = 0; j < st_req_n(b->signal, pr); j++) {
                        int r = push_ptr(b, &ST_FIELD(m, L->req_v, void **), &ST_FIELD(m, L->req_n, size_t), &cap,
                                         st_req_v(b->signal, pr)[j]);
                        if (r < 0)
                                return r;
                }
        }
        b->cap_res = cap;
        b->req = m;
        return 0;
}

const ProtobufCMessage *st_batch_req(st_batch *b) {
        pthread_mutex_lock(&b->lock);
        if (!b->req && materialize(b) < 0)
                b->req = NULL;
        ProtobufCMessage *m = b->req;
        pthread_mutex_unlock(&b->lock);
        return m;
}

void st_batch_recount(st_batch *b) {
        b->items = st_request_items(b->signal, b->req);
}

st_batch *st_batch_ref(st_batch *b) {
        atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
        return b;
}

void st_batch_unref(st_batch *b) {
        if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
                return;
        for (size_t i = 0; i < b->n_borrowed; i++)
                st_batch_unref(b->borrowed[i]);
        free(b->borrowed);
        st_arena_reset(&b->arena);
        pthread_mutex_destroy(&b->lock);
        free(b);
}

size_t st_batch_packed_size(const st_batch *b) {
        if (b->wire)
                return b->wire_len;
        if (b->concat) {
                size_t n = 0;
                for (size_t i = 0; i < b->n_borrowed; i++)
                        n += st_batch_packed_size(b->borrowed[i]);
                return n;
        }
        return protobuf_c_message_get_packed_size(b->req);
}

size_t st_batch_pack(const st_batch *b, uint8_t *out) {
        if (b->wire) {
                memcpy(out, b->wire, b->wire_len);
                return b->wire_len;
        }
        if (b->concat) {
                size_t n = 0;
                for (size_t i = 0; i < b->n_borrowed; i++)
                        n += st_batch_pack(b->borrowed[i], out + n);
                return n;
        }
        return protobuf_c_message_pack(b->req, out);
}

int st_batch_clone(const st_batch *b, st_batch **ret) {
        size_t n = st_batch_packed_size(b);
        uint8_t *tmp = malloc(n ? n : 1);
        if (!tmp)
                return -ENOMEM;
        st_batch_pack(b, tmp);
        int r = st_batch_unpack(b->signal, tmp, n, ret);
        free(tmp);
        if (r >= 0) {
                (*ret)->pid_source = b->pid_source;
                memcpy((*ret)->peer_ip, b->peer_ip, sizeof(b->peer_ip));
        }
        return r == -EBADMSG ? -EIO : r; /* we packed it ourselves: failing to read it back is a bug */
}

int st_batch_writable(st_batch *b, st_batch **ret) {
        if (!st_batch_shared(b)) {
                if (!st_batch_req(b))
                        return -ENOMEM;
                b->wire = NULL; /* the caller is about to change the structs */
                b->wire_len = 0;
                *ret = st_batch_ref(b);
                return 0;
        }
        return st_batch_clone(b, ret);
}

/* A shallow copy of a message struct in dst's arena. */
static void *shallow_copy(st_batch *dst, const ProtobufCMessageDescriptor *d, const void *m) {
        return st_arena_memdup(&dst->arena, m, d->sizeof_message);
}

static int push_ptr(st_batch *dst, void ***v, size_t *n, size_t *cap, void *p) {
        if (*n == *cap) {
                size_t ncap = *cap ? *cap * 2 : 4;
                void **nv = st_arena_alloc(&dst->arena, ncap * sizeof(void *));
                if (!nv)
                        return -ENOMEM;
                if (*n)
                        memcpy(nv, *v, *n * sizeof(void *));
                *v = nv;
                *cap = ncap;
        }
        (*v)[(*n)++] = p;
        return 0;
}

static int keep_borrowed(st_batch *dst, st_batch *src) {
        if (dst->n_borrowed && dst->borrowed[dst->n_borrowed - 1] == src)
                return 0;
        if (dst->n_borrowed == dst->cap_borrowed) {
                size_t ncap = dst->cap_borrowed ? dst->cap_borrowed * 2 : 8;
                st_batch **nb = realloc(dst->borrowed, ncap * sizeof(*nb));
                if (!nb)
                        return -ENOMEM;
                dst->borrowed = nb;
                dst->cap_borrowed = ncap;
        }
        dst->borrowed[dst->n_borrowed++] = st_batch_ref(src);
        return 0;
}

int st_batch_append(st_batch *dst, st_batch *src, struct st_batch_cursor *cur, size_t max_items,
                    size_t *ret_added, bool *ret_done) {
        enum st_signal s = src->signal;
        const struct st_signal_layout *L = &st_signals[s];
        size_t added = 0;
        int r;

        if (dst->signal != s)
                return -EINVAL;

        /* src fits whole and dst is a merge of whole parts (or empty): append it as a part. */
        bool dst_empty = !dst->concat && !dst->wire && dst->n_borrowed == 0 &&
                         (!dst->req || st_req_n(s, dst->req) == 0);
        if (cur->res == 0 && cur->scope == 0 && cur->item == 0 && (dst->concat || dst_empty) &&
            (max_items == 0 || dst->items + src->items <= max_items || (dst->items == 0 && src->items == 0))) {
                r = keep_borrowed(dst, src);
                if (r < 0)
                        return r;
                dst->concat = true;
                dst->req = NULL; /* any decoded form no longer covers every part */
                dst->items += src->items;
                cur->res = SIZE_MAX;
                *ret_added = src->items;
                *ret_done = true;
                return 0;
        }
        if (cur->res == SIZE_MAX) { /* appended whole before */
                *ret_added = 0;
                *ret_done = true;
                return 0;
        }

        /* A cut: work on structs. dst stops being a plain merge of parts from here on. */
        const ProtobufCMessage *src_req = st_batch_req(src);
        if (!src_req || (!dst->req && !st_batch_req(dst)))
                return -ENOMEM;
        dst->concat = false;
        dst->wire = NULL;
        r = keep_borrowed(dst, src);
        if (r < 0)
                return r;

        while (cur->res < st_req_n(s, src_req)) {
                void *res = st_req_v(s, src_req)[cur->res];
                size_t n_scopes = st_res_n(s, res);
                void *nres = NULL;
                void **scopes = NULL;
                size_t n_nscopes = 0, cap_nscopes = 0;

                while (cur->scope < n_scopes) {
                        void *sc = st_res_v(s, res)[cur->scope];
                        size_t n_items = st_scope_n(s, sc), take = 0, take_points = 0;
                        size_t room = max_items ? max_items - (dst->items + added) : SIZE_MAX;

                        if (max_items && dst->items + added >= max_items)
                                break;
                        if (s == ST_METRICS) {
                                while (cur->item + take < n_items) {
                                        size_t p = st_metric_points(st_scope_v(s, sc)[cur->item + take]);
                                        if (take_points + p > room && !(dst->items + added + take_points == 0 && take == 0))
                                                break;
                                        take_points += p;
                                        take++;
                                }
                        } else {
                                take = n_items - cur->item < room ? n_items - cur->item : room;
                                take_points = take;
                        }
                        if (take == 0 && cur->item < n_items)
                                break; /* the next metric does not fit: flush first */

                        void *nsc = shallow_copy(dst, L->scope_entry, sc);
                        if (!nsc)
                                return -ENOMEM;
                        ST_FIELD(nsc, L->scope_n, size_t) = take;
                        ST_FIELD(nsc, L->scope_v, void **) = st_scope_v(s, sc) + cur->item;
                        r = push_ptr(dst, &scopes, &n_nscopes, &cap_nscopes, nsc);
                        if (r < 0)
                                return r;
                        added += take_points;
                        cur->item += take;
                        if (cur->item < n_items)
                                break;
                        cur->scope++;
                        cur->item = 0;
                }

                if (n_nscopes > 0) {
                        nres = shallow_copy(dst, L->resource_entry, res);
                        if (!nres)
                                return -ENOMEM;
                        ST_FIELD(nres, L->res_n, size_t) = n_nscopes;
                        ST_FIELD(nres, L->res_v, void **) = scopes;
                        r = push_ptr(dst, &ST_FIELD(dst->req, L->req_v, void **), &ST_FIELD(dst->req, L->req_n, size_t),
                                     &dst->cap_res, nres);
                        if (r < 0)
                                return r;
                }
                if (cur->scope < n_scopes)
                        break;
                cur->res++;
                cur->scope = 0;
        }

        dst->items += added;
        *ret_added = added;
        *ret_done = cur->res >= st_req_n(s, src_req);
        return 0;
}
