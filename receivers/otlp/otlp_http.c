/* OTLP/HTTP: POST /v1/{traces,metrics,logs} with protobuf or JSON bodies, identity, gzip or
 * deflate, served by libmicrohttpd on a socket we bind ourselves (clear bind errors, port 0,
 * Unix sockets).
 *
 * Threads: MHD's epoll mode with a pool of one polling thread per CPU (at most 8). Decoding
 * and the synchronous consume() are CPU work done in the access handler, so several threads
 * let requests on different connections proceed on different cores; unlike
 * thread-per-connection, the thread count stays bounded however many clients connect, and
 * no thread is created per connection.
 *
 * Stopping turns new connections away with an accept policy, not MHD_quiesce_daemon():
 * in 0.9.75, quiescing an epoll thread pool races with the workers removing the listen
 * socket themselves, and the loser aborts the process ("Failed to remove listen FD from
 * epoll set", an open libmicrohttpd defect, seen here about once in 20 test runs).
 *
 * Errors are decided as early as the headers allow (404, 405, 415, bad Content-Encoding, a
 * Content-Length above the limit), but always answered after the body: the rest of the body
 * is read and discarded, not buffered, so that the connection stays usable and the client
 * reads the answer instead of a reset. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "clock.h"
#include "endpoint.h"
#include "log.h"
#include "otlp_receiver.h"
#include "peer.h"

#define STR(x) STR_(x)
#define STR_(x) #x

#define MAX_THREADS 8
#define IDLE_TIMEOUT_S 60u
#define CONNECTION_MEMORY (64u * 1024u) /* also the size of the body pieces the handler gets */
#define HTTP_UNIX_SOCKET_MODE 0660

/* google.rpc.Code values for the Status bodies */
#define CODE_INVALID_ARGUMENT 3
#define CODE_RESOURCE_EXHAUSTED 8
#define CODE_UNAVAILABLE 14

#define CT_PROTOBUF "application/x-protobuf"
#define CT_JSON "application/json"

struct otlprecv_http {
        struct otlprecv *r;
        const char *log;
        struct MHD_Daemon *d;
        const char *paths[ST_SIGNAL_COUNT];
        size_t limit;
        int listen_fd; /* ours until MHD_start_daemon() has its duplicate */
        int port;
        bool port_watched; /* announced to the connection owner source (peer.h) */
        char *unix_path;
        atomic_int inflight; /* requests between their headers and their answer */
        atomic_bool closing; /* stop() began: new connections are turned away */
};

struct request {
        unsigned status;      /* an answer decided from the headers, 0 = none */
        const char *text;     /* its plain-text body; NULL: a Status body with msg */
        char msg[192];
        enum st_signal signal;
        enum otlprecv_encoding enc;
        bool compressed;
        bool too_large;       /* the body went past the limit: the rest is discarded */
        uint8_t *body;
        size_t len, cap;
};

static bool media_is(const char *v, size_t n, const char *type) {
        return n == strlen(type) && strncasecmp(v, type, n) == 0;
}

/* "application/json; charset=utf-8" → OTLPRECV_JSON. */
static int parse_content_type(const char *ct, enum otlprecv_encoding *ret) {
        size_t n;
        if (!ct)
                return -EINVAL;
        ct += strspn(ct, " \t");
        n = strcspn(ct, "; \t");
        if (media_is(ct, n, CT_PROTOBUF))
                *ret = OTLPRECV_PROTOBUF;
        else if (media_is(ct, n, CT_JSON))
                *ret = OTLPRECV_JSON;
        else
                return -EINVAL;
        return 0;
}

/* Returns true for gzip/deflate, false for identity, -EINVAL for anything else. */
static int parse_content_encoding(const char *ce) {
        size_t n;
        if (!ce)
                return false;
        ce += strspn(ce, " \t");
        n = strcspn(ce, " \t");
        if (n == 0 || media_is(ce, n, "identity"))
                return false;
        if (media_is(ce, n, "gzip") || media_is(ce, n, "x-gzip") || media_is(ce, n, "deflate"))
                return ce[n + strspn(ce + n, " \t")] == 0 ? true : -EINVAL;
        return -EINVAL;
}

/* Looks at the request line and headers; an error found here is answered after the body. */
static void classify(struct otlprecv_http *h, struct MHD_Connection *c, const char *url, const char *method,
                     struct request *q) {
        const char *cl, *ce;
        int s, r;

        for (s = 0; s < ST_SIGNAL_COUNT; s++)
                if (strcmp(url, h->paths[s]) == 0)
                        break;
        if (s == ST_SIGNAL_COUNT) {
                q->status = MHD_HTTP_NOT_FOUND;
                q->text = "404 page not found\n";
                return;
        }
        q->signal = (enum st_signal) s;
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
                q->status = MHD_HTTP_METHOD_NOT_ALLOWED;
                q->text = "405 method not allowed, supported: [POST]\n";
                return;
        }
        if (!st_consumer_set(&h->r->set.next[s])) {
                q->status = MHD_HTTP_NOT_FOUND;
                snprintf(q->msg, sizeof(q->msg), "no pipeline for %s\n", st_signal_name(q->signal));
                q->text = q->msg;
                return;
        }
        if (parse_content_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE), &q->enc) < 0) {
                q->status = MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
                q->text = "415 unsupported media type, supported: [" CT_JSON ", " CT_PROTOBUF "]\n";
                return;
        }
        ce = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
        r = parse_content_encoding(ce);
        if (r < 0) {
                q->status = MHD_HTTP_BAD_REQUEST;
                snprintf(q->msg, sizeof(q->msg), "unsupported Content-Encoding: %s (supported: gzip, deflate, identity)", ce);
                return;
        }
        q->compressed = r;
        /* Size the buffer once when the client says how much comes. */
        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
                char *end;
                unsigned long long n = strtoull(cl, &end, 10);
                if (*end == 0 && n > h->limit)
                        q->too_large = true;
                else if (*end == 0 && n > 0 && (q->body = malloc(n)))
                        q->cap = n;
        }
}

static void append_body(struct otlprecv_http *h, struct request *q, const char *data, size_t n) {
        if (q->status || q->too_large)
                return;
        if (n > h->limit - q->len) {
                q->too_large = true;
                free(q->body);
                q->body = NULL;
                q->len = q->cap = 0;
                return;
        }
        if (q->len + n > q->cap) {
                size_t ncap = q->cap ? q->cap : 16384;
                while (ncap < q->len + n)
                        ncap *= 2;
                if (ncap > h->limit)
                        ncap = h->limit;
                uint8_t *p = realloc(q->body, ncap);
                if (!p) {
                        q->status = MHD_HTTP_SERVICE_UNAVAILABLE;
                        q->text = "503 out of memory\n";
                        return;
                }
                q->body = p;
                q->cap = ncap;
        }
        memcpy(q->body + q->len, data, n);
        q->len += n;
}

static enum MHD_Result send_answer(struct MHD_Connection *c, unsigned status, const char *ctype, const void *body,
                                   size_t len) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *) (len ? body : ""), MHD_RESPMEM_MUST_COPY);
        enum MHD_Result ret;

        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
        if (status == MHD_HTTP_TOO_MANY_REQUESTS || status == MHD_HTTP_SERVICE_UNAVAILABLE)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, STR(OTLPRECV_RETRY_DELAY_S));
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, MHD_HTTP_METHOD_POST);
        ret = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* An error as a google.rpc.Status in the request's encoding. */
static enum MHD_Result send_status(struct MHD_Connection *c, const struct request *q, unsigned status, const char *msg) {
        int code = status == MHD_HTTP_BAD_REQUEST ? CODE_INVALID_ARGUMENT :
                   status == MHD_HTTP_TOO_MANY_REQUESTS ? CODE_RESOURCE_EXHAUSTED : CODE_UNAVAILABLE;
        int delay = status == MHD_HTTP_BAD_REQUEST ? 0 : OTLPRECV_RETRY_DELAY_S;
        st_buf b = { 0 };
        enum MHD_Result ret;
        int r;

        if (q->enc == OTLPRECV_JSON)
                r = st_rpc_status_json(code, msg, delay > 0 ? delay * ST_NS_PER_SEC : -1, &b);
        else
                r = st_rpc_status_pack(code, msg, delay > 0 ? delay * ST_NS_PER_SEC : -1, &b);
        if (r < 0) {
                st_buf_free(&b);
                return MHD_NO;
        }
        ret = send_answer(c, status, q->enc == OTLPRECV_JSON ? CT_JSON : CT_PROTOBUF, b.data, b.len);
        st_buf_free(&b);
        return ret;
}


/* The process that sent this request: SO_PEERCRED on a Unix socket, the kernel receiver's
 * connection table for TCP from this host. Unknown (ST_PEER_NONE) otherwise. For TCP, the
 * sender's address goes into b. */
static void sender(struct otlprecv_http *h, struct MHD_Connection *c, st_batch *b, struct st_peer *ret) {
        bool attribute = h->r->cfg->attribute_senders;
        const union MHD_ConnectionInfo *fdi = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ai = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ai ? ai->client_addr : NULL;
        if (!fdi || !sa)
                return;
        if (sa->sa_family == AF_UNIX) {
                if (attribute)
                        (void) st_peer_from_unix_fd(fdi->connect_fd, "/proc", ret);
                return;
        }
        struct st_conn_key k = { .family = sa->sa_family, .server_port = (uint16_t) h->port };
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                k.client_port = ntohs(in->sin_port);
                memcpy(k.client_addr, &in->sin_addr, 4);
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
                k.client_port = ntohs(in6->sin6_port);
                if (memcmp(&in6->sin6_addr, v4mapped, 12) == 0) {
                        k.family = AF_INET;
                        memcpy(k.client_addr, (const uint8_t *) &in6->sin6_addr + 12, 4);
                } else
                        memcpy(k.client_addr, &in6->sin6_addr, 16);
        } else
                return;
        (void) inet_ntop(k.family, k.client_addr, b->peer_ip, sizeof(b->peer_ip));
        if (attribute)
                (void) st_peer_from_tcp(&k, ret);
}

static enum MHD_Result answer(struct otlprecv_http *h, struct MHD_Connection *c, struct request *q) {
        char msg[512];
        uint8_t *inflated = NULL;
        const uint8_t *data = q->body ? q->body : (const uint8_t *) "";
        size_t len = q->len;
        st_batch *b = NULL;
        enum otlprecv_outcome o;
        int r;

        if (q->status && q->text)
                return send_answer(c, q->status, "text/plain; charset=utf-8", q->text, strlen(q->text));
        if (q->status)
                return send_status(c, q, q->status, q->msg);
        if (q->too_large) {
                snprintf(msg, sizeof(msg), "request body too large: limit %zu bytes", h->limit);
                return send_status(c, q, MHD_HTTP_BAD_REQUEST, msg);
        }
        if (q->compressed) {
                r = otlprecv_inflate(data, len, h->limit, &inflated, &len);
                if (r == -EMSGSIZE) {
                        snprintf(msg, sizeof(msg), "decompressed request body too large: limit %zu bytes", h->limit);
                        return send_status(c, q, MHD_HTTP_BAD_REQUEST, msg);
                }
                if (r < 0) {
                        snprintf(msg, sizeof(msg), "failed to decompress the request body (%zu bytes): %s", q->len,
                                 r == -EBADMSG ? "not valid gzip or deflate data" : strerror(-r));
                        return send_status(c, q, r == -EBADMSG ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_SERVICE_UNAVAILABLE, msg);
                }
                data = inflated;
        }
        r = otlprecv_decode(q->signal, q->enc, data, len, &b, msg, sizeof(msg));
        free(inflated);
        /* The batch has its own copy now. */
        free(q->body);
        q->body = NULL;
        if (r < 0) {
                if (r != -EBADMSG)
                        snprintf(msg, sizeof(msg), "failed to decode the request: %s", strerror(-r));
                return send_status(c, q, r == -EBADMSG ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_SERVICE_UNAVAILABLE, msg);
        }
        struct st_peer peer = { 0 };
        sender(h, c, b, &peer);
        r = otlprecv_deliver(h->r, b, &peer);
        st_batch_unref(b);
        o = otlprecv_outcome(q->signal, r, msg, sizeof(msg));
        switch (o) {
        case OTLPRECV_OK:
                /* Export*ServiceResponse without partial_success: zero bytes, or {} */
                return q->enc == OTLPRECV_JSON ? send_answer(c, MHD_HTTP_OK, CT_JSON, "{}", 2)
                                               : send_answer(c, MHD_HTTP_OK, CT_PROTOBUF, "", 0);
        case OTLPRECV_BAD_REQUEST:
                return send_status(c, q, MHD_HTTP_BAD_REQUEST, msg);
        case OTLPRECV_RETRY_LATER:
                return send_status(c, q, MHD_HTTP_TOO_MANY_REQUESTS, msg);
        case OTLPRECV_UNIMPLEMENTED:
                return send_answer(c, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", msg, strlen(msg));
        case OTLPRECV_UNAVAILABLE:
                break;
        }
        return send_status(c, q, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len) {
        struct otlprecv_http *h = cls;
        (void) addr;
        (void) len;
        return atomic_load(&h->closing) ? MHD_NO : MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        struct otlprecv_http *h = cls;
        struct request *q = *con_cls;

        if (!q) {
                q = calloc(1, sizeof(*q));
                if (!q)
                        return MHD_NO; /* MHD closes the connection */
                *con_cls = q;
                atomic_fetch_add(&h->inflight, 1);
                classify(h, c, url, method, q);
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                append_body(h, q, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return MHD_YES;
        }
        return answer(h, c, q);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
        struct otlprecv_http *h = cls;
        struct request *q = *con_cls;

        if (!q)
                return;
        free(q->body);
        free(q);
        *con_cls = NULL;
        atomic_fetch_sub(&h->inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
        struct otlprecv_http *h = cls;
        /* MHD reports client misbehaviour (resets, malformed requests) here: debug only. */
        if (st_log_enabled(ST_LOG_DEBUG))
                st_logv(ST_LOG_DEBUG, h->log, fmt, ap);
}

static int listen_tcp(struct otlprecv_http *h, const char *endpoint) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd, one = 1, r;

        r = st_endpoint_parse_tcp(endpoint, &ss, &sl);
        if (r < 0) {
                st_error(h->log, "cannot resolve %s: %s", endpoint, strerror(-r));
                return r;
        }
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                goto fail;
        /* A restarted agent must not wait for TIME_WAIT connections of the previous one. */
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *) &ss, sl) < 0 || listen(fd, SOMAXCONN) < 0)
                goto fail;
        sl = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *) &ss, &sl) < 0)
                goto fail;
        h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                                                 : ((struct sockaddr_in *) &ss)->sin_port);
        h->listen_fd = fd;
        return 0;
fail:
        r = -errno;
        st_error(h->log, "cannot listen on %s: %s", endpoint, strerror(-r));
        if (fd >= 0)
                close(fd);
        return r;
}

static int listen_unix(struct otlprecv_http *h, const char *path) {
        int r = st_unix_listen(path, HTTP_UNIX_SOCKET_MODE, &h->listen_fd);
        if (r < 0) {
                st_error(h->log, "cannot listen on unix://%s: %s", path,
                         r == -EADDRINUSE ? "another process is serving it" :
                         r == -EEXIST ? "it exists and is not a socket" : strerror(-r));
                return r;
        }
        h->unix_path = strdup(path);
        return h->unix_path ? 0 : -ENOMEM;
}

int otlprecv_http_start(struct otlprecv *r, const struct otlprecv_http_config *c, struct otlprecv_http **ret) {
        struct otlprecv_http *h;
        const char *path;
        unsigned flags, threads;
        long ncpu;
        int ret2;

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->r = r;
        h->log = r->set.log_name;
        h->listen_fd = -1;
        h->limit = otlprecv_http_body_limit(c);
        h->paths[ST_TRACES] = c->traces_url_path;
        h->paths[ST_METRICS] = c->metrics_url_path;
        h->paths[ST_LOGS] = c->logs_url_path;
        atomic_init(&h->inflight, 0);
        atomic_init(&h->closing, false);

        if (st_endpoint_is_unix(c->endpoint, &path))
                ret2 = listen_unix(h, path);
        else
                ret2 = listen_tcp(h, c->endpoint);
        if (ret2 < 0)
                goto fail;

        ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        threads = ncpu < 1 ? 1 : ncpu > MAX_THREADS ? MAX_THREADS : (unsigned) ncpu;
        flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_AUTO);
        /* MHD gets a duplicate: it closes what it is given, also when it fails to start late
         * (not on a bad option, which our fixed options cannot be: then the duplicate would
         * leak), and we close ours in every case, so that no descriptor is closed twice */
        int mhd_fd = fcntl(h->listen_fd, F_DUPFD_CLOEXEC, 0);
        if (mhd_fd < 0) {
                ret2 = -errno;
                st_error(h->log, "cannot start the HTTP server on %s: %s", c->endpoint, strerror(-ret2));
                goto fail;
        }
        h->d = MHD_start_daemon(flags, 0, on_accept, h, on_request, h,
                                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
                                MHD_OPTION_LISTEN_SOCKET, (MHD_socket) mhd_fd,
                                MHD_OPTION_THREAD_POOL_SIZE, threads,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                                MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT_S,
                                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) CONNECTION_MEMORY,
                                MHD_OPTION_END);
        close(h->listen_fd);
        h->listen_fd = -1;
        if (!h->d) {
                st_error(h->log, "cannot start the HTTP server on %s", c->endpoint);
                ret2 = -EIO;
                goto fail;
        }
        if (h->port && r->cfg->attribute_senders) {
                st_conn_owner_watch_port((uint16_t) h->port, true);
                h->port_watched = true;
        }
        if (h->unix_path)
                st_info(h->log, "OTLP/HTTP listening on unix://%s", h->unix_path);
        else
                st_info(h->log, "OTLP/HTTP listening on %.*s:%d", (int) (strrchr(c->endpoint, ':') - c->endpoint),
                        c->endpoint, h->port);
        *ret = h;
        return 0;
fail:
        otlprecv_http_stop(h, 0);
        return ret2;
}

int otlprecv_http_port(const struct otlprecv_http *h) {
        return h ? h->port : 0;
}

void otlprecv_http_stop(struct otlprecv_http *h, int64_t deadline_ns) {
        if (!h)
                return;
        if (h->port_watched)
                st_conn_owner_watch_port((uint16_t) h->port, false);
        if (h->d) {
                /* No new connections; requests already underway get until the deadline to
                 * reach the pipeline (idle keep-alive connections do not count). */
                atomic_store(&h->closing, true);
                while (atomic_load(&h->inflight) > 0 && st_now_ns() < deadline_ns)
                        usleep(5000);
                MHD_stop_daemon(h->d); /* closes the listen socket */
        } else if (h->listen_fd >= 0)
                close(h->listen_fd);
        if (h->unix_path) {
                if (unlink(h->unix_path) < 0 && errno != ENOENT)
                        st_warn(h->log, "cannot remove %s: %m, ignoring", h->unix_path);
                free(h->unix_path);
        }
        free(h);
}
