/* Fuzz target: OTLP protobuf requests in their wire form (st_batch_from_wire).
 *
 * Input: one byte choosing the signal (byte % 3), then the request bytes. The wire check is
 * differential against protobuf-c: whatever it accepts, protobuf-c must unpack, the item count
 * must equal the decoded count, the lazy decode must succeed and the bytes must be sent on
 * unchanged. It may be stricter than protobuf-c, never looser. Any mismatch abort()s. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "otlp.h"
#include "wire.h"

#define CHECK(cond, ...)                                                                                    \
        do {                                                                                                \
                if (!(cond)) {                                                                              \
                        fprintf(stderr, "fuzz_wire: %s:%d: %s: ", __FILE__, __LINE__, #cond);               \
                        fprintf(stderr, __VA_ARGS__);                                                       \
                        fputc('\n', stderr);                                                                \
                        abort();                                                                            \
                }                                                                                           \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        enum st_signal s = (enum st_signal) (data[0] % ST_SIGNAL_COUNT);
        data++, size--;
        const ProtobufCMessageDescriptor *desc = st_signals[s].req;

        ProtobufCMessage *ref = protobuf_c_message_unpack(desc, NULL, size, data);
        st_batch *b = NULL;
        int r = st_batch_from_wire(s, data, size, &b);
        if (r < 0) {
                CHECK(r == -EBADMSG, "st_batch_from_wire: %d", r);
                protobuf_c_message_free_unpacked(ref, NULL);
                return 0;
        }
        CHECK(ref, "%s: wire check accepted %zu bytes that protobuf-c refuses", st_signal_name(s), size);
        size_t want = st_request_items(s, ref);
        CHECK(b->items == want, "%s: wire counts %zu items, protobuf-c decodes %zu", st_signal_name(s), b->items, want);

        const ProtobufCMessage *m = st_batch_req(b);
        CHECK(m, "st_batch_req failed on checked bytes");
        CHECK(st_request_items(s, m) == b->items, "decoded %zu items, wire counted %zu", st_request_items(s, m), b->items);

        /* Pass-through: the bytes go out exactly as they came in. */
        size_t n = st_batch_packed_size(b);
        CHECK(n == size, "packed size %zu, input %zu", n, size);
        uint8_t *out = malloc(n ? n : 1);
        CHECK(out, "oom");
        CHECK(st_batch_pack(b, out) == n, "st_batch_pack size");
        CHECK(memcmp(out, data, n) == 0, "st_batch_pack changed the bytes");
        free(out);

        /* The canonical encoding of what was decoded passes the check too, with the same count
         * (being stricter than protobuf-c must never refuse what protobuf-c writes). */
        size_t cn = protobuf_c_message_get_packed_size(ref);
        uint8_t *canon = malloc(cn ? cn : 1);
        CHECK(canon, "oom");
        CHECK(protobuf_c_message_pack(ref, canon) == cn, "protobuf-c pack size");
        CHECK(st_wire_check(desc, canon, cn) == 0, "wire check refuses protobuf-c's own encoding (%zu bytes)", cn);
        CHECK(st_wire_items(s, canon, cn) == want, "re-encoded: wire counts %zu, decoded %zu", st_wire_items(s, canon, cn), want);
        free(canon);

        protobuf_c_message_free_unpacked(ref, NULL);
        st_batch_unref(b);
        return 0;
}
