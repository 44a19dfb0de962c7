/* What the gRPC and HTTP servers share: request bytes → batch, batch → pipeline (counted),
 * and the pipeline's answer → what the client is told. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "otlp_json.h"
#include "otlp_receiver.h"
#include "peer.h"

static int decode_json(enum st_signal s, const uint8_t *data, size_t len, st_batch **ret, char *err, size_t errlen) {
        const ProtobufCMessageDescriptor *d = st_signals[s].req;
        ProtobufCMessage *m = NULL;
        st_batch *b = NULL;
        char why[256] = "";
        int r;

        /* The request goes straight into the batch's arena: no second copy. */
        r = st_batch_new(s, &b);
        if (r < 0)
                return r;
        r = st_otlp_json_decode(d, (const char *) data, len, st_arena_allocator(&b->arena), &m, why, sizeof(why));
        if (r < 0) {
                st_batch_unref(b);
                if (r == -ENOMEM)
                        return r;
                snprintf(err, errlen, "failed to decode %s as JSON (%zu bytes): %s", d->short_name, len,
                         why[0] ? why : "invalid JSON");
                return -EBADMSG;
        }
        b->req = m;
        b->cap_res = st_req_n(s, m);
        st_batch_recount(b);
        *ret = b;
        return 0;
}

int otlprecv_decode(enum st_signal s, enum otlprecv_encoding enc, const uint8_t *data, size_t len,
                    st_batch **ret, char *err, size_t errlen) {
        if (enc == OTLPRECV_JSON)
                return decode_json(s, data, len, ret, err, errlen);
        struct iovec part = { .iov_base = (void *) data, .iov_len = len };
        return otlprecv_decode_parts(s, &part, 1, ret, err, errlen);
}

int otlprecv_decode_parts(enum st_signal s, const struct iovec *parts, size_t n, st_batch **ret, char *err,
                          size_t errlen) {
        int r = st_batch_from_wire_parts(s, parts, n, ret); /* checked and counted; decoded only if a reader needs it */
        if (r == -EBADMSG) {
                size_t len = 0;
                for (size_t i = 0; i < n; i++)
                        len += parts[i].iov_len;
                snprintf(err, errlen, "failed to decode %s (%zu bytes)", st_signals[s].req->short_name, len);
        }
        return r;
}

int otlprecv_deliver(struct otlprecv *r, st_batch *b, const struct st_peer *peer) {
        const struct st_consumer *next = &r->set.next[b->signal];
        struct st_component_telemetry *tel = r->set.tel;
        st_batch *w = NULL;
        int ret;

        if (!st_consumer_set(next))
                return -ENOSYS;
        if (peer && peer->method != ST_PEER_NONE && r->cfg->attribute_senders) {
                /* decodes a batch that was only checked: the price of knowing its sender */
                ret = st_batch_writable(b, &w);
                if (ret >= 0)
                        ret = st_peer_attribute(w, peer);
                if (ret >= 0)
                        w->pid_source = ST_PIDS_OBSERVED;
                if (ret < 0) {
                        st_batch_unref(w);
                        if (tel)
                                st_tel_add(&tel->sig[b->signal].refused, b->items);
                        return ret;
                }
                b = w;
        }
        ret = st_consume(next, b);
        st_batch_unref(w);
        if (tel)
                st_tel_add(ret < 0 ? &tel->sig[b->signal].refused : &tel->sig[b->signal].accepted, b->items);
        return ret;
}

enum otlprecv_outcome otlprecv_outcome(enum st_signal s, int r, char *msg, size_t msglen) {
        if (r >= 0) {
                msg[0] = 0;
                return OTLPRECV_OK;
        }
        switch (r) {
        case -ENOSYS:
                snprintf(msg, msglen, "no pipeline for %s", st_signal_name(s));
                return OTLPRECV_UNIMPLEMENTED;
        case -ENOBUFS:
                snprintf(msg, msglen, "the %s pipeline is full, retry later", st_signal_name(s));
                return OTLPRECV_RETRY_LATER;
        default:
                if (!st_error_retryable(r)) {
                        snprintf(msg, msglen, "the %s pipeline rejected the data: %s", st_signal_name(s), strerror(-r));
                        return OTLPRECV_BAD_REQUEST;
                }
                snprintf(msg, msglen, "the %s pipeline failed: %s", st_signal_name(s), strerror(-r));
                return OTLPRECV_UNAVAILABLE;
        }
}
