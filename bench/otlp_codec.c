/* otlp_codec: what decoding, batching and encoding the benchmark's spans cost on one core,
 * without gRPC.
 *
 * The pass-through path (OTLP in -> batch -> OTLP out, no processor that reads spans) only
 * checks each request against the schema and keeps its bytes (st_batch_from_wire, "check");
 * its floor is that step. A pipeline whose processors read or change spans unpacks every
 * request (st_batch_unpack), the batch processor appends requests into larger ones
 * (st_batch_append) and the exporter packs them (st_batch_pack); nothing else it does can make
 * such a span cheaper than the sum of these.
 *
 *   otlp_codec [--spans-per-request 512] [--batch 8192] [--seconds 1]
 * prints one line per step and, last, a machine-readable line:
 *   codec check_ns=X unpack_ns=X append_ns=X pack_ns=X sum_ns=X floor_spans_per_s=N
 * (per span, one core; sum and floor are those of the decoding path). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "clock.h"
#include "span_gen.h"

struct bench {
        size_t spans_per_request, batch;
        double seconds;
        uint8_t *wire;
        size_t wire_len;
};

/* Runs fn until the time is up; returns ns per span. */
static double measure(const char *what, struct bench *b, int (*fn)(struct bench *, size_t *)) {
        int64_t t0 = st_now_ns(), t;
        size_t spans = 0, n;
        do {
                if (fn(b, &n) < 0) {
                        fprintf(stderr, "codec: %s failed\n", what);
                        exit(1);
                }
                spans += n;
                t = st_now_ns();
        } while (t - t0 < (int64_t) (b->seconds * 1e9));
        double ns = (double) (t - t0) / (double) spans;
        printf("%-14s %8.1f ns/span  %10.0f spans/s on one core\n", what, ns, 1e9 / ns);
        return ns;
}

static int do_check(struct bench *b, size_t *ret) {
        st_batch *x = NULL;
        int r = st_batch_from_wire(ST_TRACES, b->wire, b->wire_len, &x);
        if (r < 0)
                return r;
        *ret = x->items;
        st_batch_unref(x);
        return 0;
}

static int do_unpack(struct bench *b, size_t *ret) {
        st_batch *x = NULL;
        int r = st_batch_unpack(ST_TRACES, b->wire, b->wire_len, &x);
        if (r < 0)
                return r;
        *ret = x->items;
        st_batch_unref(x);
        return 0;
}

/* The batch processor's work: requests appended into one batch of b->batch spans. The
 * sources are unpacked once, outside the timing; append only shares their memory. */
static st_batch **sources;
static size_t n_sources;

static int do_append(struct bench *b, size_t *ret) {
        st_batch *dst = NULL;
        size_t total = 0;
        int r = st_batch_new(ST_TRACES, &dst);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_sources && r >= 0; i++) {
                struct st_batch_cursor cur = { 0 };
                size_t added = 0;
                bool done = false;
                r = st_batch_append(dst, sources[i], &cur, 0, &added, &done);
                total += added;
        }
        st_batch_unref(dst);
        *ret = total;
        return r < 0 ? r : 0;
}

static st_batch *big; /* a batch of b->batch spans for pack */

static int do_pack(struct bench *b, size_t *ret) {
        size_t len = st_batch_packed_size(big);
        uint8_t *out = malloc(len ? len : 1);
        if (!out)
                return -ENOMEM;
        st_batch_pack(big, out);
        free(out);
        *ret = big->items;
        return 0;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "spans-per-request", required_argument, NULL, 'n' },
                { "batch", required_argument, NULL, 'b' },
                { "seconds", required_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        struct bench b = { .spans_per_request = 512, .batch = 8192, .seconds = 1 };
        uint64_t seed = 1;
        int c;

        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'n': b.spans_per_request = strtoul(optarg, NULL, 10); break;
                case 'b': b.batch = strtoul(optarg, NULL, 10); break;
                case 's': b.seconds = strtod(optarg, NULL); break;
                case 'h':
                        printf("usage: otlp_codec [--spans-per-request N] [--batch N] [--seconds S]\n");
                        return 0;
                default: return 2;
                }
        }
        if (b.spans_per_request < 1 || b.batch < 1 || !(b.seconds > 0)) {
                fprintf(stderr, "codec: --spans-per-request and --batch must be >= 1, --seconds > 0\n");
                return 2;
        }

        st_arena a;
        st_arena_init(&a);
        st_traces_req *req = spangen_request(&a, &seed, b.spans_per_request, (uint64_t) st_wall_ns());
        b.wire_len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(req);
        b.wire = malloc(b.wire_len);
        if (!b.wire)
                return 1;
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(req, b.wire);
        st_arena_reset(&a);
        printf("request: %zu spans, %zu bytes (%.0f bytes/span); batches of %zu spans\n", b.spans_per_request,
               b.wire_len, (double) b.wire_len / (double) b.spans_per_request, b.batch);

        /* The append sources, and the pack input: what the batch processor hands the exporter. */
        n_sources = (b.batch + b.spans_per_request - 1) / b.spans_per_request;
        sources = calloc(n_sources, sizeof(*sources));
        if (!sources || st_batch_new(ST_TRACES, &big) < 0)
                return 1;
        for (size_t i = 0; i < n_sources; i++) {
                struct st_batch_cursor cur = { 0 };
                size_t added = 0;
                bool done = false;
                if (st_batch_unpack(ST_TRACES, b.wire, b.wire_len, &sources[i]) < 0 ||
                    st_batch_append(big, sources[i], &cur, 0, &added, &done) < 0) {
                        fprintf(stderr, "codec: cannot build a batch\n");
                        return 1;
                }
        }

        double check = measure("check", &b, do_check);
        double unpack = measure("unpack", &b, do_unpack);
        double append = measure("append", &b, do_append);
        double pack = measure("pack", &b, do_pack);
        double sum = unpack + append + pack;
        printf("codec check_ns=%.1f unpack_ns=%.1f append_ns=%.1f pack_ns=%.1f sum_ns=%.1f floor_spans_per_s=%.0f bytes_per_span=%.0f\n",
               check, unpack, append, pack, sum, 1e9 / sum, (double) b.wire_len / (double) b.spans_per_request);
        st_batch_unref(big);
        for (size_t i = 0; i < n_sources; i++)
                st_batch_unref(sources[i]);
        free(sources);
        free(b.wire);
        return 0;
}
