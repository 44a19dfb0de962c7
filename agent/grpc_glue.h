/* gRPC C-core glue that OTLP clients and servers share: deadlines, packing a batch into a
 * byte buffer, reading a message back, status names, google.rpc.Status/RetryInfo in
 * `grpc-status-details-bin`, and endpoint → target. Library-style: no logging of its own. */
#pragma once
#include <grpc/grpc.h>
#include <stdbool.h>
#include <stdint.h>

#include "batch.h"

#define ST_GRPC_STATUS_DETAILS_KEY "grpc-status-details-bin"

/* An absolute CLOCK_MONOTONIC time (st_now_ns()) as a gRPC deadline; INT64_MAX = none. */
gpr_timespec st_grpc_deadline(int64_t deadline_ns);

/* A protobuf-c message serialized once, straight into a gRPC slice that the returned byte
 * buffer owns. */
int st_grpc_pack_message(const ProtobufCMessage *m, grpc_byte_buffer **ret);
/* The same for a batch, from its cheapest form: wire bytes are referenced by slices (no copy,
 * no re-encoding); only decoded batches are packed. */
int st_grpc_pack_batch(const st_batch *b, grpc_byte_buffer **ret);

/* A received message as one contiguous slice (decompressed when needed); unref it. */
int st_grpc_message_slice(grpc_byte_buffer *bb, grpc_slice *ret);

/* "UNAVAILABLE" etc.; "UNKNOWN(42)"-style codes come back as "UNKNOWN". */
const char *st_grpc_status_name(grpc_status_code code);

/* The value of key in md (keys compared exactly), or NULL. */
const grpc_slice *st_grpc_metadata_find(const grpc_metadata_array *md, const char *key);

/* Looks for google.rpc.RetryInfo in the google.rpc.Status carried by trailing metadata.
 * Returns 1 and the delay (>= 0) when there is one, 0 when there is none, -EBADMSG when the
 * details do not parse. */
int st_grpc_retry_info(const grpc_metadata_array *trailers, int64_t *ret_delay_ns);

/* For servers: google.rpc.Status{code, message, details: [RetryInfo{retry_delay}]}, packed
 * into a new slice to send as trailing metadata under ST_GRPC_STATUS_DETAILS_KEY. */
int st_grpc_status_details_retry(grpc_status_code code, const char *message, int64_t delay_ns, grpc_slice *ret);

/* Where a configured endpoint says to connect, and whether its scheme decided TLS. */
enum st_grpc_scheme {
        ST_GRPC_SCHEME_NONE,  /* "host:port", "dns:///host:port", "unix:///path": the tls settings decide */
        ST_GRPC_SCHEME_HTTP,  /* "http://host:port": plaintext */
        ST_GRPC_SCHEME_HTTPS, /* "https://host:port": TLS */
};
/* Accepts "host:port", "[v6]:port", "dns:///host:port", "dns://resolver/host:port",
 * "unix:///path", and "http://"/"https://" + host:port (a trailing "/" is tolerated, a path is
 * not). *ret_target is a malloc'ed gRPC target: "dns:///host:port", or "ipv4:1.2.3.4:port" /
 * "ipv6:[::1]:port" for address literals (no resolver involved); -EINVAL when malformed. */
int st_grpc_target_from_endpoint(const char *endpoint, char **ret_target, enum st_grpc_scheme *ret_scheme);

/* Sends gRPC's own log lines (handshake failures and the like) through st_log as component
 * "grpc", errors as warnings (what they cost us is reported by whoever retries) and the rest
 * at debug. Process-wide and idempotent: whoever initializes gRPC may call it. */
void st_grpc_route_logs(void);
