/* otlp_loadgen: sends OTLP/gRPC trace exports at a target rate, or flat out.
 *
 * The spans look like what an instrumented HTTP service sends: a name, a kind, start/end
 * times, 10 attributes of mixed types (strings, ints, a double, a bool, a string array), one
 * event with 2 attributes and a status; 8 spans share a trace and point at its root. To keep
 * the generator cheap, a pool of --pool distinct requests is built and packed once and then
 * cycled: trace/span ids are unique within the pool and repeat every pool × spans-per-request
 * spans.
 *
 * One thread drives --inflight calls on one channel through one completion queue. A request
 * refused with a retryable status (RESOURCE_EXHAUSTED, UNAVAILABLE, ...) is sent again after
 * a backoff, so that the client loses nothing: sent_spans counts only spans acknowledged OK.
 * The last line on stdout is machine-readable:
 *   loadgen sent_spans=N ok_requests=N retries=N seconds=X rate=Y failed_requests=N ... */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "arena.h"
#include "clock.h"
#include "otlp.h"
#include "span_gen.h"

#define MAX_INFLIGHT 1024
#define BACKOFF_MIN_NS (5 * ST_NS_PER_MS)
#define BACKOFF_MAX_NS (500 * ST_NS_PER_MS)

struct options {
        const char *target;
        size_t spans_per_request;
        double rate;     /* spans/s; 0 = flat out */
        double duration; /* s */
        int inflight;
        size_t pool;
        double timeout;  /* s, per attempt */
        double drain;    /* s, for answers after --duration */
        uint64_t seed;
};

static grpc_slice pack_request(uint64_t *seed, size_t n, uint64_t now_ns) {
        st_arena a;
        st_arena_init(&a);
        st_traces_req *req = spangen_request(&a, seed, n, now_ns);
        size_t len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(req);
        grpc_slice s = grpc_slice_malloc(len);
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(req, GRPC_SLICE_START_PTR(s));
        st_arena_reset(&a);
        return s;
}

/* ---- the client ----------------------------------------------------------------------- */

struct slot {
        bool busy;         /* a request is assigned: in flight or waiting to be resent */
        grpc_call *call;   /* non-NULL while in flight */
        size_t req;        /* index into the pool */
        int64_t retry_at;  /* when busy and !call: resend at this time */
        int64_t backoff;
        grpc_byte_buffer *send;
        grpc_metadata_array init_md, trail_md;
        grpc_byte_buffer *recv;
        grpc_status_code status;
        grpc_slice details;
};

struct loadgen {
        struct options o;
        grpc_channel *ch;
        grpc_completion_queue *cq;
        void *method;
        grpc_slice *pool;
        size_t next_req;
        struct slot *slots;
        uint64_t sent_spans, ok_requests, retries, failed_requests, failed_spans, sent_bytes, unanswered;
        int64_t last_ack;
        unsigned errors_logged;
};

static gpr_timespec ns_to_deadline(int64_t mono_ns) {
        /* gRPC's monotonic clock is not CLOCK_MONOTONIC's epoch: use a relative span. */
        int64_t d = mono_ns - st_now_ns();
        if (d < 0)
                d = 0;
        return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(d, GPR_TIMESPAN));
}

static int slot_start(struct loadgen *g, struct slot *sl) {
        grpc_op ops[6];
        grpc_call_error e;

        sl->call = grpc_channel_create_registered_call(g->ch, NULL, GRPC_PROPAGATE_DEFAULTS, g->cq, g->method,
                                                       ns_to_deadline(st_now_ns() + (int64_t) (g->o.timeout * 1e9)), NULL);
        if (!sl->call)
                return -ENOMEM;
        sl->send = grpc_raw_byte_buffer_create(&g->pool[sl->req], 1);
        grpc_metadata_array_init(&sl->init_md);
        grpc_metadata_array_init(&sl->trail_md);
        sl->recv = NULL;
        sl->details = grpc_empty_slice();

        memset(ops, 0, sizeof(ops));
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = sl->send;
        ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[3].data.recv_initial_metadata.recv_initial_metadata = &sl->init_md;
        ops[4].op = GRPC_OP_RECV_MESSAGE;
        ops[4].data.recv_message.recv_message = &sl->recv;
        ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        ops[5].data.recv_status_on_client.trailing_metadata = &sl->trail_md;
        ops[5].data.recv_status_on_client.status = &sl->status;
        ops[5].data.recv_status_on_client.status_details = &sl->details;
        e = grpc_call_start_batch(sl->call, ops, 6, sl, NULL);
        if (e != GRPC_CALL_OK) {
                fprintf(stderr, "loadgen: grpc_call_start_batch failed (error %d)\n", (int) e);
                grpc_call_unref(sl->call);
                sl->call = NULL;
                grpc_byte_buffer_destroy(sl->send);
                grpc_metadata_array_destroy(&sl->init_md);
                grpc_metadata_array_destroy(&sl->trail_md);
                return -EIO;
        }
        return 0;
}

static bool retryable(grpc_status_code c) {
        /* What the OTLP spec says a client retries (RESOURCE_EXHAUSTED: when the server says
         * so; ours always does for back-pressure). DEADLINE_EXCEEDED may duplicate a request
         * the server did take: the sink's count then shows received > sent. */
        switch (c) {
        case GRPC_STATUS_CANCELLED:
        case GRPC_STATUS_DEADLINE_EXCEEDED:
        case GRPC_STATUS_RESOURCE_EXHAUSTED:
        case GRPC_STATUS_ABORTED:
        case GRPC_STATUS_OUT_OF_RANGE:
        case GRPC_STATUS_UNAVAILABLE:
        case GRPC_STATUS_DATA_LOSS:
                return true;
        default:
                return false;
        }
}

/* An answer arrived on sl: count it, free the call, and schedule a resend if refused. */
static void slot_done(struct loadgen *g, struct slot *sl, bool ok) {
        int64_t now = st_now_ns();
        grpc_status_code c = ok ? sl->status : GRPC_STATUS_UNAVAILABLE;

        if (c == GRPC_STATUS_OK) {
                g->ok_requests++;
                g->sent_spans += g->o.spans_per_request;
                g->sent_bytes += GRPC_SLICE_LENGTH(g->pool[sl->req]);
                g->last_ack = now;
                sl->busy = false;
                sl->backoff = 0;
        } else if (retryable(c)) {
                g->retries++;
                sl->backoff = sl->backoff ? sl->backoff * 2 : BACKOFF_MIN_NS;
                if (sl->backoff > BACKOFF_MAX_NS)
                        sl->backoff = BACKOFF_MAX_NS;
                sl->retry_at = now + sl->backoff;
        } else {
                g->failed_requests++;
                g->failed_spans += g->o.spans_per_request;
                sl->busy = false;
                sl->backoff = 0;
        }
        if (c != GRPC_STATUS_OK && g->errors_logged < 10) {
                g->errors_logged++;
                fprintf(stderr, "loadgen: request refused: status %d %.*s%s\n", (int) c,
                        (int) GRPC_SLICE_LENGTH(sl->details), (const char *) GRPC_SLICE_START_PTR(sl->details),
                        retryable(c) ? " (will resend)" : " (not retryable: counted as failed)");
        }
        grpc_call_unref(sl->call);
        sl->call = NULL;
        grpc_byte_buffer_destroy(sl->send);
        grpc_byte_buffer_destroy(sl->recv);
        grpc_metadata_array_destroy(&sl->init_md);
        grpc_metadata_array_destroy(&sl->trail_md);
        grpc_slice_unref(sl->details);
}

static int wait_connected(struct loadgen *g, double seconds) {
        int64_t deadline = st_now_ns() + (int64_t) (seconds * 1e9);
        grpc_connectivity_state s;

        while ((s = grpc_channel_check_connectivity_state(g->ch, 1)) != GRPC_CHANNEL_READY) {
                if (st_now_ns() >= deadline)
                        return -ETIMEDOUT;
                grpc_channel_watch_connectivity_state(g->ch, s, ns_to_deadline(st_now_ns() + 100 * ST_NS_PER_MS), g->cq, NULL);
                /* The watch's tag is NULL; no call is in flight yet. */
                grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        }
        return 0;
}

static int run(struct loadgen *g) {
        const struct options *o = &g->o;
        int64_t t0 = st_now_ns();
        int64_t end = t0 + (int64_t) (o->duration * 1e9);
        int64_t drain_end = end + (int64_t) (o->drain * 1e9);
        /* Rate mode: request k is due at t0 + k × interval. */
        double interval_ns = o->rate > 0 ? (double) o->spans_per_request / o->rate * 1e9 : 0;
        uint64_t scheduled = 0;
        int r;

        g->last_ack = t0;
        for (;;) {
                int64_t now = st_now_ns();
                bool sending = now < end;
                int64_t wake = now + 100 * ST_NS_PER_MS;
                size_t busy = 0;

                for (int i = 0; i < o->inflight; i++) {
                        struct slot *sl = &g->slots[i];
                        if (sl->busy && !sl->call) {
                                if (sl->retry_at <= now) {
                                        r = slot_start(g, sl);
                                        if (r < 0)
                                                return r;
                                } else if (sl->retry_at < wake)
                                        wake = sl->retry_at;
                        }
                        if (!sl->busy && sending) {
                                int64_t due = t0 + (int64_t) ((double) scheduled * interval_ns);
                                if (due <= now) {
                                        sl->busy = true;
                                        sl->req = g->next_req;
                                        g->next_req = (g->next_req + 1) % o->pool;
                                        scheduled++;
                                        r = slot_start(g, sl);
                                        if (r < 0)
                                                return r;
                                } else if (due < wake)
                                        wake = due;
                        }
                        busy += sl->busy;
                }
                if (!sending && busy == 0)
                        break;
                if (!sending && now >= drain_end) {
                        fprintf(stderr, "loadgen: %zu requests still unanswered %.1fs after the end, giving up on them\n",
                                busy, o->drain);
                        g->unanswered = busy;
                        break;
                }
                if (sending && end < wake)
                        wake = end;

                grpc_event ev = grpc_completion_queue_next(g->cq, ns_to_deadline(wake), NULL);
                while (ev.type == GRPC_OP_COMPLETE) {
                        if (ev.tag)
                                slot_done(g, ev.tag, ev.success);
                        /* Take whatever else is ready before rescheduling. */
                        ev = grpc_completion_queue_next(g->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
                }
        }
        return 0;
}

static void cancel_all(struct loadgen *g) {
        for (int i = 0; i < g->o.inflight; i++)
                if (g->slots[i].call)
                        grpc_call_cancel(g->slots[i].call, NULL);
        for (;;) {
                bool any_call = false;
                for (int i = 0; i < g->o.inflight; i++)
                        any_call |= g->slots[i].call != NULL;
                if (!any_call)
                        break;
                grpc_event ev = grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                if (ev.type == GRPC_OP_COMPLETE && ev.tag) {
                        struct slot *sl = ev.tag;
                        uint64_t retries = g->retries;
                        slot_done(g, sl, ev.success);
                        g->retries = retries;
                        sl->busy = false;
                }
        }
}

static void usage(FILE *f) {
        fprintf(f,
                "usage: otlp_loadgen [options]\n"
                "  --target HOST:PORT        OTLP/gRPC endpoint (default 127.0.0.1:4317)\n"
                "  --signal traces           what to send (only traces for now)\n"
                "  --spans-per-request N     spans per Export call (default 512)\n"
                "  --rate SPANS_PER_S        target rate; 0 = flat out (default 0)\n"
                "  --duration SECONDS        how long to send (default 10)\n"
                "  --inflight N              concurrent calls (default 8)\n"
                "  --pool N                  distinct pre-packed requests cycled through (default 64)\n"
                "  --timeout SECONDS         per-call deadline (default 10)\n"
                "  --drain SECONDS           wait this long for answers after --duration (default 30)\n"
                "  --seed N                  PRNG seed (default 1)\n");
}

static int parse_double(const char *name, const char *s, double min, double *ret) {
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        if (errno || end == s || *end || !isfinite(d) || d < min) {
                fprintf(stderr, "loadgen: --%s: '%s' is not a number >= %g\n", name, s, min);
                return -EINVAL;
        }
        *ret = d;
        return 0;
}

static int parse_options(int argc, char **argv, struct options *o) {
        static const struct option opts[] = {
                { "target", required_argument, NULL, 't' },
                { "signal", required_argument, NULL, 'S' },
                { "spans-per-request", required_argument, NULL, 'n' },
                { "rate", required_argument, NULL, 'r' },
                { "duration", required_argument, NULL, 'd' },
                { "inflight", required_argument, NULL, 'i' },
                { "pool", required_argument, NULL, 'p' },
                { "timeout", required_argument, NULL, 'T' },
                { "drain", required_argument, NULL, 'D' },
                { "seed", required_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        double d;
        int c;

        *o = (struct options) { .target = "127.0.0.1:4317", .spans_per_request = 512, .duration = 10, .inflight = 8,
                                .pool = 64, .timeout = 10, .drain = 30, .seed = 1 };
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 't': o->target = optarg; break;
                case 'S':
                        if (strcmp(optarg, "traces") != 0) {
                                fprintf(stderr, "loadgen: --signal %s: only traces is supported\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'n':
                        if (parse_double("spans-per-request", optarg, 1, &d) < 0 || d > 1000000)
                                return -EINVAL;
                        o->spans_per_request = (size_t) d;
                        break;
                case 'r':
                        if (parse_double("rate", optarg, 0, &o->rate) < 0)
                                return -EINVAL;
                        break;
                case 'd':
                        if (parse_double("duration", optarg, 0, &o->duration) < 0)
                                return -EINVAL;
                        break;
                case 'i':
                        if (parse_double("inflight", optarg, 1, &d) < 0 || d > MAX_INFLIGHT) {
                                fprintf(stderr, "loadgen: --inflight is 1..%d\n", MAX_INFLIGHT);
                                return -EINVAL;
                        }
                        o->inflight = (int) d;
                        break;
                case 'p':
                        if (parse_double("pool", optarg, 1, &d) < 0 || d > 100000)
                                return -EINVAL;
                        o->pool = (size_t) d;
                        break;
                case 'T':
                        if (parse_double("timeout", optarg, 0.001, &o->timeout) < 0)
                                return -EINVAL;
                        break;
                case 'D':
                        if (parse_double("drain", optarg, 0, &o->drain) < 0)
                                return -EINVAL;
                        break;
                case 's':
                        if (parse_double("seed", optarg, 0, &d) < 0)
                                return -EINVAL;
                        o->seed = (uint64_t) d;
                        break;
                case 'h': usage(stdout); exit(0);
                default: usage(stderr); return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "loadgen: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        return 0;
}

int main(int argc, char **argv) {
        struct loadgen g = { 0 };
        grpc_channel_credentials *creds;
        int rc = 1, r;

        if (parse_options(argc, argv, &g.o) < 0)
                return 2;
        grpc_init();

        /* The pool: distinct requests, packed once. */
        uint64_t seed = g.o.seed, now_ns = (uint64_t) st_wall_ns(), pool_bytes = 0;
        int64_t b0 = st_now_ns();
        g.pool = calloc(g.o.pool, sizeof(*g.pool));
        g.slots = calloc((size_t) g.o.inflight, sizeof(*g.slots));
        if (!g.pool || !g.slots) {
                fprintf(stderr, "loadgen: out of memory\n");
                goto out;
        }
        for (size_t i = 0; i < g.o.pool; i++) {
                g.pool[i] = pack_request(&seed, g.o.spans_per_request, now_ns);
                pool_bytes += GRPC_SLICE_LENGTH(g.pool[i]);
        }
        fprintf(stderr,
                "loadgen: pool of %zu distinct requests x %zu spans (%.0f bytes/span, %.1f KiB/request, built in %.2fs); "
                "ids are unique within the pool and repeat every %zu spans\n",
                g.o.pool, g.o.spans_per_request, (double) pool_bytes / (double) (g.o.pool * g.o.spans_per_request),
                (double) pool_bytes / (double) g.o.pool / 1024.0, (double) (st_now_ns() - b0) / 1e9,
                g.o.pool * g.o.spans_per_request);

        /* No message size limit on answers; requests are whatever the pool holds. */
        grpc_arg args[] = {
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = -1 },
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, .value.integer = -1 },
        };
        grpc_channel_args chargs = { .num_args = SG_N(args), .args = args };
        creds = grpc_insecure_credentials_create();
        g.ch = grpc_channel_create(g.o.target, creds, &chargs);
        grpc_channel_credentials_release(creds);
        g.cq = grpc_completion_queue_create_for_next(NULL);
        g.method = grpc_channel_register_call(g.ch, st_signals[ST_TRACES].grpc_method, NULL, NULL);
        if (!g.ch || !g.cq || !g.method) {
                fprintf(stderr, "loadgen: cannot create the gRPC channel to %s\n", g.o.target);
                goto out;
        }
        r = wait_connected(&g, 10);
        if (r < 0) {
                fprintf(stderr, "loadgen: %s is not reachable after 10s\n", g.o.target);
                goto out;
        }
        if (g.o.rate > 0)
                fprintf(stderr, "loadgen: sending to %s at %.0f spans/s for %.1fs, %d calls in flight at most\n", g.o.target,
                        g.o.rate, g.o.duration, g.o.inflight);
        else
                fprintf(stderr, "loadgen: sending to %s flat out for %.1fs, %d calls in flight\n", g.o.target,
                        g.o.duration, g.o.inflight);

        int64_t t0 = st_now_ns();
        r = run(&g);
        if (r < 0) {
                fprintf(stderr, "loadgen: stopped: %s\n", strerror(-r));
                goto out;
        }
        double secs = (double) (g.last_ack - t0) / 1e9;
        if (secs <= 0)
                secs = (double) (st_now_ns() - t0) / 1e9;
        printf("loadgen sent_spans=%" PRIu64 " ok_requests=%" PRIu64 " retries=%" PRIu64 " seconds=%.3f rate=%.0f"
               " failed_requests=%" PRIu64 " failed_spans=%" PRIu64 " sent_bytes=%" PRIu64 " spans_per_request=%zu"
               " pool=%zu unanswered_requests=%" PRIu64 "\n",
               g.sent_spans, g.ok_requests, g.retries, secs, secs > 0 ? (double) g.sent_spans / secs : 0.0,
               g.failed_requests, g.failed_spans, g.sent_bytes, g.o.spans_per_request, g.o.pool, g.unanswered);
        fflush(stdout);
        rc = g.failed_requests || g.unanswered ? 1 : 0;
out:
        if (g.cq && g.slots)
                cancel_all(&g);
        if (g.ch)
                grpc_channel_destroy(g.ch);
        if (g.cq) {
                grpc_completion_queue_shutdown(g.cq);
                while (grpc_completion_queue_next(g.cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type != GRPC_QUEUE_SHUTDOWN)
                        ;
                grpc_completion_queue_destroy(g.cq);
        }
        for (size_t i = 0; g.pool && i < g.o.pool; i++)
                grpc_slice_unref(g.pool[i]);
        free(g.pool);
        free(g.slots);
        grpc_shutdown();
        return rc;
}
