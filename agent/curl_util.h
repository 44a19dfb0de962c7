/* What every libcurl client of strata sets the same way: a response body collected into a
 * buffer up to a limit, and a transfer that aborts when its owner is stopping (so that a
 * shutdown never waits for a request's timeout). */
#pragma once
#include "curl_loader.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

struct st_curl_body {
        st_buf b;
        uint64_t limit; /* bytes; beyond, the transfer fails and too_big says why */
        bool too_big;
};

/* The response body of h goes into body (which must outlive the transfer). */
void st_curl_collect(CURL *h, struct st_curl_body *body);
/* h aborts (CURLE_ABORTED_BY_CALLBACK) once *stop is true; stop NULL: never. */
void st_curl_abort_when(CURL *h, const atomic_bool *stop);
