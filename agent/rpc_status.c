#include "rpc_status.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "clock.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

int st_rpc_status_pack(int code, const char *message, int64_t retry_delay_ns, st_buf *out) {
        Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT, *details[1] = { &any };
        Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
        Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
        uint8_t ri_bytes[32]; /* RetryInfo{Duration} packs to at most 2 + 2 + 11 + 6 bytes */

        st.code = code;
        st.message = (char *) (message ? message : "");
        if (retry_delay_ns >= 0) {
                delay.seconds = retry_delay_ns / ST_NS_PER_SEC;
                delay.nanos = (int32_t) (retry_delay_ns % ST_NS_PER_SEC);
                ri.retry_delay = &delay;
                any.type_url = (char *) ST_RETRY_INFO_TYPE_URL;
                any.value.len = google__rpc__retry_info__pack(&ri, ri_bytes);
                any.value.data = ri_bytes;
                st.n_details = 1;
                st.details = details;
        }
        size_t n = google__rpc__status__get_packed_size(&st);
        int r = st_buf_reserve(out, n);
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

int st_rpc_status_json(int code, const char *message, int64_t retry_delay_ns, st_buf *out) {
        int r = st_buf_printf(out, "{\"code\":%d,\"message\":", code);
        if (r >= 0)
                r = put_json_string(out, message ? message : "");
        if (r >= 0 && retry_delay_ns >= 0) {
                /* protobuf JSON: a Duration is "<seconds>[.fraction]s" */
                r = st_buf_printf(out, ",\"details\":[{\"@type\":\"" ST_RETRY_INFO_TYPE_URL "\",\"retryDelay\":\"%" PRId64, retry_delay_ns / ST_NS_PER_SEC);
                if (r >= 0 && retry_delay_ns % ST_NS_PER_SEC)
                        r = st_buf_printf(out, ".%09" PRId64, retry_delay_ns % ST_NS_PER_SEC);
                if (r >= 0)
                        r = st_buf_puts(out, "s\"}]");
        }
        if (r >= 0)
                r = st_buf_putc(out, '}');
        return r;
}

int st_rpc_status_retry_delay(const uint8_t *data, size_t len, int64_t *ret_delay_ns) {
        Google__Rpc__Status *st = google__rpc__status__unpack(NULL, len, data);
        int r = 0;
        if (!st)
                return -EBADMSG;
        for (size_t i = 0; i < st->n_details && r == 0; i++) {
                const Google__Protobuf__Any *any = st->details[i];
                if (!any->type_url || strcmp(any->type_url, ST_RETRY_INFO_TYPE_URL) != 0)
                        continue;
                Google__Rpc__RetryInfo *ri = google__rpc__retry_info__unpack(NULL, any->value.len, any->value.data);
                if (!ri) {
                        r = -EBADMSG;
                        break;
                }
                int64_t d = 0;
                if (ri->retry_delay && ri->retry_delay->seconds >= 0 && ri->retry_delay->nanos >= 0) {
                        /* Clamp absurd delays (a day) rather than overflow. */
                        int64_t s = ri->retry_delay->seconds > 86400 ? 86400 : ri->retry_delay->seconds;
                        d = s * ST_NS_PER_SEC + ri->retry_delay->nanos;
                }
                google__rpc__retry_info__free_unpacked(ri, NULL);
                *ret_delay_ns = d;
                r = 1;
        }
        google__rpc__status__free_unpacked(st, NULL);
        return r;
}
