/* Checks and reads OTLP requests in their wire form, without decoding them.
 *
 * The pass-through path (receive → batch → export with no processor that changes data) never
 * needs the decoded structs: it checks the bytes once, counts the items, and sends the same
 * bytes on. Two serialized requests placed end to end are one valid request holding both
 * (repeated fields concatenate), which is how batches merge without re-encoding. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "otlp.h"

/* Returns 0 when data is a well-formed encoding of desc, recursively (wire types match the
 * fields, lengths and varints are complete, packed arrays are whole), i.e. when protobuf-c
 * would unpack it; -EBADMSG otherwise, -ENOMEM when the first check of a message type cannot
 * build its field table. Nesting deeper than ST_WIRE_MAX_DEPTH is refused. Thread-safe. */
#define ST_WIRE_MAX_DEPTH 64
int st_wire_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len);

/* Items (spans, metric data points, log records) in a request that passed st_wire_check(). */
size_t st_wire_items(enum st_signal s, const uint8_t *data, size_t len);
