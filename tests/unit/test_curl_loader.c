/* libcurl loaded on first use (agent/curl_loader.c): it works, and where it cannot be loaded
 * every entry point fails cleanly with -ELIBACC instead of crashing. Each case runs in a
 * child process, since the library is loaded once per process. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "curl_loader.h"
#include "ecs_metadata.h"
#include "log.h"

/* Runs fn in a child; its exit status is what it returns (0: pass). */
static int in_child(int (*fn)(void)) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(fn());
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

static int loads(void) {
        if (st_curl_load() != 0)
                return 1;
        CURL *h = st_curl_easy_init();
        if (!h)
                return 2;
        /* a request that needs no network: a file:// URL */
        if (st_curl_easy_setopt(h, CURLOPT_URL, "file:///proc/self/status") != CURLE_OK)
                return 3;
        st_curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        if (st_curl_easy_perform(h) != CURLE_OK)
                return 4;
        char *esc = st_curl_easy_escape(h, "a b", 0);
        if (!esc || strcmp(esc, "a%20b") != 0)
                return 5;
        st_curl_free(esc);
        struct curl_slist *l = st_curl_slist_append(NULL, "X-Test: 1");
        if (!l)
                return 6;
        st_curl_slist_free_all(l);
        st_curl_easy_cleanup(h);
        if (strcmp(st_curl_easy_strerror(CURLE_OK), "No error") != 0)
                return 7;
        return 0;
}

static int missing(void) {
        setenv("STRATA_TEST_CURL_SONAME", "libcurl-that-is-not-there.so.4", 1);
        char err[256] = "";
        if (st_curl_load() != -ELIBACC || st_curl_easy_init() != NULL || st_curl_init_error(err, sizeof(err)) != -ELIBACC ||
            !strstr(err, "libcurl cannot be loaded"))
                return 1;
        /* a client says so in its own error, and returns instead of crashing */
        char *body = NULL;
        size_t len = 0;
        memset(err, 0, sizeof(err));
        if (st_ecs_get("http://127.0.0.1:9", "/task", &body, &len, err, sizeof(err)) != -ELIBACC ||
            !strstr(err, "libcurl cannot be loaded") || body)
                return 4;
        if (st_curl_slist_append(NULL, "X: y") != NULL)
                return 2;
        /* the NULL-safe ones do nothing, the strerror says why */
        st_curl_slist_free_all(NULL);
        st_curl_free(NULL);
        st_curl_easy_cleanup(NULL);
        if (!strstr(st_curl_easy_strerror(CURLE_OK), "not loaded"))
                return 3;
        return 0;
}

static void test_loads(void **state) { assert_int_equal(in_child(loads), 0); }
static void test_missing_library(void **state) { assert_int_equal(in_child(missing), 0); }

int main(void) {
        st_log_setup(ST_LOG_INFO, ST_LOG_TEXT);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_loads),
                cmocka_unit_test(test_missing_library),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
