/* One OTLP Export call over gRPC, and what its status means for the retry loop (the OTLP
 * specification's "OTLP/gRPC Response" and "Failures" sections). */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "grpc_glue.h"
#include "log.h"
#include "otlp_exporter.h"

/* How often a waiting call looks whether shutdown wants it cut short. */
#define POLL_NS (100 * ST_NS_PER_MS)

static void set_result(struct st_send_result *res, enum st_send_status s, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void set_result(struct st_send_result *res, enum st_send_status s, const char *fmt, ...) {
        va_list ap;
        res->status = s;
        va_start(ap, fmt);
        vsnprintf(res->message, sizeof(res->message), fmt, ap);
        va_end(ap);
}

/* Transient per the OTLP spec; RESOURCE_EXHAUSTED only when the server says when to retry. */
static bool retryable(grpc_status_code code, bool has_retry_info) {
        switch (code) {
        case GRPC_STATUS_CANCELLED:
        case GRPC_STATUS_DEADLINE_EXCEEDED:
        case GRPC_STATUS_ABORTED:
        case GRPC_STATUS_OUT_OF_RANGE:
        case GRPC_STATUS_UNAVAILABLE:
        case GRPC_STATUS_DATA_LOSS:
                return true;
        case GRPC_STATUS_RESOURCE_EXHAUSTED:
                return has_retry_info;
        default:
                return false;
        }
}

/* The partial_success of an Export*ServiceResponse: (rejected, error_message). */
static void partial_success(enum st_signal s, const ProtobufCMessage *m, int64_t *rejected, const char **msg) {
        *rejected = 0;
        *msg = NULL;
        switch (s) {
        case ST_TRACES: {
                const st_traces_resp *r = (const st_traces_resp *) m;
                if (r->partial_success) {
                        *rejected = r->partial_success->rejected_spans;
                        *msg = r->partial_success->error_message;
                }
                break;
        }
        case ST_METRICS: {
                const st_metrics_resp *r = (const st_metrics_resp *) m;
                if (r->partial_success) {
                        *rejected = r->partial_success->rejected_data_points;
                        *msg = r->partial_success->error_message;
                }
                break;
        }
        case ST_LOGS: {
                const st_logs_resp *r = (const st_logs_resp *) m;
                if (r->partial_success) {
                        *rejected = r->partial_success->rejected_log_records;
                        *msg = r->partial_success->error_message;
                }
                break;
        }
        default:
                break;
        }
}

static bool partial_log_ok(struct otlp_exporter *e, uint64_t *ret_suppressed) {
        int64_t now = st_now_ns();
        bool ok;
        pthread_mutex_lock(&e->log_lock);
        ok = e->last_partial_log == 0 || now - e->last_partial_log >= ST_NS_PER_SEC;
        if (ok) {
                e->last_partial_log = now;
                *ret_suppressed = e->partial_suppressed;
                e->partial_suppressed = 0;
        } else
                e->partial_suppressed++;
        pthread_mutex_unlock(&e->log_lock);
        return ok;
}

/* A successful call: the response may still report rejected items. */
static void handle_ok(struct otlp_exporter *e, st_batch *b, grpc_byte_buffer *resp, struct st_send_result *res) {
        const struct st_signal_layout *L = &st_signals[b->signal];
        ProtobufCMessage *m = NULL;
        grpc_slice s;
        int64_t rejected;
        const char *msg;
        uint64_t sup;

        set_result(res, ST_SEND_OK, "OK");
        if (!resp || st_grpc_message_slice(resp, &s) < 0)
                return; /* delivered; an empty answer means full success */
        m = protobuf_c_message_unpack(L->resp, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
        grpc_slice_unref(s);
        if (!m) {
                st_debug(e->log_name, "unparsable %s Export response, taking it as success", L->name);
                return;
        }
        partial_success(b->signal, m, &rejected, &msg);
        if (rejected < 0)
                rejected = 0;
        res->rejected = (uint64_t) rejected;
        if ((rejected > 0 || (msg && *msg)) && partial_log_ok(e, &sup)) {
                char note[64] = "";
                if (sup)
                        snprintf(note, sizeof(note), " (%" PRIu64 " similar messages suppressed)", sup);
                if (rejected > 0)
                        st_warn(e->log_name, "backend rejected %" PRId64 " of %zu %s: %s%s", rejected, b->items,
                                L->item_name, msg && *msg ? msg : "(no reason given)", note);
                else
                        st_warn(e->log_name, "backend accepted all %zu %s with a warning: %s%s", b->items, L->item_name,
                                msg, note);
        }
        protobuf_c_message_free_unpacked(m, NULL);
}

static void handle_error(struct otlp_exporter *e, grpc_status_code code, grpc_slice details,
                         const grpc_metadata_array *trailers, bool cut, struct st_send_result *res) {
        int64_t delay = 0;
        int ri = st_grpc_retry_info(trailers, &delay);
        const char *name = st_grpc_status_name(code);
        int dlen = (int) GRPC_SLICE_LENGTH(details);
        const char *dptr = (const char *) GRPC_SLICE_START_PTR(details);

        if (ri < 0)
                st_debug(e->log_name, "ignoring unparsable %s trailer", ST_GRPC_STATUS_DETAILS_KEY);
        if (code == GRPC_STATUS_UNAVAILABLE)
                atomic_store(&e->reconnect, true);
        if (cut) {
                set_result(res, ST_SEND_RETRY, "call cancelled: the shutdown deadline passed");
                return;
        }
        set_result(res, retryable(code, ri > 0) ? ST_SEND_RETRY : ST_SEND_PERMANENT, "%s%s%.*s", name,
                   dlen ? ": " : "", dlen, dptr);
        if (res->status == ST_SEND_RETRY && ri > 0)
                res->retry_after_ns = delay > 0 ? delay : 1;
}

void otlp_send(void *exporter, st_batch *b, int64_t deadline_ns, struct st_send_result *res) {
        struct otlp_exporter *e = exporter;
        grpc_completion_queue *cq = NULL;
        grpc_call *call = NULL;
        grpc_byte_buffer *req = NULL, *resp = NULL;
        grpc_metadata_array initial, trailing;
        grpc_status_code status = GRPC_STATUS_UNKNOWN;
        grpc_slice details = grpc_empty_slice();
        const char *error_string = NULL;
        grpc_metadata md_local[16], *md = md_local;
        grpc_call_error err;
        bool cut = false;
        int r;

        grpc_metadata_array_init(&initial);
        grpc_metadata_array_init(&trailing);
        if (!e->channel || b->signal >= ST_SIGNAL_COUNT) {
                set_result(res, ST_SEND_PERMANENT, "exporter not started");
                goto out;
        }
        r = st_grpc_pack_batch(b, &req);
        if (r < 0) {
                set_result(res, ST_SEND_PERMANENT, "cannot serialize the batch: %s", strerror(-r));
                goto out;
        }
        /* gRPC waits out its own reconnect backoff (up to 2 minutes) and fails calls fast
         * meanwhile; our retry loop already paces attempts, so let each retry dial at once. */
        if (atomic_exchange(&e->reconnect, false))
                grpc_channel_reset_connect_backoff(e->channel);

        cq = grpc_completion_queue_create_for_pluck(NULL);
        call = grpc_channel_create_registered_call(e->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, e->method[b->signal],
                                                   st_grpc_deadline(deadline_ns), NULL);
        if (!cq || !call) {
                set_result(res, ST_SEND_RETRY, "cannot create a gRPC call");
                goto out;
        }

        /* gRPC may scribble on a grpc_metadata's internal fields during a call: each call gets
         * its own copy of the header array (the slices themselves are shared, refcounted). */
        if (e->n_md > sizeof(md_local) / sizeof(md_local[0])) {
                md = malloc(e->n_md * sizeof(*md));
                if (!md) {
                        set_result(res, ST_SEND_RETRY, "out of memory");
                        goto out;
                }
        }
        if (e->n_md)
                memcpy(md, e->md, e->n_md * sizeof(*md));

        grpc_op ops[6] = {
                { .op = GRPC_OP_SEND_INITIAL_METADATA,
                  .data.send_initial_metadata = { .count = e->n_md, .metadata = md } },
                { .op = GRPC_OP_SEND_MESSAGE, .data.send_message.send_message = req },
                { .op = GRPC_OP_SEND_CLOSE_FROM_CLIENT },
                { .op = GRPC_OP_RECV_INITIAL_METADATA, .data.recv_initial_metadata.recv_initial_metadata = &initial },
                { .op = GRPC_OP_RECV_MESSAGE, .data.recv_message.recv_message = &resp },
                { .op = GRPC_OP_RECV_STATUS_ON_CLIENT,
                  .data.recv_status_on_client = { .trailing_metadata = &trailing, .status = &status,
                                                  .status_details = &details, .error_string = &error_string } },
        };
        err = grpc_call_start_batch(call, ops, 6, ops, NULL);
        if (err != GRPC_CALL_OK) {
                set_result(res, ST_SEND_PERMANENT, "gRPC refused the call: %s", grpc_call_error_to_string(err));
                goto out;
        }

        /* The call's deadline guarantees completion; waking every POLL_NS lets a call that
         * began before shutdown be cancelled at the shutdown deadline. */
        for (;;) {
                int64_t now = st_now_ns(), cut_at = atomic_load(&e->cut_at);
                if (!cut && now >= cut_at) {
                        grpc_call_cancel_with_status(call, GRPC_STATUS_CANCELLED, "exporter shutting down", NULL);
                        cut = true;
                }
                int64_t wake = now + POLL_NS;
                if (!cut && cut_at < wake)
                        wake = cut_at;
                grpc_event ev = grpc_completion_queue_pluck(cq, ops, st_grpc_deadline(wake), NULL);
                if (ev.type == GRPC_OP_COMPLETE)
                        break;
        }

        if (status == GRPC_STATUS_OK)
                handle_ok(e, b, resp, res);
        else {
                /* A connection that broke is noticed and mended by the watcher's polling. Not
                 * for what a backend answered (refusals, bad data): those leave the channel
                 * ready, and a watcher woken for each would poll for nothing. */
                if (status == GRPC_STATUS_UNAVAILABLE || status == GRPC_STATUS_DEADLINE_EXCEEDED)
                        otlp_watch_kick(e);
                handle_error(e, status, details, &trailing, cut, res);
                if (error_string)
                        st_debug(e->log_name, "%s Export failed: %s", st_signals[b->signal].name, error_string);
        }

out:
        if (call)
                grpc_call_unref(call);
        if (cq) {
                grpc_completion_queue_shutdown(cq);
                grpc_completion_queue_destroy(cq);
        }
        if (req)
                grpc_byte_buffer_destroy(req);
        if (resp)
                grpc_byte_buffer_destroy(resp);
        grpc_metadata_array_destroy(&initial);
        grpc_metadata_array_destroy(&trailing);
        grpc_slice_unref(details);
        gpr_free((void *) error_string);
        if (md != md_local)
                free(md);
}
