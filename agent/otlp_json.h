/* OTLP/JSON ⇄ protobuf-c messages, driven by the protobuf-c descriptors, with the OTLP/JSON
 * rules: lowerCamelCase field names (snake_case accepted on input), trace/span ids as hex (not
 * base64), other bytes base64, enums as integers (names accepted on input), 64-bit integers as
 * decimal strings (numbers accepted on input), unknown fields ignored. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#include "buf.h"

/* Decodes json into a new message allocated with alloc (an arena). On error returns
 * -EBADMSG and writes a message naming the JSON path ("resourceSpans[0].scopeSpans[1]...:
 * expected string") to err. */
int st_otlp_json_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                        ProtobufCAllocator *alloc, ProtobufCMessage **ret, char *err, size_t errlen);

/* Appends m as OTLP/JSON to out (one line unless pretty). */
int st_otlp_json_encode(const ProtobufCMessage *m, st_buf *out, bool pretty);
