/* otlp_sink: an OTLP/gRPC server that counts what it receives and answers OK.
 *
 * The far end of the pass-through benchmark: it takes the trace, metrics and logs Export
 * calls, decodes each request (protobuf-c into an arena by default; --decode count only walks
 * the wire format down to the spans and log records, for when the sink itself must cost
 * next to nothing), counts spans, data points and log records, and answers OK. Garbage gets
 * INVALID_ARGUMENT and is counted as bad.
 *
 * One thread loops on one completion queue with several request_registered_call outstanding
 * per method. The running totals are rewritten to --count-file every 100 ms and at exit,
 * atomically (write + rename), as one line:
 *   spans=N data_points=N log_records=N requests=N bytes=N bad_requests=N refused_requests=N
 * (requests counts every call; spans etc. only what was answered OK). --refuse-every N answers
 * every Nth call RESOURCE_EXHAUSTED without counting it, to test a client's retries.
 * SIGTERM or SIGINT stops it cleanly. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "batch.h"
#include "clock.h"
#include "otlp.h"

#define FLUSH_INTERVAL_NS (100 * ST_NS_PER_MS)

enum decode_mode { DECODE_FULL, DECODE_COUNT };

struct slot {
        struct sink *k;
        enum st_signal signal;
        bool waiting; /* request_registered_call outstanding; else an answer is being sent */
        grpc_call *call;
        gpr_timespec deadline;
        grpc_metadata_array md;
        grpc_byte_buffer *payload;
        grpc_byte_buffer *resp;
        grpc_slice status_msg;
        int cancelled;
};

struct sink {
        const char *listen, *count_file;
        enum decode_mode decode;
        int slots_per_method;
        uint64_t refuse_every; /* tests a client's retries: every Nth request is refused */
        grpc_server *server;
        grpc_completion_queue *cq;
        void *methods[ST_SIGNAL_COUNT];
        struct slot *slots;
        size_t n_slots;
        bool stopping;
        char shutdown_tag;
        uint64_t items[ST_SIGNAL_COUNT], requests, bytes, bad, refused;
        uint64_t written_requests; /* what the count file says, to skip idle rewrites */
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
        stop_signal = sig;
}

/* ---- counting ------------------------------------------------------------------------- */

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret) {
        uint64_t v = 0;
        for (int shift = 0; shift < 64 && *p < end; shift += 7) {
                uint8_t b = *(*p)++;
                v |= (uint64_t) (b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return true;
                }
        }
        return false;
}

/* Counts the items of a traces or logs request without decoding them: both are
 * request{1: resource entry{2: scope entry{2: item}}}. Walks the framing of the levels it
 * descends into and skips everything else; -EBADMSG when the framing is broken. */
static int walk(const uint8_t *p, const uint8_t *end, int depth, uint64_t *count) {
        static const uint32_t path[] = { 1, 2, 2 };
        while (p < end) {
                uint64_t key, len;
                if (!read_varint(&p, end, &key))
                        return -EBADMSG;
                switch (key & 7) {
                case 0:
                        if (!read_varint(&p, end, &len))
                                return -EBADMSG;
                        break;
                case 1:
                        if (end - p < 8)
                                return -EBADMSG;
                        p += 8;
                        break;
                case 5:
                        if (end - p < 4)
                                return -EBADMSG;
                        p += 4;
                        break;
                case 2:
                        if (!read_varint(&p, end, &len) || len > (uint64_t) (end - p))
                                return -EBADMSG;
                        if ((key >> 3) == path[depth]) {
                                if (depth == 2)
                                        (*count)++;
                                else {
                                        int r = walk(p, p + len, depth + 1, count);
                                        if (r < 0)
                                                return r;
                                }
                        }
                        p += len;
                        break;
                default:
                        return -EBADMSG;
                }
        }
        return 0;
}

static int count_items(struct sink *k, enum st_signal s, const uint8_t *data, size_t len, uint64_t *ret) {
        uint64_t n = 0;
        int r;

        /* A metric's points sit one level deeper, under one of five oneof cases: decode. */
        if (k->decode == DECODE_COUNT && s != ST_METRICS) {
                r = walk(data, data + len, 0, &n);
                if (r < 0)
                        return r;
                *ret = n;
                return 0;
        }
        st_batch *b = NULL;
        r = st_batch_unpack(s, data, len, &b);
        if (r < 0)
                return r;
        *ret = b->items;
        st_batch_unref(b);
        return 0;
}

/* ---- the server ----------------------------------------------------------------------- */

static void slot_init(struct slot *sl) {
        sl->waiting = false;
        sl->call = NULL;
        sl->payload = NULL;
        sl->resp = NULL;
        sl->status_msg = grpc_empty_slice();
        sl->cancelled = 0;
        grpc_metadata_array_init(&sl->md);
}

static void slot_reset(struct slot *sl) {
        if (sl->call)
                grpc_call_unref(sl->call);
        grpc_byte_buffer_destroy(sl->payload);
        grpc_byte_buffer_destroy(sl->resp);
        grpc_slice_unref(sl->status_msg);
        grpc_metadata_array_destroy(&sl->md);
        slot_init(sl);
}

static void slot_request(struct slot *sl) {
        struct sink *k = sl->k;
        grpc_call_error e = grpc_server_request_registered_call(k->server, k->methods[sl->signal], &sl->call,
                                                                &sl->deadline, &sl->md, &sl->payload, k->cq, k->cq, sl);
        if (e != GRPC_CALL_OK) {
                fprintf(stderr, "sink: cannot wait for calls (error %d), serving with one slot less\n", (int) e);
                slot_reset(sl);
                return;
        }
        sl->waiting = true;
}

/* Decodes and counts the request; returns the status to answer with. */
static grpc_status_code handle(struct slot *sl, char *msg, size_t msglen) {
        struct sink *k = sl->k;
        grpc_byte_buffer_reader rd;
        grpc_slice merged = grpc_empty_slice();
        const uint8_t *data = (const uint8_t *) "";
        uint64_t n = 0;
        size_t len;
        int r;

        k->requests++;
        if (k->refuse_every && k->requests % k->refuse_every == 0) {
                snprintf(msg, msglen, "refused on purpose (--refuse-every %" PRIu64 ")", k->refuse_every);
                return GRPC_STATUS_RESOURCE_EXHAUSTED;
        }
        if (!sl->payload) {
                snprintf(msg, msglen, "missing request message");
                return GRPC_STATUS_INVALID_ARGUMENT;
        }
        if (!grpc_byte_buffer_reader_init(&rd, sl->payload)) {
                snprintf(msg, msglen, "cannot decompress the request");
                return GRPC_STATUS_INVALID_ARGUMENT;
        }
        len = grpc_byte_buffer_length(rd.buffer_out);
        grpc_slice_buffer *sb = &rd.buffer_out->data.raw.slice_buffer;
        if (sb->count == 1)
                data = GRPC_SLICE_START_PTR(sb->slices[0]);
        else if (sb->count > 1) {
                merged = grpc_byte_buffer_reader_readall(&rd);
                data = GRPC_SLICE_START_PTR(merged);
        }
        r = count_items(k, sl->signal, data, len, &n);
        grpc_slice_unref(merged);
        grpc_byte_buffer_reader_destroy(&rd);
        if (r < 0) {
                snprintf(msg, msglen, "not a valid %s: %s", st_signals[sl->signal].req->short_name, strerror(-r));
                return r == -EBADMSG ? GRPC_STATUS_INVALID_ARGUMENT : GRPC_STATUS_INTERNAL;
        }
        k->items[sl->signal] += n;
        k->bytes += len;
        return GRPC_STATUS_OK;
}

static void answer(struct slot *sl) {
        char msg[256] = "";
        grpc_op ops[4];
        size_t n = 0;

        grpc_status_code code = handle(sl, msg, sizeof(msg));
        if (code == GRPC_STATUS_RESOURCE_EXHAUSTED)
                sl->k->refused++;
        else if (code != GRPC_STATUS_OK) {
                sl->k->bad++;
                if (sl->k->bad <= 10)
                        fprintf(stderr, "sink: %s\n", msg);
        }
        grpc_byte_buffer_destroy(sl->payload);
        sl->payload = NULL;

        memset(ops, 0, sizeof(ops));
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        if (code == GRPC_STATUS_OK) {
                /* An Export*ServiceResponse without partial_success is zero bytes. */
                grpc_slice empty = grpc_empty_slice();
                sl->resp = grpc_raw_byte_buffer_create(&empty, 1);
                ops[n].op = GRPC_OP_SEND_MESSAGE;
                ops[n++].data.send_message.send_message = sl->resp;
        }
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.status = code;
        if (msg[0]) {
                sl->status_msg = grpc_slice_from_copied_string(msg);
                ops[n].data.send_status_from_server.status_details = &sl->status_msg;
        }
        n++;
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n++].data.recv_close_on_server.cancelled = &sl->cancelled;

        sl->waiting = false;
        grpc_call_error e = grpc_call_start_batch(sl->call, ops, n, sl, NULL);
        if (e != GRPC_CALL_OK) {
                fprintf(stderr, "sink: cannot answer a call (error %d), dropping it\n", (int) e);
                slot_reset(sl);
                if (!sl->k->stopping)
                        slot_request(sl);
        }
}

static int write_count(struct sink *k) {
        char tmp[4096];
        FILE *f;

        if (!k->count_file)
                return 0;
        snprintf(tmp, sizeof(tmp), "%s.tmp", k->count_file);
        f = fopen(tmp, "we");
        if (!f)
                return -errno;
        fprintf(f, "spans=%" PRIu64 " data_points=%" PRIu64 " log_records=%" PRIu64 " requests=%" PRIu64 " bytes=%" PRIu64
                   " bad_requests=%" PRIu64 " refused_requests=%" PRIu64 "\n",
                k->items[ST_TRACES], k->items[ST_METRICS], k->items[ST_LOGS], k->requests, k->bytes, k->bad, k->refused);
        if (fclose(f) != 0 || rename(tmp, k->count_file) < 0) {
                int r = -errno;
                unlink(tmp);
                return r;
        }
        k->written_requests = k->requests;
        return 0;
}

static void begin_shutdown(struct sink *k) {
        k->stopping = true;
        grpc_server_shutdown_and_notify(k->server, k->cq, &k->shutdown_tag);
        /* Calls in flight are answered already or never will be: do not wait for peers. */
        grpc_server_cancel_all_calls(k->server);
}

static void serve(struct sink *k) {
        int64_t next_flush = st_now_ns() + FLUSH_INTERVAL_NS;
        bool file_ok = true;

        for (;;) {
                int64_t now = st_now_ns();
                if (stop_signal && !k->stopping)
                        begin_shutdown(k);
                if (now >= next_flush) {
                        if (k->requests != k->written_requests) {
                                int r = write_count(k);
                                if (r < 0 && file_ok)
                                        fprintf(stderr, "sink: cannot write %s: %s, will keep trying\n", k->count_file,
                                                strerror(-r));
                                file_ok = r >= 0;
                        }
                        next_flush = now + FLUSH_INTERVAL_NS;
                }
                grpc_event ev = grpc_completion_queue_next(
                        k->cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(next_flush - now, GPR_TIMESPAN)),
                        NULL);
                if (ev.type == GRPC_QUEUE_SHUTDOWN)
                        return;
                if (ev.type != GRPC_OP_COMPLETE)
                        continue;
                if (ev.tag == &k->shutdown_tag) {
                        /* Every call is over; what is left on the queue are failed requests. */
                        grpc_completion_queue_shutdown(k->cq);
                        continue;
                }
                struct slot *sl = ev.tag;
                if (sl->waiting && ev.success) {
                        answer(sl);
                        continue;
                }
                slot_reset(sl);
                if (!k->stopping)
                        slot_request(sl);
        }
}

static void usage(FILE *f) {
        fprintf(f, "usage: otlp_sink [options]\n"
                   "  --listen HOST:PORT      where to serve OTLP/gRPC (default 127.0.0.1:4317; port 0 picks one)\n"
                   "  --count-file PATH       running totals, rewritten every 100 ms and at exit\n"
                   "  --decode full|count     full: protobuf-c unpack of every request (default);\n"
                   "                          count: walk the wire format to count spans/log records only\n"
                   "  --slots N               calls accepted concurrently per method (default 16)\n"
                   "  --refuse-every N        answer every Nth call RESOURCE_EXHAUSTED, uncounted (default 0: never)\n");
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "listen", required_argument, NULL, 'l' },
                { "count-file", required_argument, NULL, 'c' },
                { "decode", required_argument, NULL, 'd' },
                { "slots", required_argument, NULL, 's' },
                { "refuse-every", required_argument, NULL, 'r' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        struct sink k = { .listen = "127.0.0.1:4317", .slots_per_method = 16 };
        grpc_server_credentials *creds;
        char *end;
        int c, rc = 1;

        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'l': k.listen = optarg; break;
                case 'c': k.count_file = optarg; break;
                case 'd':
                        if (strcmp(optarg, "full") == 0)
                                k.decode = DECODE_FULL;
                        else if (strcmp(optarg, "count") == 0)
                                k.decode = DECODE_COUNT;
                        else {
                                fprintf(stderr, "sink: --decode is full or count, not '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case 's':
                        k.slots_per_method = (int) strtol(optarg, &end, 10);
                        if (*end || k.slots_per_method < 1 || k.slots_per_method > 1024) {
                                fprintf(stderr, "sink: --slots is 1..1024\n");
                                return 2;
                        }
                        break;
                case 'r':
                        errno = 0;
                        k.refuse_every = strtoull(optarg, &end, 10);
                        if (errno || *end || end == optarg || optarg[0] == '-') {
                                fprintf(stderr, "sink: --refuse-every takes a count\n");
                                return 2;
                        }
                        break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "sink: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }

        struct sigaction sa = { .sa_handler = on_signal };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        grpc_init();
        /* Whatever size the agent batches to, the sink takes it. */
        grpc_arg args[] = {
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = -1 },
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0 },
        };
        grpc_channel_args chargs = { .num_args = 2, .args = args };
        k.server = grpc_server_create(&chargs, NULL);
        k.cq = grpc_completion_queue_create_for_next(NULL);
        k.n_slots = (size_t) k.slots_per_method * ST_SIGNAL_COUNT;
        k.slots = calloc(k.n_slots, sizeof(*k.slots));
        if (!k.server || !k.cq || !k.slots) {
                fprintf(stderr, "sink: out of memory\n");
                goto out;
        }
        grpc_server_register_completion_queue(k.server, k.cq, NULL);
        for (int s = 0; s < ST_SIGNAL_COUNT; s++)
                k.methods[s] = grpc_server_register_method(k.server, st_signals[s].grpc_method, NULL,
                                                           GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        creds = grpc_insecure_server_credentials_create();
        int port = grpc_server_add_http2_port(k.server, k.listen, creds);
        grpc_server_credentials_release(creds);
        if (port == 0) {
                fprintf(stderr, "sink: cannot listen on %s\n", k.listen);
                grpc_server_start(k.server); /* a server must be started for its shutdown to complete */
                begin_shutdown(&k);
                serve(&k);
                goto out;
        }
        grpc_server_start(k.server);
        for (size_t i = 0; i < k.n_slots; i++) {
                k.slots[i].k = &k;
                k.slots[i].signal = (enum st_signal) (i / (size_t) k.slots_per_method);
                slot_init(&k.slots[i]);
                slot_request(&k.slots[i]);
        }
        (void) write_count(&k);
        fprintf(stderr, "sink: listening on %s (port %d), decode=%s\n", k.listen, port,
                k.decode == DECODE_FULL ? "full" : "count");

        serve(&k);
        rc = write_count(&k) < 0 ? 1 : 0;
        fprintf(stderr, "sink: stopped: spans=%" PRIu64 " data_points=%" PRIu64 " log_records=%" PRIu64 " requests=%" PRIu64
                        " bad_requests=%" PRIu64 " refused_requests=%" PRIu64 "\n",
                k.items[ST_TRACES], k.items[ST_METRICS], k.items[ST_LOGS], k.requests, k.bad, k.refused);
out:
        if (k.server)
                grpc_server_destroy(k.server);
        for (size_t i = 0; k.slots && i < k.n_slots; i++)
                if (k.slots[i].k)
                        slot_reset(&k.slots[i]);
        if (k.cq)
                grpc_completion_queue_destroy(k.cq);
        free(k.slots);
        grpc_shutdown();
        return rc;
}
