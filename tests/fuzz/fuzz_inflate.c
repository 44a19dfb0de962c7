/* Fuzz target: the OTLP receivers' gzip/deflate body inflation (otlprecv_inflate), bounded.
 *
 * Input: two bytes giving a limit (in 16-byte units), then the compressed body. Checked: the
 * limit holds, the result does not depend on the limit (a generous limit gives the same bytes;
 * a body that fits a small limit inflates the same under it), errors are the documented ones. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Internal to receivers/otlp (declared in receivers/otlp/otlp_receiver.h), built into
 * strata_core. */
int otlprecv_inflate(const uint8_t *in, size_t n, size_t limit, uint8_t **ret, size_t *ret_len);

#define CHECK(cond, ...)                                                                                    \
        do {                                                                                                \
                if (!(cond)) {                                                                              \
                        fprintf(stderr, "fuzz_inflate: %s:%d: %s: ", __FILE__, __LINE__, #cond);            \
                        fprintf(stderr, __VA_ARGS__);                                                       \
                        fputc('\n', stderr);                                                                \
                        abort();                                                                            \
                }                                                                                           \
        } while (0)

#define BIG (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 2)
                return 0;
        size_t limit = ((size_t) data[0] << 8 | data[1]) * 16;
        data += 2, size -= 2;

        uint8_t *small = NULL, *big = NULL;
        size_t ns = 0, nb = 0;
        int rs = otlprecv_inflate(data, size, limit, &small, &ns);
        int rb = otlprecv_inflate(data, size, BIG, &big, &nb);
        CHECK(rs == 0 || rs == -EBADMSG || rs == -EMSGSIZE, "limit %zu: %d", limit, rs);
        CHECK(rb == 0 || rb == -EBADMSG || rb == -EMSGSIZE, "big limit: %d", rb);
        if (rs == 0) {
                CHECK(ns <= limit, "%zu bytes out, limit %zu", ns, limit);
                CHECK(rb == 0 && nb == ns && memcmp(big, small, ns) == 0, "result depends on the limit (%d)", rb);
        }
        if (rb == 0) {
                CHECK(nb <= BIG, "%zu bytes out, limit %u", nb, BIG);
                if (nb <= limit)
                        CHECK(rs == 0, "fits the limit %zu (%zu bytes) but refused: %d", limit, nb, rs);
                else
                        CHECK(rs == -EMSGSIZE, "%zu bytes over the limit %zu, got %d", nb, limit, rs);
        }
        free(small);
        free(big);
        return 0;
}
