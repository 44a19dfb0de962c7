#include "grpc_glue.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "rpc_status.h"


gpr_timespec st_grpc_deadline(int64_t deadline_ns) {
        /* gRPC's monotonic clock need not share CLOCK_MONOTONIC's epoch: convert the time left. */
        if (deadline_ns == INT64_MAX)
                return gpr_inf_future(GPR_CLOCK_MONOTONIC);
        int64_t left = deadline_ns - st_now_ns();
        if (left < 0)
                left = 0;
        return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(left, GPR_TIMESPAN));
}

int st_grpc_pack_message(const ProtobufCMessage *m, grpc_byte_buffer **ret) {
        size_t n = protobuf_c_message_get_packed_size(m);
        grpc_slice s = grpc_slice_malloc(n);
        if (protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s)) != n) {
                grpc_slice_unref(s);
                return -EIO;
        }
        grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1); /* takes its own reference */
        grpc_slice_unref(s);
        if (!bb)
                return -ENOMEM;
        *ret = bb;
        return 0;
}

static void unref_part(void *user_data) { st_batch_unref(user_data); }

/* Appends b's bytes as slices: wire bytes are referenced, not copied (the slice holds a
 * reference on the batch that owns them); a merged batch contributes its parts in order. */
static int add_slices(const st_batch *b, grpc_slice **v, size_t *n, size_t *cap) {
        if (b->concat && !b->wire) {
                for (size_t i = 0; i < b->n_borrowed; i++) {
                        int r = add_slices(b->borrowed[i], v, n, cap);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (*n == *cap) {
                size_t ncap = *cap ? *cap * 2 : 8;
                grpc_slice *nv = realloc(*v, ncap * sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                *v = nv;
                *cap = ncap;
        }
        if (b->wire) {
                st_batch *owner = st_batch_ref((st_batch *) b);
                (*v)[(*n)++] = grpc_slice_new_with_user_data((void *) b->wire, b->wire_len, unref_part, owner);
                return 0;
        }
        size_t len = st_batch_packed_size(b);
        grpc_slice s = grpc_slice_malloc(len);
        if (st_batch_pack(b, GRPC_SLICE_START_PTR(s)) != len) {
                grpc_slice_unref(s);
                return -EIO;
        }
        (*v)[(*n)++] = s;
        return 0;
}

int st_grpc_pack_batch(const st_batch *b, grpc_byte_buffer **ret) {
        grpc_slice *v = NULL;
        size_t n = 0, cap = 0;
        int r = add_slices(b, &v, &n, &cap);
        grpc_byte_buffer *bb = NULL;
        if (r >= 0) {
                bb = grpc_raw_byte_buffer_create(v, n); /* takes its own references */
                if (!bb)
                        r = -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                grpc_slice_unref(v[i]);
        free(v);
        if (r < 0)
                return r;
        *ret = bb;
        return 0;
}

int st_grpc_message_slice(grpc_byte_buffer *bb, grpc_slice *ret) {
        grpc_byte_buffer_reader rd;
        if (!bb || !grpc_byte_buffer_reader_init(&rd, bb))
                return -EBADMSG; /* no message, or compressed with something we cannot undo */
        *ret = grpc_byte_buffer_reader_readall(&rd);
        grpc_byte_buffer_reader_destroy(&rd);
        return 0;
}

const char *st_grpc_status_name(grpc_status_code code) {
        static const char *const names[] = {
                [GRPC_STATUS_OK] = "OK",
                [GRPC_STATUS_CANCELLED] = "CANCELLED",
                [GRPC_STATUS_UNKNOWN] = "UNKNOWN",
                [GRPC_STATUS_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
                [GRPC_STATUS_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
                [GRPC_STATUS_NOT_FOUND] = "NOT_FOUND",
                [GRPC_STATUS_ALREADY_EXISTS] = "ALREADY_EXISTS",
                [GRPC_STATUS_PERMISSION_DENIED] = "PERMISSION_DENIED",
                [GRPC_STATUS_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
                [GRPC_STATUS_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
                [GRPC_STATUS_ABORTED] = "ABORTED",
                [GRPC_STATUS_OUT_OF_RANGE] = "OUT_OF_RANGE",
                [GRPC_STATUS_UNIMPLEMENTED] = "UNIMPLEMENTED",
                [GRPC_STATUS_INTERNAL] = "INTERNAL",
                [GRPC_STATUS_UNAVAILABLE] = "UNAVAILABLE",
                [GRPC_STATUS_DATA_LOSS] = "DATA_LOSS",
                [GRPC_STATUS_UNAUTHENTICATED] = "UNAUTHENTICATED",
        };
        if ((int) code < 0 || (size_t) code >= sizeof(names) / sizeof(names[0]) || !names[code])
                return "UNKNOWN";
        return names[code];
}

const grpc_slice *st_grpc_metadata_find(const grpc_metadata_array *md, const char *key) {
        for (size_t i = 0; md && i < md->count; i++)
                if (grpc_slice_str_cmp(md->metadata[i].key, key) == 0)
                        return &md->metadata[i].value;
        return NULL;
}

int st_grpc_retry_info(const grpc_metadata_array *trailers, int64_t *ret_delay_ns) {
        const grpc_slice *v = st_grpc_metadata_find(trailers, ST_GRPC_STATUS_DETAILS_KEY);
        if (!v)
                return 0;
        return st_rpc_status_retry_delay(GRPC_SLICE_START_PTR(*v), GRPC_SLICE_LENGTH(*v), ret_delay_ns);
}

int st_grpc_status_details_retry(grpc_status_code code, const char *message, int64_t delay_ns, grpc_slice *ret) {
        st_buf b = { 0 };
        if (delay_ns < 0)
                return -EINVAL;
        int r = st_rpc_status_pack((int) code, message, delay_ns, &b);
        if (r < 0)
                return r;
        *ret = grpc_slice_from_copied_buffer(b.data, b.len);
        st_buf_free(&b);
        return 0;
}

/* host:port with a non-empty host and a port 1..65535; [v6]:port. Nothing after. */
static bool host_port_ok(const char *s, size_t len) {
        const char *colon, *end = s + len;
        if (len == 0)
                return false;
        if (s[0] == '[') {
                const char *close = memchr(s, ']', len);
                if (!close || close == s + 1 || close + 1 >= end || close[1] != ':')
                        return false;
                colon = close + 1;
        } else {
                colon = NULL;
                for (const char *p = s; p < end; p++)
                        if (*p == ':') {
                                if (colon)
                                        return false; /* a bare IPv6 address: needs [brackets] */
                                colon = p;
                        }
                if (!colon || colon == s)
                        return false;
                for (const char *p = s; p < colon; p++)
                        if (*p == '/' || *p == '@' || *p == ' ' || *p == '?' || *p == '#')
                                return false;
        }
        if (colon + 1 >= end || end - (colon + 1) > 5)
                return false;
        long port = 0;
        for (const char *p = colon + 1; p < end; p++) {
                if (*p < '0' || *p > '9')
                        return false;
                port = port * 10 + (*p - '0');
        }
        return port >= 1 && port <= 65535;
}

/* An address needs no resolver: "ipv4:"/"ipv6:" targets skip DNS (and c-ares) altogether. */
static const char *ip_literal_scheme(const char *hp, size_t len) {
        char host[INET6_ADDRSTRLEN + 2];
        struct in6_addr a6;
        struct in_addr a4;
        size_t hl = len;

        while (hl > 0 && hp[hl - 1] != ':')
                hl--;
        if (hl > 0)
                hl--; /* host length, before the port's colon */

        if (hl < 2 || hl >= sizeof(host))
                return "dns:///";
        if (hp[0] == '[') {
                memcpy(host, hp + 1, hl - 2);
                host[hl - 2] = 0;
                return inet_pton(AF_INET6, host, &a6) == 1 ? "ipv6:" : "dns:///";
        }
        memcpy(host, hp, hl);
        host[hl] = 0;
        return inet_pton(AF_INET, host, &a4) == 1 ? "ipv4:" : "dns:///";
}

int st_grpc_target_from_endpoint(const char *endpoint, char **ret_target, enum st_grpc_scheme *ret_scheme) {
        enum st_grpc_scheme scheme = ST_GRPC_SCHEME_NONE;
        const char *hp = endpoint;
        size_t len;
        char *t;

        if (!endpoint || !*endpoint)
                return -EINVAL;
        if (strncmp(endpoint, "unix://", 7) == 0) {
                /* a path that does not fit sockaddr_un's sun_path (108 bytes with its NUL) */
                if (endpoint[7] != '/' || !endpoint[8] || strlen(endpoint + 7) >= 108)
                        return -EINVAL;
                t = strdup(endpoint);
                goto done;
        }
        if (strncmp(endpoint, "dns:", 4) == 0) {
                /* dns:///host:port, or dns://resolver:53/host:port */
                if (strncmp(endpoint, "dns://", 6) != 0)
                        return -EINVAL;
                hp = strchr(endpoint + 6, '/');
                if (!hp)
                        return -EINVAL;
                hp++;
                if (!host_port_ok(hp, strlen(hp)))
                        return -EINVAL;
                t = strdup(endpoint);
                goto done;
        }
        if (strncmp(endpoint, "http://", 7) == 0) {
                scheme = ST_GRPC_SCHEME_HTTP;
                hp = endpoint + 7;
        } else if (strncmp(endpoint, "https://", 8) == 0) {
                scheme = ST_GRPC_SCHEME_HTTPS;
                hp = endpoint + 8;
        }
        len = strlen(hp);
        if (scheme != ST_GRPC_SCHEME_NONE && len > 0 && hp[len - 1] == '/')
                len--;
        if (!host_port_ok(hp, len))
                return -EINVAL;
        t = malloc(len + 8);
        if (t)
                snprintf(t, len + 8, "%s%.*s", ip_literal_scheme(hp, len), (int) len, hp);
done:
        if (!t)
                return -ENOMEM;
        *ret_target = t;
        if (ret_scheme)
                *ret_scheme = scheme;
        return 0;
}

static void grpc_log(gpr_log_func_args *a) {
        enum st_log_level level = a->severity == GPR_LOG_SEVERITY_ERROR ? ST_LOG_WARN : ST_LOG_DEBUG;
        if (st_log_enabled(level))
                st_log(level, "grpc", "%s", a->message);
}

void st_grpc_route_logs(void) {
        gpr_set_log_function(grpc_log);
}
