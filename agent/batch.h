/* A batch: one OTLP export request (traces, metrics or logs) and the arena that holds it.
 *
 * Ownership (the OpenTelemetry Collector's rule): consume() borrows a batch; whoever keeps
 * it after returning (a queue, the batch processor, an in-flight export) takes a reference.
 * A shared batch is read-only: a processor that mutates asks for a writable one.
 *
 * Forms. A batch holds the same data in up to three forms, built as needed:
 *   - wire:   the serialized request as received (checked, not decoded);
 *   - concat: a merged batch whose content is its parts' content, end to end — on the wire,
 *             concatenated requests are one request, so merging needs no re-encoding;
 *   - req:    the decoded protobuf-c structs, made on first st_batch_req() for readers that
 *             need structure (debug, file, processors that change data).
 * Pass-through (receive → batch → export) thus never decodes or re-encodes a span. */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "arena.h"
#include "otlp.h"

typedef struct st_batch st_batch;

enum st_pid_source {
        ST_PIDS_CLAIMED,  /* as the sender wrote them: maybe another host's */
        ST_PIDS_KERNEL,   /* the kernel's (ebpf receiver): records are kernel events */
        ST_PIDS_OBSERVED, /* rewritten to the sender the kernel names (peer.h) */
};
struct st_batch {
        atomic_uint refs;
        enum st_signal signal;
        size_t items;          /* spans, data points or log records */
        /* Decoded form: read it with st_batch_req(); write it only in a batch returned by
         * st_batch_writable() or built by the caller from st_batch_new(). */
        ProtobufCMessage *req;
        const uint8_t *wire;   /* serialized form (in arena), NULL when none or stale */
        size_t wire_len;
        bool concat;           /* content = borrowed[0..n) end to end (merged on the wire) */
        /* Whose word the resources' process.pid is (enum st_pid_source): set by the receiver
         * that observed it, kept by clones, lost when batches are merged. Not on the wire: a
         * sender cannot claim it. */
        uint8_t pid_source;
        /* The sender's IP address ("10.1.2.3", "fd00::5") when it came over TCP, "" otherwise:
         * k8sattributes associates by it. Not on the wire either. */
        char peer_ip[46];
        st_arena arena;
        st_batch **borrowed;   /* batches whose memory this one uses (merged batches) */
        size_t n_borrowed, cap_borrowed;
        size_t cap_res;        /* capacity of the request's resource-entry array (appends) */
        pthread_mutex_t lock;  /* guards building req on first read of a shared batch */
};

/* An empty request of signal s. */
int st_batch_new(enum st_signal s, st_batch **ret);
/* Decodes OTLP protobuf bytes into structs now. -EBADMSG when they are not a valid request. */
int st_batch_unpack(enum st_signal s, const uint8_t *data, size_t len, st_batch **ret);
/* Keeps OTLP protobuf bytes as they are (one copy, into the arena) after checking them and
 * counting the items; decoding waits for the first st_batch_req(). -EBADMSG when malformed. */
int st_batch_from_wire(enum st_signal s, const uint8_t *data, size_t len, st_batch **ret);
/* The same for a request that arrived in n pieces (gRPC's slices), gathered in that copy. */
int st_batch_from_wire_parts(enum st_signal s, const struct iovec *parts, size_t n, st_batch **ret);
/* The decoded request, built on first use (thread-safe); NULL only when out of memory. */
const ProtobufCMessage *st_batch_req(st_batch *b);
/* Recounts b->items after the request was changed in place. */
void st_batch_recount(st_batch *b);

st_batch *st_batch_ref(st_batch *b);
void st_batch_unref(st_batch *b); /* NULL-safe */
static inline bool st_batch_shared(const st_batch *b) {
        return atomic_load_explicit(&b->refs, memory_order_acquire) > 1 || b->n_borrowed > 0;
}

/* Deep copy into a fresh arena. */
int st_batch_clone(const st_batch *b, st_batch **ret);
/* A batch the caller may mutate (through ->req, which is set) and must unref: b itself (one
 * more reference) when nobody else can see it, else a private clone. Its wire form is dropped:
 * after a change the bytes no longer describe the structs. */
int st_batch_writable(st_batch *b, st_batch **ret);

/* Serialized size and bytes, from the cheapest form: wire bytes as they are, a merged batch's
 * parts end to end, or protobuf-c packing of the structs. */
size_t st_batch_packed_size(const st_batch *b);
size_t st_batch_pack(const st_batch *b, uint8_t *out); /* out holds st_batch_packed_size() */

/* Where an append stopped in its source, so that a large batch can be cut in pieces. */
struct st_batch_cursor {
        size_t res, scope, item;
};

/* Appends items of src from *cur on, at most max_items of them (0 = no limit), to dst,
 * sharing src's memory (dst takes a reference on src). Advances *cur; *ret_added gets the
 * number of items appended. Returns true in *ret_done when src is exhausted. A metric is
 * never cut, so one metric with more points than max_items is appended whole.
 * When src fits whole, it is appended as a part (no decoding); only a cut decodes. */
int st_batch_append(st_batch *dst, st_batch *src, struct st_batch_cursor *cur, size_t max_items,
                    size_t *ret_added, bool *ret_done);
