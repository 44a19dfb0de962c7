/* Every config file we ship (config/default.yaml and each YAML file in config/examples/) loads:
 * it names only components this build has, with keys they know. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "service.h"
#include "tree.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"

static void check_file(const char *path) {
        FILE *f = fopen(path, "re");
        char *text;
        long n;
        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        rewind(f);
        text = malloc((size_t) n + 1);
        assert_non_null(text);
        assert_int_equal(fread(text, 1, (size_t) n, f), (size_t) n);
        fclose(f);
        struct st_diag d = { 0 };
        struct st_service *s = NULL;
        if (st_service_load(path, text, (size_t) n, &d, &s) < 0)
                fail_msg("%s: %s", path, st_buf_cstr(&d.text));
        st_service_free(s);
        st_diag_free(&d);
        free(text);
}

static void test_examples(void **state) {
        const char *src = getenv("STRATA_SOURCE_DIR");
        char path[4096];
        size_t checked = 0;
        assert_non_null(src);
        snprintf(path, sizeof(path), "%s/config/default.yaml", src);
        check_file(path);
        snprintf(path, sizeof(path), "%s/config/default-ecs.yaml", src);
        check_file(path);
        snprintf(path, sizeof(path), "%s/config/examples", src);
        DIR *d = opendir(path);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (l < 6 || strcmp(de->d_name + l - 5, ".yaml") != 0)
                        continue;
                snprintf(path, sizeof(path), "%s/config/examples/%s", src, de->d_name);
                check_file(path);
                checked++;
        }
        closedir(d);
        assert_true(checked > 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_examples),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
