/* Writes the fuzz seed corpora (tests/fuzz/corpus/) from a few hand-written OTLP/JSON requests:
 *   fuzz_wire/<signal>.bin       signal byte + packed request
 *   fuzz_otlp_json/<signal>.json signal byte + our encoding (compact, and pretty for traces);
 *                                <signal>-src.json: the hand-written JSON itself
 *   fuzz_inflate/<signal>.gz     limit (2 bytes) + gzip of the packed request; .zz is zlib
 * The config corpus is config/default.yaml and a few hand-written files, copied by hand.
 * Usage: gen_corpus CORPUS_DIR (the sub-folders must exist). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "arena.h"
#include "buf.h"
#include "otlp.h"
#include "otlp_json.h"

static const char *const requests[ST_SIGNAL_COUNT] = {
        [ST_TRACES] = "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
                "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"checkout\"}},"
                "{\"key\":\"host.cpus\",\"value\":{\"intValue\":\"8\"}}],\"droppedAttributesCount\":1},"
                "\"scopeSpans\":[{\"scope\":{\"name\":\"io.opentelemetry.http\",\"version\":\"1.2.0\","
                "\"attributes\":[{\"key\":\"k\",\"value\":{\"boolValue\":true}}]},"
                "\"spans\":[{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
                "\"parentSpanId\":\"eee19b7ec3c1b173\",\"traceState\":\"rojo=00f067aa0ba902b7\",\"flags\":257,"
                "\"name\":\"GET /items\",\"kind\":2,\"startTimeUnixNano\":\"1544712660000000000\","
                "\"endTimeUnixNano\":\"1544712661000000000\",\"attributes\":["
                "{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"200\"}},"
                "{\"key\":\"ratio\",\"value\":{\"doubleValue\":0.25}},"
                "{\"key\":\"raw\",\"value\":{\"bytesValue\":\"AAEC/w==\"}},"
                "{\"key\":\"list\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"a\"},{\"intValue\":\"-1\"}]}}},"
                "{\"key\":\"map\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"x\",\"value\":{\"boolValue\":false}}]}}}],"
                "\"droppedAttributesCount\":2,"
                "\"events\":[{\"timeUnixNano\":\"1544712660500000000\",\"name\":\"exception\",\"attributes\":["
                "{\"key\":\"exception.message\",\"value\":{\"stringValue\":\"boom \\u00e9\\n\"}}]}],"
                "\"links\":[{\"traceId\":\"5b8efff798038103d269b633813fc60d\",\"spanId\":\"eee19b7ec3c1b175\","
                "\"traceState\":\"\",\"flags\":1}],"
                "\"status\":{\"message\":\"not found\",\"code\":2}},"
                "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b173\",\"name\":\"root\","
                "\"kind\":\"SPAN_KIND_CLIENT\",\"startTimeUnixNano\":1544712659000000000,\"endTimeUnixNano\":\"1544712662000000000\"}]}],"
                "\"schemaUrl\":\"https://opentelemetry.io/schemas/1.21.0\"}]}",
        [ST_METRICS] = "{\"resourceMetrics\":[{\"resource\":{\"attributes\":["
                "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"checkout\"}}]},"
                "\"scopeMetrics\":[{\"scope\":{\"name\":\"meter\"},\"metrics\":["
                "{\"name\":\"temp\",\"unit\":\"Cel\",\"description\":\"d\",\"gauge\":{\"dataPoints\":["
                "{\"timeUnixNano\":\"1544712660300000000\",\"asDouble\":21.5,\"attributes\":["
                "{\"key\":\"room\",\"value\":{\"stringValue\":\"a\"}}]},"
                "{\"timeUnixNano\":\"1544712660300000000\",\"asInt\":\"-3\",\"flags\":1}]}},"
                "{\"name\":\"requests\",\"unit\":\"1\",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":true,"
                "\"dataPoints\":[{\"startTimeUnixNano\":\"1544712660000000000\",\"timeUnixNano\":\"1544712660300000000\","
                "\"asInt\":\"42\",\"exemplars\":[{\"timeUnixNano\":\"1544712660100000000\",\"asDouble\":1,"
                "\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
                "\"filteredAttributes\":[{\"key\":\"u\",\"value\":{\"stringValue\":\"v\"}}]}]}]}},"
                "{\"name\":\"latency\",\"unit\":\"ms\",\"histogram\":{\"aggregationTemporality\":1,\"dataPoints\":["
                "{\"startTimeUnixNano\":\"1544712660000000000\",\"timeUnixNano\":\"1544712660300000000\",\"count\":\"5\","
                "\"sum\":12.5,\"min\":0,\"max\":9.75,\"bucketCounts\":[\"1\",\"3\",\"1\"],\"explicitBounds\":[1,5]}]}},"
                "{\"name\":\"size\",\"exponentialHistogram\":{\"aggregationTemporality\":2,\"dataPoints\":["
                "{\"timeUnixNano\":\"1544712660300000000\",\"count\":\"6\",\"sum\":-3.5,\"scale\":3,\"zeroCount\":\"1\","
                "\"zeroThreshold\":1e-9,\"positive\":{\"offset\":-2,\"bucketCounts\":[\"1\",\"2\"]},"
                "\"negative\":{\"offset\":1,\"bucketCounts\":[\"2\"]},\"min\":-2,\"max\":3}]}},"
                "{\"name\":\"rtt\",\"summary\":{\"dataPoints\":[{\"timeUnixNano\":\"1544712660300000000\",\"count\":\"3\","
                "\"sum\":7,\"quantileValues\":[{\"quantile\":0.5,\"value\":2},{\"quantile\":0.99,\"value\":\"NaN\"}]}]}}]}]}]}",
        [ST_LOGS] = "{\"resourceLogs\":[{\"resource\":{\"attributes\":["
                "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"checkout\"}}]},"
                "\"scopeLogs\":[{\"scope\":{\"name\":\"logger\"},\"logRecords\":["
                "{\"timeUnixNano\":\"1544712660300000000\",\"observedTimeUnixNano\":\"1544712660300000001\","
                "\"severityNumber\":10,\"severityText\":\"Information\",\"body\":{\"stringValue\":\"Example log record\"},"
                "\"attributes\":[{\"key\":\"string.attribute\",\"value\":{\"stringValue\":\"some string\"}},"
                "{\"key\":\"double.attribute\",\"value\":{\"doubleValue\":637.704}}],\"droppedAttributesCount\":1,"
                "\"flags\":1,\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\"},"
                "{\"severityNumber\":\"SEVERITY_NUMBER_ERROR\",\"body\":{\"kvlistValue\":{\"values\":["
                "{\"key\":\"msg\",\"value\":{\"stringValue\":\"failed\"}},{\"key\":\"n\",\"value\":{\"intValue\":3}}]}}}]}]}]}",
};

static int write_file(const char *dir, const char *name, const void *prefix, size_t np, const void *p, size_t n) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(prefix, 1, np, f) != np || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
                perror(path);
                return -1;
        }
        return 0;
}

/* windowBits 31: gzip wrapper; 15: zlib ("Content-Encoding: deflate"). */
static int compress_to(int window_bits, const uint8_t *in, size_t n, uint8_t **ret, size_t *ret_len) {
        z_stream z = { 0 };
        if (deflateInit2(&z, 9, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
                return -1;
        size_t cap = deflateBound(&z, n);
        uint8_t *out = malloc(cap);
        z.next_in = (Bytef *) in;
        z.avail_in = (uInt) n;
        z.next_out = out;
        z.avail_out = (uInt) cap;
        if (!out || deflate(&z, Z_FINISH) != Z_STREAM_END) {
                deflateEnd(&z);
                free(out);
                return -1;
        }
        *ret_len = z.total_out;
        deflateEnd(&z);
        *ret = out;
        return 0;
}

int main(int argc, char **argv) {
        if (argc != 2) {
                fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
                return 2;
        }
        char dir[3][4096];
        snprintf(dir[0], sizeof(dir[0]), "%s/fuzz_wire", argv[1]);
        snprintf(dir[1], sizeof(dir[1]), "%s/fuzz_otlp_json", argv[1]);
        snprintf(dir[2], sizeof(dir[2]), "%s/fuzz_inflate", argv[1]);
        for (int s = 0; s < ST_SIGNAL_COUNT; s++) {
                const char *name = st_signal_name((enum st_signal) s);
                st_arena a;
                st_arena_init(&a);
                ProtobufCMessage *m;
                char err[256], fname[64];
                if (st_otlp_json_decode(st_signals[s].req, requests[s], strlen(requests[s]), st_arena_allocator(&a), &m, err,
                                        sizeof(err)) < 0) {
                        fprintf(stderr, "%s: %s\n", name, err);
                        return 1;
                }
                size_t n = protobuf_c_message_get_packed_size(m);
                uint8_t *bin = malloc(n), sig = (uint8_t) s, *z;
                size_t zn;
                protobuf_c_message_pack(m, bin);
                snprintf(fname, sizeof(fname), "%s.bin", name);
                if (write_file(dir[0], fname, &sig, 1, bin, n) < 0)
                        return 1;

                uint8_t sel = (uint8_t) s;
                snprintf(fname, sizeof(fname), "%s-src.json", name); /* as written above: names, numbers */
                if (write_file(dir[1], fname, &sel, 1, requests[s], strlen(requests[s])) < 0)
                        return 1;
                st_buf j = { 0 };
                for (int pretty = 0; pretty <= (s == ST_TRACES); pretty++) {
                        sel = (uint8_t) (s | (pretty ? 4 : 0));
                        st_buf_clear(&j);
                        st_otlp_json_encode(m, &j, pretty);
                        snprintf(fname, sizeof(fname), "%s%s.json", name, pretty ? "-pretty" : "");
                        if (write_file(dir[1], fname, &sel, 1, j.data, j.len) < 0)
                                return 1;
                }
                st_buf_free(&j);

                uint8_t limit[2] = { 0x01, 0x00 }; /* 4 KiB */
                for (int wb = 15; wb <= 31; wb += 16) {
                        if (compress_to(wb, bin, n, &z, &zn) < 0)
                                return 1;
                        snprintf(fname, sizeof(fname), "%s.%s", name, wb == 31 ? "gz" : "zz");
                        if (write_file(dir[2], fname, limit, 2, z, zn) < 0)
                                return 1;
                        free(z);
                }
                free(bin);
                st_arena_reset(&a);
        }
        return 0;
}
