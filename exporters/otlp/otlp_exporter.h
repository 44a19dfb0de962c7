/* The OTLP/gRPC exporter's insides, shared by its files: the config, the instance, and the
 * pieces otlp_exporter.c wires together (credentials, the send function). */
#pragma once
#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "component.h"
#include "exporter_helper.h"

struct otlp_tls_config {
        bool insecure;             /* plaintext */
        bool insecure_skip_verify; /* TLS without checking the server's certificate */
        char *ca_file, *cert_file, *key_file;
        char *server_name_override;
};

enum otlp_compression { OTLP_COMPRESSION_GZIP, OTLP_COMPRESSION_NONE };

struct otlp_exporter_config {
        char *endpoint;
        struct otlp_tls_config tls;
        struct st_kvv headers;
        int compression; /* enum otlp_compression */
        int64_t timeout; /* ns, per attempt */
        struct st_retry_config retry_on_failure;
        struct st_queue_config sending_queue;
};

struct otlp_exporter {
        char *log_name;
        const struct otlp_exporter_config *cfg;
        char *target;  /* gRPC target, "dns:///host:port" or "ipv4:addr:port" */
        bool use_tls;
        grpc_channel *channel;
        void *method[ST_SIGNAL_COUNT]; /* grpc_channel_register_call handles */
        grpc_metadata *md;             /* headers, sent with every call */
        size_t n_md;
        struct st_exporter_helper *helper;
        atomic_int_least64_t cut_at;   /* calls still running past this are cancelled (shutdown) */
        atomic_bool reconnect;         /* a call found no connection: skip the channel's backoff */

        pthread_t watch_thread;        /* otlp_watch.c */
        grpc_completion_queue *watch_cq;
        pthread_mutex_t watch_lock;    /* the fields below, and the channel against its destruction */
        pthread_cond_t watch_cond;     /* a ready channel's watcher sleeps on it */
        bool watch_stop, watch_kicked;
        bool watching;

        pthread_mutex_t log_lock;      /* partial-success warnings, at most one a second */
        int64_t last_partial_log;
        uint64_t partial_suppressed;
};

/* The channel credentials the tls settings ask for. Reads the PEM files. On failure,
 * errbuf says what went wrong (for the caller's log). */
int otlp_channel_credentials(const struct otlp_tls_config *tls, bool use_tls, grpc_channel_credentials **ret,
                             char *errbuf, size_t errlen);

/* The thread that polls the channel between calls and logs its connection state. */
int otlp_watch_start(struct otlp_exporter *e);
/* An export failed: the watcher, which sleeps while the channel is ready, looks again. */
void otlp_watch_kick(struct otlp_exporter *e);
/* Destroys the channel (when there is one) and stops the watcher (when started). */
void otlp_channel_close(struct otlp_exporter *e);

/* st_send_fn: one Export call. */
void otlp_send(void *exporter, st_batch *b, int64_t deadline_ns, struct st_send_result *res);
