/* Content-Encoding gzip and deflate for OTLP/HTTP bodies, bounded: a small body that inflates
 * beyond the limit (a "zip bomb") is refused as soon as the limit is crossed. */
#include <errno.h>
#include <stdlib.h>
#include <zlib.h>

#include "otlp_receiver.h"

#define ZCHUNK (1u << 30) /* zlib counts in uInt */

int otlprecv_inflate(const uint8_t *in, size_t n, size_t limit, uint8_t **ret, size_t *ret_len) {
        z_stream z = { 0 };
        uint8_t *out = NULL;
        size_t len = 0, cap;
        int zr, r;

        /* 32 + 15: a gzip or zlib header, told apart by zlib itself. */
        if (inflateInit2(&z, 32 + 15) != Z_OK)
                return -ENOMEM;
        /* Telemetry compresses well: start at 4x, grow by doubling up to the limit (+1 to see
         * that it was crossed). */
        cap = n > limit / 4 ? limit + 1 : (n * 4 < 4096 ? 4096 : n * 4);
        if (cap > limit + 1)
                cap = limit + 1;
        out = malloc(cap);
        if (!out) {
                r = -ENOMEM;
                goto fail;
        }
        z.next_in = (Bytef *) in;
        for (;;) {
                size_t left = n - (size_t) ((const uint8_t *) z.next_in - in);
                z.avail_in = (uInt) (left > ZCHUNK ? ZCHUNK : left);
                if (len == cap) {
                        if (cap > limit) {
                                r = -EMSGSIZE;
                                goto fail;
                        }
                        size_t ncap = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
                        uint8_t *p = realloc(out, ncap);
                        if (!p) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        out = p;
                        cap = ncap;
                }
                z.next_out = out + len;
                z.avail_out = (uInt) (cap - len > ZCHUNK ? ZCHUNK : cap - len);
                uInt before = z.avail_out;
                zr = inflate(&z, Z_NO_FLUSH);
                len += before - z.avail_out;
                if (len > limit) {
                        r = -EMSGSIZE;
                        goto fail;
                }
                if (zr == Z_STREAM_END) {
                        /* Concatenated gzip members are one body. */
                        if ((size_t) ((const uint8_t *) z.next_in - in) == n)
                                break;
                        if (inflateReset(&z) != Z_OK) {
                                r = -EBADMSG;
                                goto fail;
                        }
                        continue;
                }
                if (zr == Z_BUF_ERROR && z.avail_out != 0) {
                        r = -EBADMSG; /* the input ended before the stream did */
                        goto fail;
                }
                if (zr != Z_OK && zr != Z_BUF_ERROR) {
                        r = zr == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
                        goto fail;
                }
        }
        inflateEnd(&z);
        *ret = out;
        *ret_len = len;
        return 0;
fail:
        inflateEnd(&z);
        free(out);
        return r;
}
