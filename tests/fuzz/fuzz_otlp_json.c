/* Fuzz target: OTLP/JSON decoding (st_otlp_json_decode), as the OTLP/HTTP receiver does it.
 *
 * Input: one byte choosing the signal (byte % 3) and pretty printing (bit 2), then the JSON.
 * Whatever decodes must encode, decode again to a message that packs to the same protobuf
 * bytes, encode to the same text, and pack to bytes the wire check accepts with the same item
 * count. A refusal must say why. Any mismatch abort()s. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "otlp.h"
#include "otlp_json.h"
#include "wire.h"

#define CHECK(cond, ...)                                                                                    \
        do {                                                                                                \
                if (!(cond)) {                                                                              \
                        fprintf(stderr, "fuzz_otlp_json: %s:%d: %s: ", __FILE__, __LINE__, #cond);          \
                        fprintf(stderr, __VA_ARGS__);                                                       \
                        fputc('\n', stderr);                                                                \
                        abort();                                                                            \
                }                                                                                           \
        } while (0)

static uint8_t *pack(const ProtobufCMessage *m, size_t *ret_len) {
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *p = malloc(n ? n : 1);
        CHECK(p, "oom");
        CHECK(protobuf_c_message_pack(m, p) == n, "protobuf-c pack size");
        *ret_len = n;
        return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        enum st_signal s = (enum st_signal) (data[0] % ST_SIGNAL_COUNT);
        bool pretty = data[0] & 4;
        const char *json = (const char *) data + 1;
        size_t len = size - 1;
        const ProtobufCMessageDescriptor *desc = st_signals[s].req;
        st_arena a;
        st_arena_init(&a);
        char err[512];
        ProtobufCMessage *m = NULL, *m2 = NULL;

        int r = st_otlp_json_decode(desc, json, len, st_arena_allocator(&a), &m, err, sizeof(err));
        if (r < 0) {
                CHECK(r == -EBADMSG, "decode: %d", r);
                CHECK(err[0], "refused without a message");
                CHECK(strlen(err) < sizeof(err), "message not terminated");
                st_arena_reset(&a);
                return 0;
        }
        CHECK(m && m->descriptor == desc, "decode result");

        st_buf t1 = { 0 }, t2 = { 0 };
        r = st_otlp_json_encode(m, &t1, pretty);
        CHECK(r >= 0, "encode of a decoded message: %d", r);
        r = st_otlp_json_decode(desc, t1.data, t1.len, st_arena_allocator(&a), &m2, err, sizeof(err));
        CHECK(r >= 0, "own output refused: %s\n--- input\n%.*s\n--- output\n%.*s", err, (int) len, json, (int) t1.len, t1.data);

        size_t n1, n2;
        uint8_t *p1 = pack(m, &n1), *p2 = pack(m2, &n2);
        CHECK(n1 == n2 && memcmp(p1, p2, n1) == 0,
              "round trip changed the message (%zu vs %zu bytes)\n--- input\n%.*s\n--- encoded\n%.*s", n1, n2, (int) len, json,
              (int) t1.len, t1.data);
        r = st_otlp_json_encode(m2, &t2, pretty);
        CHECK(r >= 0, "second encode: %d", r);
        CHECK(t1.len == t2.len && memcmp(t1.data, t2.data, t1.len) == 0, "encoding not stable\n--- 1\n%.*s\n--- 2\n%.*s",
              (int) t1.len, t1.data, (int) t2.len, t2.data);

        /* What the JSON path accepts, the protobuf pass-through path accepts too. */
        CHECK(st_wire_check(desc, p1, n1) == 0, "wire check refuses the packed JSON request");
        CHECK(st_wire_items(s, p1, n1) == st_request_items(s, m), "items: wire %zu, decoded %zu", st_wire_items(s, p1, n1),
              st_request_items(s, m));

        free(p1);
        free(p2);
        st_buf_free(&t1);
        st_buf_free(&t2);
        st_arena_reset(&a);
        return 0;
}
