/* google.rpc.Status for error answers: packed for gRPC's grpc-status-details-bin trailer and
 * OTLP/HTTP protobuf bodies, and in the protobuf JSON mapping for OTLP/HTTP JSON bodies. A
 * RetryInfo detail tells OTLP clients that a RESOURCE_EXHAUSTED is worth retrying and when. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "otlp_receiver.h"

#define RETRY_INFO_TYPE_URL "type.googleapis.com/google.rpc.RetryInfo"

int otlprecv_status_pack(int code, const char *message, int retry_delay_s, st_buf *out) {
        Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT, *details[1] = { &any };
        Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
        Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
        uint8_t ri_bytes[32]; /* a RetryInfo with a Duration packs to at most 2 + 2 + 11 + 6 bytes */
        size_t n;
        int r;

        st.code = code;
        st.message = (char *) (message ? message : "");
        if (retry_delay_s > 0) {
                delay.seconds = retry_delay_s;
                ri.retry_delay = &delay;
                any.type_url = (char *) RETRY_INFO_TYPE_URL;
                any.value.len = google__rpc__retry_info__pack(&ri, ri_bytes);
                any.value.data = ri_bytes;
                st.n_details = 1;
                st.details = details;
        }
        n = google__rpc__status__get_packed_size(&st);
        r = st_buf_reserve(out, n);
        if (r < 0)
                return r;
        out->len += google__rpc__status__pack(&st, (uint8_t *) out->data + out->len);
        return 0;
}

static int put_json_string(st_buf *out, const char *s) {
        int r = st_buf_putc(out, '"');
        for (const unsigned char *p = (const unsigned char *) s; r >= 0 && *p; p++) {
                if (*p == '"' || *p == '\\')
                        r = st_buf_printf(out, "\\%c", *p);
                else if (*p < 0x20)
                        r = st_buf_printf(out, "\\u%04x", *p);
                else
                        r = st_buf_putc(out, (char) *p);
        }
        return r < 0 ? r : st_buf_putc(out, '"');
}

int otlprecv_status_json(int code, const char *message, int retry_delay_s, st_buf *out) {
        int r = st_buf_printf(out, "{\"code\":%d,\"message\":", code);
        if (r >= 0)
                r = put_json_string(out, message ? message : "");
        if (r >= 0 && retry_delay_s > 0)
                r = st_buf_printf(out, ",\"details\":[{\"@type\":\"" RETRY_INFO_TYPE_URL "\",\"retryDelay\":\"%ds\"}]",
                                  retry_delay_s);
        if (r >= 0)
                r = st_buf_putc(out, '}');
        return r;
}
