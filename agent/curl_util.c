#include "curl_util.h"

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
        struct st_curl_body *b = ud;
        if (b->b.len + size * n > b->limit) {
                b->too_big = true;
                return 0;
        }
        return st_buf_append(&b->b, p, size * n) < 0 ? 0 : size * n;
}

void st_curl_collect(CURL *h, struct st_curl_body *body) {
        st_curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        st_curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
        (void) a, (void) b, (void) c, (void) d;
        const atomic_bool *stop = ud;
        return stop && atomic_load(stop) ? 1 : 0;
}

void st_curl_abort_when(CURL *h, const atomic_bool *stop) {
        if (!stop)
                return;
        st_curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        st_curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        st_curl_easy_setopt(h, CURLOPT_XFERINFODATA, stop);
}
