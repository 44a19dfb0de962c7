/* google.rpc.Status, the error body of OTLP: packed (gRPC's grpc-status-details-bin trailer,
 * OTLP/HTTP protobuf bodies) or in the protobuf JSON mapping (OTLP/HTTP JSON bodies). A
 * google.rpc.RetryInfo detail tells OTLP clients that an error is worth retrying, and when. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define ST_RETRY_INFO_TYPE_URL "type.googleapis.com/google.rpc.RetryInfo"

/* Appends Status{code, message, details: [RetryInfo{retry_delay}] when retry_delay_ns >= 0}. */
int st_rpc_status_pack(int code, const char *message, int64_t retry_delay_ns, st_buf *out);
int st_rpc_status_json(int code, const char *message, int64_t retry_delay_ns, st_buf *out);

/* Reads a packed Status: 1 and the RetryInfo delay (clamped to a day) when it carries one,
 * 0 when it does not, -EBADMSG when it does not parse. */
int st_rpc_status_retry_delay(const uint8_t *data, size_t len, int64_t *ret_delay_ns);
