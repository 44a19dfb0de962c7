/* Fuzz target: YAML config text through st_service_load (tree, env substitution, config maps,
 * component validation, pipelines). It must never crash or leak, and every problem must be
 * reported as a "NAME:LINE:COL: message" line; a refusal always says why. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "service.h"
#include "tree.h"

#define NAME "fuzz.yaml"

#define CHECK(cond, ...)                                                                                    \
        do {                                                                                                \
                if (!(cond)) {                                                                              \
                        fprintf(stderr, "fuzz_config: %s:%d: %s: ", __FILE__, __LINE__, #cond);             \
                        fprintf(stderr, __VA_ARGS__);                                                       \
                        fputc('\n', stderr);                                                                \
                        abort();                                                                            \
                }                                                                                           \
        } while (0)

/* "NAME:<digits>:<digits>: " with line and column from 1. */
static bool good_line(const char *l, size_t n) {
        size_t k = strlen(NAME);
        if (n < k + 1 || memcmp(l, NAME ":", k + 1) != 0)
                return false;
        size_t i = k + 1;
        for (int part = 0; part < 2; part++) {
                unsigned long v = 0;
                size_t start = i;
                while (i < n && l[i] >= '0' && l[i] <= '9')
                        v = v * 10 + (unsigned long) (l[i++] - '0');
                if (i == start || v == 0 || i >= n || l[i] != ':')
                        return false;
                i++;
        }
        return i < n && l[i] == ' ';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* The text is not NUL-terminated on purpose: the loader takes a length. */
        struct st_diag d = { 0 };
        struct st_service *svc = NULL;
        int r = st_service_load(NAME, (const char *) data, size, &d, &svc);
        const char *t = d.text.data ? d.text.data : "";
        size_t tl = d.text.len;
        if (r < 0) {
                CHECK(r == -EINVAL, "st_service_load: %d", r);
                CHECK(d.errors > 0 && tl > 0, "refused without a diagnostic");
                CHECK(svc == NULL, "ret written on failure");
        } else {
                CHECK(svc, "success without a service");
                CHECK(d.errors == 0, "success with %zu errors", d.errors);
        }
        size_t lines = 0;
        for (size_t i = 0; i < tl;) {
                const char *nl = memchr(t + i, '\n', tl - i);
                size_t n = nl ? (size_t) (nl - (t + i)) : tl - i;
                CHECK(good_line(t + i, n), "diagnostic line not in %s:LINE:COL: form: \"%.*s\"\n--- all\n%.*s", NAME, (int) n,
                      t + i, (int) tl, t);
                CHECK(nl, "last diagnostic line not terminated");
                lines++;
                i += n + 1;
        }
        CHECK(lines == d.errors, "%zu diagnostic lines for %zu errors\n--- all\n%.*s", lines, d.errors, (int) tl, t);
        st_service_free(svc);
        st_diag_free(&d);
        return 0;
}
