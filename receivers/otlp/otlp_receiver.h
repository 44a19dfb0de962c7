/* The OTLP receiver's parts, shared between its files: the config, the receiver instance, the
 * decoding of request bodies, the hand-off to the pipelines, google.rpc.Status, and the gRPC
 * and HTTP servers. Nothing here is used outside receivers/otlp/ except by its unit test. */
#pragma once
#include "rpc_status.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "unix_socket.h"
#include "component.h"

/* --- config ------------------------------------------------------------------------------ */

struct otlprecv_tls_config {
        char *cert_file, *key_file;
};

struct otlprecv_grpc_config {
        char *endpoint;          /* "host:port" or "unix:///path"; "" = no TCP listener */
        char *unix_socket;       /* "/path" or "unix:///path": an extra listener */
        char *unix_socket_mode;  /* octal, "0660" */
        uint64_t max_recv_msg_size;
        int64_t max_concurrent_streams; /* 0 = gRPC's default */
        struct otlprecv_tls_config tls;
        bool has_tls;
};

struct otlprecv_http_config {
        char *endpoint;
        uint64_t max_request_body_size;
        uint64_t max_recv_msg_size; /* the gRPC section's name, accepted here too; 0 = not given */
        char *traces_url_path, *metrics_url_path, *logs_url_path;
};

struct otlprecv_protocols {
        struct otlprecv_grpc_config grpc;
        struct otlprecv_http_config http;
        bool has_grpc, has_http; /* the section is present: the protocol is on */
};

struct otlprecv_config {
        struct otlprecv_protocols protocols;
        bool attribute_senders; /* process.pid from the kernel's view of the connection (peer.h) */
};

/* The effective HTTP body limit (max_recv_msg_size wins when given). */
uint64_t otlprecv_http_body_limit(const struct otlprecv_http_config *c);
/* unix_socket: "/abs/path" or "unix:///abs/path" → the path (points into s). -EINVAL otherwise. */
int otlprecv_unix_path(const char *s, const char **ret_path);

/* --- the instance -------------------------------------------------------------------------- */

struct otlprecv_grpc;
struct otlprecv_http;

struct otlprecv {
        struct st_component_settings set;
        const struct otlprecv_config *cfg;
        struct otlprecv_grpc *grpc;
        struct otlprecv_http *http;
};

/* Ports bound by start() (0 when the protocol is off or listens on a Unix socket only). For
 * tests and for the start-up log line. */
void otlprecv_ports(void *self, int *ret_grpc, int *ret_http);

/* --- decoding and delivery (otlp_decode.c) ------------------------------------------------- */

enum otlprecv_encoding { OTLPRECV_PROTOBUF, OTLPRECV_JSON };

/* Decodes an Export*ServiceRequest of signal s. Returns -EBADMSG with a client-facing message
 * in err ("failed to decode ExportTraceServiceRequest (12 bytes)"), or -ENOMEM. */
int otlprecv_decode(enum st_signal s, enum otlprecv_encoding enc, const uint8_t *data, size_t len,
                    st_batch **ret, char *err, size_t errlen);
/* The same for protobuf bytes that arrived in n pieces; they are gathered into the batch. */
int otlprecv_decode_parts(enum st_signal s, const struct iovec *parts, size_t n, st_batch **ret, char *err,
                          size_t errlen);

/* Hands b to the pipeline of its signal, synchronously, and counts its items as accepted or
 * refused. peer (NULL: unknown) is who sent it: with attribute_senders, b's resources are
 * attributed to it first. Returns 0, -ENOSYS when no pipeline takes the signal, or the
 * consumer's error. */
struct st_peer;
int otlprecv_deliver(struct otlprecv *r, st_batch *b, const struct st_peer *peer);

/* What a request's outcome becomes on the wire. */
enum otlprecv_outcome {
        OTLPRECV_OK,
        OTLPRECV_BAD_REQUEST,   /* gRPC INVALID_ARGUMENT, HTTP 400 */
        OTLPRECV_RETRY_LATER,   /* gRPC RESOURCE_EXHAUSTED + RetryInfo, HTTP 429 + Retry-After */
        OTLPRECV_UNAVAILABLE,   /* gRPC UNAVAILABLE, HTTP 503 + Retry-After */
        OTLPRECV_UNIMPLEMENTED, /* gRPC UNIMPLEMENTED, HTTP 404 */
};
/* Maps otlprecv_deliver()'s result and writes the message that goes with it. */
enum otlprecv_outcome otlprecv_outcome(enum st_signal s, int r, char *msg, size_t msglen);

/* The delay clients are told to wait after a pushback (RetryInfo, Retry-After). */
#define OTLPRECV_RETRY_DELAY_S 1

/* Inflates a gzip or zlib ("deflate") body into a new malloc'd buffer. -EMSGSIZE when the
 * output exceeds limit bytes, -EBADMSG when the input is not valid. (otlp_inflate.c) */
int otlprecv_inflate(const uint8_t *in, size_t n, size_t limit, uint8_t **ret, size_t *ret_len);

/* --- servers ---------------------------------------------------------------------------- */

int otlprecv_grpc_start(struct otlprecv *r, const struct otlprecv_grpc_config *c, struct otlprecv_grpc **ret);
int otlprecv_grpc_port(const struct otlprecv_grpc *g);
/* Stops accepting, lets in-flight calls finish until deadline_ns, then cancels; frees g. */
void otlprecv_grpc_stop(struct otlprecv_grpc *g, int64_t deadline_ns);

int otlprecv_http_start(struct otlprecv *r, const struct otlprecv_http_config *c, struct otlprecv_http **ret);
int otlprecv_http_port(const struct otlprecv_http *h);
void otlprecv_http_stop(struct otlprecv_http *h, int64_t deadline_ns);
