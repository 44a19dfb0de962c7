/* exporter `otlp`: OTLP over gRPC to a collector or backend, for traces, metrics and logs.
 * One channel per exporter; the shared helper queues, retries and counts; otlp_send.c makes
 * the calls. */
#include "otlp_exporter.h"

#include <ctype.h>
#include <errno.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "exporter_helper_validate.h"
#include "grpc_glue.h"
#include "log.h"

#define CFG struct otlp_exporter_config
#define TLS struct otlp_tls_config

static const char *const compression_names[] = { "gzip", "none", NULL };

static const struct st_cfg_field tls_fields[] = {
        { .name = "insecure", .type = ST_CFG_BOOL, .offset = offsetof(TLS, insecure), .def = "false",
          .desc = "plaintext: no TLS at all" },
        { .name = "insecure_skip_verify", .type = ST_CFG_BOOL, .offset = offsetof(TLS, insecure_skip_verify),
          .def = "false", .desc = "TLS without verifying the server's certificate" },
        { .name = "ca_file", .type = ST_CFG_STRING, .offset = offsetof(TLS, ca_file),
          .desc = "PEM file of the CAs to trust (default: the system's roots)" },
        { .name = "cert_file", .type = ST_CFG_STRING, .offset = offsetof(TLS, cert_file),
          .desc = "client certificate chain (PEM) for mutual TLS" },
        { .name = "key_file", .type = ST_CFG_STRING, .offset = offsetof(TLS, key_file),
          .desc = "client private key (PEM) for mutual TLS" },
        { .name = "server_name_override", .type = ST_CFG_STRING, .offset = offsetof(TLS, server_name_override),
          .desc = "name to check the server's certificate against instead of the endpoint's host" },
        ST_CFG_END,
};

static const struct st_cfg_field otlp_fields[] = {
        { .name = "endpoint", .type = ST_CFG_STRING, .offset = offsetof(CFG, endpoint), .required = true,
          .desc = "host:port, dns:///host:port, unix:///path, or http(s)://host:port (https means TLS)" },
        { .name = "tls", .type = ST_CFG_SECTION, .offset = offsetof(CFG, tls), .sub = tls_fields,
          .desc = "transport security (TLS with the system's roots by default)" },
        { .name = "headers", .type = ST_CFG_MAP, .offset = offsetof(CFG, headers),
          .desc = "sent as gRPC metadata with every call" },
        { .name = "compression", .type = ST_CFG_ENUM, .offset = offsetof(CFG, compression), .def = "gzip",
          .enums = compression_names, .desc = "message compression: gzip or none" },
        { .name = "timeout", .type = ST_CFG_DURATION, .offset = offsetof(CFG, timeout), .def = "5s",
          .desc = "deadline of each attempt" },
        { .name = "retry_on_failure", .type = ST_CFG_SECTION, .offset = offsetof(CFG, retry_on_failure),
          .sub = st_retry_config_fields, .desc = "retries of transient failures" },
        { .name = "sending_queue", .type = ST_CFG_SECTION, .offset = offsetof(CFG, sending_queue),
          .sub = st_queue_config_fields, .desc = "the queue in front of the senders" },
        ST_CFG_END,
};

/* --- validation --------------------------------------------------------------------------- */

static bool use_tls(const CFG *c, enum st_grpc_scheme scheme) {
        switch (scheme) {
        case ST_GRPC_SCHEME_HTTPS:
                return true;
        case ST_GRPC_SCHEME_HTTP:
                return false;
        default:
                return !c->tls.insecure;
        }
}

/* gRPC metadata keys: lowercase letters, digits, '-', '_', '.'; values of non-binary keys
 * printable ASCII. Keys are lowercased for the wire, so "Authorization" is fine. */
static const char *header_problem(const char *key, const char *value) {
        size_t kl = strlen(key);
        if (kl == 0)
                return "empty header name";
        for (const char *p = key; *p; p++) {
                char ch = (char) tolower((unsigned char) *p);
                if (!(isdigit((unsigned char) ch) || (ch >= 'a' && ch <= 'z') || ch == '-' || ch == '_' || ch == '.'))
                        return "header names may only hold letters, digits, '-', '_' and '.'";
        }
        if (strncasecmp(key, "grpc-", 5) == 0 || strcasecmp(key, "te") == 0 || strcasecmp(key, "content-type") == 0)
                return "this header is reserved for the gRPC transport";
        if (kl > 4 && strcasecmp(key + kl - 4, "-bin") == 0)
                return NULL; /* binary values: anything goes */
        for (const char *p = value; *p; p++)
                if ((unsigned char) *p < 0x20 || (unsigned char) *p > 0x7e)
                        return "header values must be printable ASCII (use a '-bin' name for binary values)";
        return NULL;
}

static int otlp_validate(const void *cfgp, struct st_cfg_ctx *ctx) {
        const CFG *c = cfgp;
        enum st_grpc_scheme scheme = ST_GRPC_SCHEME_NONE;
        char *target = NULL;
        int r = 0;

        /* (A missing endpoint was reported by the config map already.) */
        if (c->endpoint && strncmp(c->endpoint, "unix://", 7) == 0 && strlen(c->endpoint + 7) >= 108) {
                st_cfg_errorf(ctx, "endpoint", "the socket path of '%s' is %zu bytes long: at most 107 fit a Unix socket address",
                              c->endpoint, strlen(c->endpoint + 7));
                r = -EINVAL;
        } else if (c->endpoint && st_grpc_target_from_endpoint(c->endpoint, &target, &scheme) < 0) {
                st_cfg_errorf(ctx, "endpoint",
                              "'%s' is not a gRPC endpoint: use host:port, dns:///host:port, unix:///path or "
                              "http(s)://host:port",
                              c->endpoint);
                r = -EINVAL;
        }
        free(target);

        const TLS *t = &c->tls;
        bool files = t->ca_file || t->cert_file || t->key_file;
        if (scheme == ST_GRPC_SCHEME_HTTPS && t->insecure) {
                st_cfg_errorf(ctx, "tls.insecure", "an https:// endpoint means TLS; drop the scheme to use plaintext");
                r = -EINVAL;
        }
        if (!use_tls(c, scheme) && (files || t->insecure_skip_verify || t->server_name_override)) {
                st_cfg_errorf(ctx, scheme == ST_GRPC_SCHEME_HTTP ? "endpoint" : "tls.insecure",
                              "%s turns TLS off, so the other tls settings would be ignored",
                              scheme == ST_GRPC_SCHEME_HTTP ? "an http:// endpoint" : "tls.insecure: true");
                r = -EINVAL;
        }
        if (!!t->cert_file != !!t->key_file) {
                st_cfg_errorf(ctx, t->cert_file ? "tls.key_file" : "tls.cert_file",
                              "cert_file and key_file go together (mutual TLS needs both)");
                r = -EINVAL;
        }
        for (size_t i = 0; i < c->headers.n; i++) {
                const char *why = header_problem(c->headers.k[i], c->headers.v[i]);
                if (why) {
                        char path[300];
                        snprintf(path, sizeof(path), "headers.%s", c->headers.k[i]);
                        st_cfg_errorf(ctx, path, "%s", why);
                        r = -EINVAL;
                }
        }
        if (c->timeout <= 0) {
                st_cfg_errorf(ctx, "timeout", "must be greater than 0");
                r = -EINVAL;
        }
        if (st_exporter_helper_validate(&c->retry_on_failure, &c->sending_queue, ctx) < 0)
                r = -EINVAL;
        return r;
}

/* --- lifecycle ---------------------------------------------------------------------------- */

static void otlp_destroy(void *self);

static int otlp_create(const struct st_component_settings *set, const void *cfgp, void **ret) {
        const CFG *c = cfgp;
        enum st_grpc_scheme scheme;
        struct otlp_exporter *e;
        int r;

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        grpc_init(); /* refcounted by gRPC; undone in destroy */
        st_grpc_route_logs();
        pthread_mutex_init(&e->log_lock, NULL);
        pthread_mutex_init(&e->watch_lock, NULL);
        pthread_cond_init(&e->watch_cond, NULL);
        atomic_init(&e->cut_at, INT64_MAX);
        e->cfg = c;
        e->log_name = strdup(set->log_name ? set->log_name : "exporter/otlp");
        if (!e->log_name) {
                r = -ENOMEM;
                goto fail;
        }
        r = st_grpc_target_from_endpoint(c->endpoint, &e->target, &scheme);
        if (r < 0) {
                st_error(e->log_name, "invalid endpoint '%s'", c->endpoint ? c->endpoint : "");
                goto fail;
        }
        e->use_tls = use_tls(c, scheme);

        if (c->headers.n > 0) {
                e->md = calloc(c->headers.n, sizeof(*e->md));
                if (!e->md) {
                        r = -ENOMEM;
                        goto fail;
                }
                for (; e->n_md < c->headers.n; e->n_md++) {
                        char *k = strdup(c->headers.k[e->n_md]);
                        if (!k) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        for (char *p = k; *p; p++)
                                *p = (char) tolower((unsigned char) *p);
                        e->md[e->n_md].key = grpc_slice_from_copied_string(k);
                        e->md[e->n_md].value = grpc_slice_from_copied_string(c->headers.v[e->n_md]);
                        free(k);
                }
        }

        r = st_exporter_helper_new(set, &c->retry_on_failure, &c->sending_queue, c->timeout, otlp_send, e, &e->helper);
        if (r < 0) {
                st_error(e->log_name, "invalid retry_on_failure or sending_queue settings");
                goto fail;
        }
        *ret = e;
        return 0;
fail:
        otlp_destroy(e);
        return r;
}

static int otlp_start(void *self) {
        struct otlp_exporter *e = self;
        const CFG *c = e->cfg;
        grpc_channel_credentials *creds = NULL;
        char err[512];
        grpc_arg args[3];
        size_t n = 0;
        int r;

        if (e->channel)
                return 0;
        r = otlp_channel_credentials(&c->tls, e->use_tls, &creds, err, sizeof(err));
        if (r < 0) {
                st_error(e->log_name, "%s", err);
                return r;
        }
        args[n++] = (grpc_arg) { .type = GRPC_ARG_STRING, .key = (char *) GRPC_ARG_PRIMARY_USER_AGENT_STRING,
                                 .value.string = (char *) "strata/" STRATA_VERSION };
        if (c->compression == OTLP_COMPRESSION_GZIP)
                args[n++] = (grpc_arg) { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM,
                                         .value.integer = GRPC_COMPRESS_GZIP };
        if (e->use_tls && c->tls.server_name_override)
                args[n++] = (grpc_arg) { .type = GRPC_ARG_STRING, .key = (char *) GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                                         .value.string = c->tls.server_name_override };
        grpc_channel_args ca = { .num_args = n, .args = args };

        e->channel = grpc_channel_create(e->target, creds, &ca);
        grpc_channel_credentials_release(creds);
        /* gRPC hands out a "lame" channel, whose calls all fail, for a target it cannot use;
         * its connectivity cannot be watched either (and a watch on it outlives the channel) */
        if (!e->channel || !grpc_channel_support_connectivity_watcher(e->channel)) {
                st_error(e->log_name, "cannot create a gRPC channel to %s", e->target);
                if (e->channel)
                        grpc_channel_destroy(e->channel);
                e->channel = NULL;
                return -EINVAL;
        }
        for (int s = 0; s < ST_SIGNAL_COUNT; s++)
                e->method[s] = grpc_channel_register_call(e->channel, st_signals[s].grpc_method, NULL, NULL);

        r = otlp_watch_start(e);
        if (r < 0) {
                st_error(e->log_name, "cannot start the connection watcher: %s", strerror(-r));
                goto fail;
        }
        r = st_exporter_helper_start(e->helper);
        if (r < 0) {
                st_error(e->log_name, "cannot start the sending queue: %s", strerror(-r));
                goto fail;
        }
        /* The channel connects in the background: a backend that is down now is not an
         * error, only retries and warnings later. */
        st_info(e->log_name, "exporting to %s (%s, compression %s)", c->endpoint,
                e->use_tls ? (c->tls.insecure_skip_verify ? "TLS, certificate NOT verified" : "TLS") : "plaintext",
                compression_names[c->compression]);
        return 0;
fail:
        otlp_channel_close(e);
        return r;
}

static int otlp_consume(void *self, st_batch *b) {
        struct otlp_exporter *e = self;
        return st_exporter_helper_consume(e->helper, b);
}

static int otlp_shutdown(void *self, int64_t deadline_ns) {
        struct otlp_exporter *e = self;
        if (!e)
                return 0;
        /* Calls already running when the deadline passes are cancelled (see otlp_send). */
        atomic_store(&e->cut_at, deadline_ns);
        st_exporter_helper_shutdown(e->helper, deadline_ns);
        /* The helper has waited for every send to return: nothing uses the channel now. */
        otlp_channel_close(e);
        return 0;
}

static void otlp_destroy(void *self) {
        struct otlp_exporter *e = self;
        if (!e)
                return;
        if (e->helper || e->channel)
                otlp_shutdown(e, st_now_ns());
        st_exporter_helper_free(e->helper);
        for (size_t i = 0; i < e->n_md; i++) {
                grpc_slice_unref(e->md[i].key);
                grpc_slice_unref(e->md[i].value);
        }
        free(e->md);
        free(e->target);
        free(e->log_name);
        pthread_mutex_destroy(&e->log_lock);
        pthread_mutex_destroy(&e->watch_lock);
        pthread_cond_destroy(&e->watch_cond);
        free(e);
        grpc_shutdown();
}

const struct st_factory st_exporter_otlp = {
        .type = "otlp",
        .kind = ST_EXPORTER,
        .signals = ST_SIG_ALL,
        .description = "sends traces, metrics and logs over OTLP/gRPC",
        .config_size = sizeof(CFG),
        .config = otlp_fields,
        .validate = otlp_validate,
        .create = otlp_create,
        .start = otlp_start,
        .consume = otlp_consume,
        .shutdown = otlp_shutdown,
        .destroy = otlp_destroy,
};
