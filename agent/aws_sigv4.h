/* AWS Signature Version 4 (the "Authorization: AWS4-HMAC-SHA256 …" header), over OpenSSL's
 * SHA-256 and HMAC, as AWS documents it and its published test suite checks it:
 *
 *   canonical request = method \n canonical path \n canonical query \n canonical headers \n
 *                       signed headers \n hex(sha256(body))
 *   string to sign    = "AWS4-HMAC-SHA256" \n date \n scope \n hex(sha256(canonical request))
 *   signing key       = HMAC chain of "AWS4"+secret over date, region, service, "aws4_request"
 *
 * The path and query are given raw (as bytes, not percent-encoded) and encoded once here;
 * headers are signed as given (the caller includes host and x-amz-date, and
 * x-amz-security-token for temporary credentials). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct st_sigv4_header {
        const char *name, *value;
};

struct st_sigv4_input {
        const char *method;
        const char *path;   /* "/" when empty */
        const char *query;  /* after the '?', NULL or "" for none */
        const struct st_sigv4_header *headers;
        size_t n_headers;
        const void *body;
        size_t body_len;
        const char *region, *service;
        const char *amz_date; /* "20150830T123600Z" (UTC); its first 8 characters are the scope date */
        bool keep_path;       /* S3: the path as given (no dot-segment removal, no // collapsing) */
};

/* The canonical request, the string to sign, and the Authorization header's value, into the
 * buffers given (any may be NULL). -EINVAL for an input that cannot be signed, -ENOMEM. */
int st_sigv4_sign(const struct st_sigv4_input *in, const char *access_key_id, const char *secret_access_key,
                  st_buf *ret_authorization, st_buf *ret_canonical, st_buf *ret_string_to_sign);

/* hex(sha256(data)) into out[65]. */
void st_sha256_hex(const void *data, size_t len, char out[65]);

/* "20150830T123600Z" for a Unix time (UTC). */
void st_amz_date(long long unix_s, char out[17]);
