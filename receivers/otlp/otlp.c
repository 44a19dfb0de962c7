/* The OTLP receiver: its factory, config map and checks, and the life cycle of its two
 * servers (gRPC in otlp_grpc.c, HTTP in otlp_http.c). A protocol is on when its section is
 * present, as in the Collector. */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "component.h"
#include "doctor.h"
#include "endpoint.h"
#include "log.h"
#include "otlp_receiver.h"
#include "unix_socket.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
/* gRPC keeps message lengths in an int and we give the core twice our limit (otlp_grpc.c). */
#define MAX_MSG_LIMIT GiB

static const struct st_cfg_field tls_fields[] = {
        { .name = "cert_file", .type = ST_CFG_STRING, .offset = offsetof(struct otlprecv_tls_config, cert_file),
          .desc = "PEM certificate chain of the server" },
        { .name = "key_file", .type = ST_CFG_STRING, .offset = offsetof(struct otlprecv_tls_config, key_file),
          .desc = "PEM private key of the server" },
        ST_CFG_END,
};

static const struct st_cfg_field grpc_fields[] = {
        { .name = "endpoint", .type = ST_CFG_STRING, .offset = offsetof(struct otlprecv_grpc_config, endpoint),
          .def = "127.0.0.1:4317", .desc = "host:port or unix:///path to listen on (\"\" = Unix socket only)" },
        { .name = "unix_socket", .type = ST_CFG_STRING, .offset = offsetof(struct otlprecv_grpc_config, unix_socket),
          .desc = "an extra listener on this Unix socket (path or unix:///path)" },
        { .name = "unix_socket_mode", .type = ST_CFG_STRING,
          .offset = offsetof(struct otlprecv_grpc_config, unix_socket_mode), .def = "0660",
          .desc = "permissions of the Unix socket file (octal)" },
        { .name = "max_recv_msg_size", .type = ST_CFG_SIZE,
          .offset = offsetof(struct otlprecv_grpc_config, max_recv_msg_size), .def = "4MiB",
          .desc = "largest request accepted (decompressed)" },
        { .name = "max_concurrent_streams", .type = ST_CFG_INT,
          .offset = offsetof(struct otlprecv_grpc_config, max_concurrent_streams), .def = "0", .min = 0,
          .max = INT32_MAX, .desc = "HTTP/2 streams per connection (0 = gRPC's default)" },
        { .name = "tls", .type = ST_CFG_SECTION, .offset = offsetof(struct otlprecv_grpc_config, tls),
          .sub = tls_fields, .present = ST_CFG_PRESENT(struct otlprecv_grpc_config, has_tls),
          .desc = "serve TLS with this certificate and key" },
        ST_CFG_END,
};

static const struct st_cfg_field http_fields[] = {
        { .name = "endpoint", .type = ST_CFG_STRING, .offset = offsetof(struct otlprecv_http_config, endpoint),
          .def = "127.0.0.1:4318", .desc = "host:port or unix:///path to listen on" },
        { .name = "max_request_body_size", .type = ST_CFG_SIZE,
          .offset = offsetof(struct otlprecv_http_config, max_request_body_size), .def = "4MiB",
          .desc = "largest request body accepted, before and after decompression" },
        { .name = "max_recv_msg_size", .type = ST_CFG_SIZE,
          .offset = offsetof(struct otlprecv_http_config, max_recv_msg_size),
          .desc = "same as max_request_body_size (the gRPC section's name), wins when given" },
        { .name = "traces_url_path", .type = ST_CFG_STRING,
          .offset = offsetof(struct otlprecv_http_config, traces_url_path), .def = "/v1/traces",
          .desc = "path of trace exports" },
        { .name = "metrics_url_path", .type = ST_CFG_STRING,
          .offset = offsetof(struct otlprecv_http_config, metrics_url_path), .def = "/v1/metrics",
          .desc = "path of metric exports" },
        { .name = "logs_url_path", .type = ST_CFG_STRING,
          .offset = offsetof(struct otlprecv_http_config, logs_url_path), .def = "/v1/logs",
          .desc = "path of log exports" },
        ST_CFG_END,
};

static const struct st_cfg_field protocols_fields[] = {
        { .name = "grpc", .type = ST_CFG_SECTION, .offset = offsetof(struct otlprecv_protocols, grpc), .sub = grpc_fields,
          .present = ST_CFG_PRESENT(struct otlprecv_protocols, has_grpc), .desc = "OTLP/gRPC (on when present)" },
        { .name = "http", .type = ST_CFG_SECTION, .offset = offsetof(struct otlprecv_protocols, http), .sub = http_fields,
          .present = ST_CFG_PRESENT(struct otlprecv_protocols, has_http), .desc = "OTLP/HTTP, protobuf and JSON (on when present)" },
        ST_CFG_END,
};

static const struct st_cfg_field otlp_fields[] = {
        { .name = "protocols", .type = ST_CFG_SECTION, .offset = offsetof(struct otlprecv_config, protocols),
          .sub = protocols_fields, .desc = "the protocols to serve; at least one" },
        { .name = "attribute_senders", .type = ST_CFG_BOOL, .offset = offsetof(struct otlprecv_config, attribute_senders),
          .def = "true",
          .desc = "attribute requests to the sending process as the kernel sees it: process.pid from SO_PEERCRED "
                  "(Unix sockets) or the ebpf receiver's connection table (TCP from this host); the pid the "
                  "sender claimed is kept as strata.claimed.process.pid" },
        ST_CFG_END,
};

uint64_t otlprecv_http_body_limit(const struct otlprecv_http_config *c) {
        return c->max_recv_msg_size ? c->max_recv_msg_size : c->max_request_body_size;
}

int otlprecv_unix_path(const char *s, const char **ret_path) {
        const char *p = s;
        if (!s)
                return -EINVAL;
        if (!st_endpoint_is_unix(s, &p))
                p = s;
        /* sun_path is 108 bytes with its NUL */
        if (p[0] != '/' || !p[1] || strlen(p) >= 108)
                return -EINVAL;
        *ret_path = p;
        return 0;
}

static void check_endpoint(struct st_cfg_ctx *ctx, const char *key, const char *v) {
        const char *path;
        if (st_endpoint_check(v) < 0)
                st_cfg_errorf(ctx, key, "'%s' is not host:port (port 0-65535) or unix:///absolute/path", v);
        else if (st_endpoint_is_unix(v, &path) && strlen(path) >= 108)
                st_cfg_errorf(ctx, key, "Unix socket path is longer than 107 bytes");
}

static void check_size(struct st_cfg_ctx *ctx, const char *key, uint64_t v) {
        if (v == 0 || v > MAX_MSG_LIMIT)
                st_cfg_errorf(ctx, key, "must be between 1 byte and 1GiB");
}

static void check_grpc(const struct otlprecv_grpc_config *c, struct st_cfg_ctx *ctx) {
        const char *path;
        mode_t mode;
        bool has_unix = c->unix_socket && *c->unix_socket;

        if (!c->endpoint || !*c->endpoint) {
                if (!has_unix)
                        st_cfg_errorf(ctx, "protocols.grpc.endpoint", "empty, and no unix_socket either");
        } else
                check_endpoint(ctx, "protocols.grpc.endpoint", c->endpoint);
        if (has_unix && otlprecv_unix_path(c->unix_socket, &path) < 0)
                st_cfg_errorf(ctx, "protocols.grpc.unix_socket", "'%s' is not an absolute path (or unix:///path) shorter than 108 bytes",
                              c->unix_socket);
        if (st_parse_mode(c->unix_socket_mode, &mode) < 0 || mode > 07777)
                st_cfg_errorf(ctx, "protocols.grpc.unix_socket_mode", "'%s' is not an octal mode such as \"0660\"",
                              c->unix_socket_mode ? c->unix_socket_mode : "");
        check_size(ctx, "protocols.grpc.max_recv_msg_size", c->max_recv_msg_size);
        if (c->has_tls) {
                if (!c->tls.cert_file || !*c->tls.cert_file)
                        st_cfg_errorf(ctx, "protocols.grpc.tls.cert_file", "required with tls");
                if (!c->tls.key_file || !*c->tls.key_file)
                        st_cfg_errorf(ctx, "protocols.grpc.tls.key_file", "required with tls");
        }
}

static void check_http(const struct otlprecv_http_config *c, struct st_cfg_ctx *ctx) {
        static const char *const keys[ST_SIGNAL_COUNT] = {
                "protocols.http.traces_url_path", "protocols.http.metrics_url_path", "protocols.http.logs_url_path",
        };
        const char *paths[ST_SIGNAL_COUNT] = { c->traces_url_path, c->metrics_url_path, c->logs_url_path };

        check_endpoint(ctx, "protocols.http.endpoint", c->endpoint ? c->endpoint : "");
        check_size(ctx, "protocols.http.max_request_body_size", c->max_request_body_size);
        if (c->max_recv_msg_size)
                check_size(ctx, "protocols.http.max_recv_msg_size", c->max_recv_msg_size);
        for (int s = 0; s < ST_SIGNAL_COUNT; s++) {
                if (!paths[s] || paths[s][0] != '/' || strpbrk(paths[s], "?# \t"))
                        st_cfg_errorf(ctx, keys[s], "'%s' is not a URL path starting with /", paths[s] ? paths[s] : "");
                for (int t = 0; t < s; t++)
                        if (paths[s] && paths[t] && strcmp(paths[s], paths[t]) == 0)
                                st_cfg_errorf(ctx, keys[s], "'%s' is also the %s path", paths[s], st_signal_name(t));
        }
}

static int otlp_validate(const void *cfgp, struct st_cfg_ctx *ctx) {
        const struct otlprecv_config *cfg = cfgp;
        size_t before = ctx->diag ? ctx->diag->errors : 0;

        if (!cfg->protocols.has_grpc && !cfg->protocols.has_http)
                st_cfg_errorf(ctx, "protocols", "at least one protocol (grpc, http) must be configured");
        if (cfg->protocols.has_grpc)
                check_grpc(&cfg->protocols.grpc, ctx);
        if (cfg->protocols.has_http)
                check_http(&cfg->protocols.http, ctx);
        return ctx->diag && ctx->diag->errors > before ? -EINVAL : 0;
}

static int otlp_create(const struct st_component_settings *set, const void *cfg, void **ret) {
        struct otlprecv *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->set = *set;
        r->cfg = cfg;
        *ret = r;
        return 0;
}

static void stop_servers(struct otlprecv *r, int64_t deadline_ns) {
        otlprecv_grpc_stop(r->grpc, deadline_ns);
        r->grpc = NULL;
        otlprecv_http_stop(r->http, deadline_ns);
        r->http = NULL;
}

static int otlp_start(void *self) {
        struct otlprecv *r = self;
        const struct otlprecv_config *cfg = r->cfg;
        int r2;

        if (cfg->protocols.has_grpc) {
                r2 = otlprecv_grpc_start(r, &cfg->protocols.grpc, &r->grpc);
                if (r2 < 0)
                        goto fail;
        }
        if (cfg->protocols.has_http) {
                r2 = otlprecv_http_start(r, &cfg->protocols.http, &r->http);
                if (r2 < 0)
                        goto fail;
        }
        return 0;
fail:
        stop_servers(r, 0);
        return r2;
}

/* Upstream-first shutdown: both servers stop accepting, let what is in flight reach the
 * pipeline, and stop. */
static int otlp_shutdown(void *self, int64_t deadline_ns) {
        struct otlprecv *r = self;
        if (r)
                stop_servers(r, deadline_ns);
        return 0;
}

static void otlp_destroy(void *self) {
        struct otlprecv *r = self;
        if (!r)
                return;
        stop_servers(r, 0); /* destroy without shutdown: nothing is left running */
        free(r);
}

void otlprecv_ports(void *self, int *ret_grpc, int *ret_http) {
        struct otlprecv *r = self;
        if (ret_grpc)
                *ret_grpc = r && r->grpc ? otlprecv_grpc_port(r->grpc) : 0;
        if (ret_http)
                *ret_http = r && r->http ? otlprecv_http_port(r->http) : 0;
}

/* --- strata doctor: can applications reach us on the default endpoints? --------------------- */

static void doctor_tcp(st_buf *out, const char *endpoint) {
        struct sockaddr_storage ss;
        socklen_t len;
        int fd = -1, one = 1;
        if (st_endpoint_parse_tcp(endpoint, &ss, &len) < 0 || (fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
                st_doctor_line(out, endpoint, 0, "cannot make a socket: %s", strerror(errno));
        } else {
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (bind(fd, (struct sockaddr *) &ss, len) < 0)
                        st_doctor_line(out, endpoint, 0, "cannot bind: %s%s", strerror(errno),
                                       errno == EADDRINUSE ? " (another collector or strata already listens?)" : "");
                else
                        st_doctor_line(out, endpoint, 1, "bindable: SDKs can send OTLP here");
        }
        if (fd >= 0)
                close(fd);
}

static void doctor_unix(st_buf *out, const char *path) {
        char dir[108];
        snprintf(dir, sizeof(dir), "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash)
                *(slash == dir ? slash + 1 : slash) = '\0';
        if (access(path, F_OK) == 0)
                st_doctor_line(out, path, 0, "exists already (a running strata, or a stale socket it will replace)");
        else if (access(dir, W_OK) == 0)
                st_doctor_line(out, path, 1, "can be created: local SDKs can send OTLP over it");
        else
                st_doctor_line(out, path, 0, "%s is not writable: %s", dir, strerror(errno));
}

static void otlp_doctor(st_buf *out) {
        doctor_tcp(out, "127.0.0.1:4317");
        doctor_tcp(out, "127.0.0.1:4318");
        doctor_unix(out, "/tmp/strata-otlp.sock");
}

const struct st_factory st_receiver_otlp = {
        .type = "otlp",
        .kind = ST_RECEIVER,
        .signals = ST_SIG_ALL,
        .description = "OTLP over gRPC and HTTP (protobuf and JSON), on TCP or Unix sockets",
        .config_size = sizeof(struct otlprecv_config),
        .config = otlp_fields,
        .validate = otlp_validate,
        .create = otlp_create,
        .start = otlp_start,
        .shutdown = otlp_shutdown,
        .destroy = otlp_destroy,
        .doctor = otlp_doctor,
};
