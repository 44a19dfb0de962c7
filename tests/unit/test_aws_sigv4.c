/* SigV4 against AWS's published test suite (../shared/testdata/aws-sig-v4-test-suite, used in
 * place): for every case, the canonical request, the string to sign and the Authorization
 * header must be byte for byte AWS's. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "aws_sigv4.h"

#define ACCESS_KEY "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static char *slurp(const char *path) {
        FILE *f = fopen(path, "rb");
        if (!f)
                return NULL;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *s = malloc((size_t) n + 1);
        if (s && fread(s, 1, (size_t) n, f) != (size_t) n) {
                free(s);
                s = NULL;
        }
        if (s)
                s[n] = '\0';
        fclose(f);
        return s;
}

struct req {
        char *method, *path, *query;
        struct st_sigv4_header h[32];
        size_t n;
        const char *body;
        char *folded[8]; /* the values joined from folded lines, to free */
        size_t n_folded;
};

/* "METHOD /path?query HTTP/1.1\nName:value\n  folded\n\nbody" */
static void parse_req(char *text, struct req *r) {
        memset(r, 0, sizeof(*r));
        char *nl = strchr(text, '\n');
        assert_non_null(nl);
        *nl = '\0';
        char *sp = strchr(text, ' '), *proto = strstr(text, " HTTP/");
        assert_non_null(sp);
        assert_non_null(proto);
        *sp = '\0';
        *proto = '\0';
        r->method = text;
        r->path = sp + 1;
        char *q = strchr(r->path, '?');
        if (q) {
                *q = '\0';
                r->query = q + 1;
        }
        char *line = nl + 1;
        while (line && *line) {
                char *end = strchr(line, '\n');
                if (end)
                        *end = '\0';
                if (!*line) {
                        r->body = end ? end + 1 : "";
                        return;
                }
                if ((*line == ' ' || *line == '\t') && r->n) {
                        /* a folded line: the value goes on (the signer joins the lines) */
                        char *v;
                        assert_true(asprintf(&v, "%s\n%s", r->h[r->n - 1].value, line) > 0);
                        r->h[r->n - 1].value = v;
                        assert_true(r->n_folded < 8);
                        r->folded[r->n_folded++] = v;
                } else {
                        char *colon = strchr(line, ':');
                        assert_non_null(colon);
                        *colon = '\0';
                        assert_true(r->n < 32);
                        r->h[r->n++] = (struct st_sigv4_header) { line, colon + 1 };
                }
                line = end ? end + 1 : NULL;
        }
        r->body = "";
}

static size_t cases, quirks;

static void check_case(const char *dir, const char *name) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s.req", dir, name);
        char *text = slurp(path);
        assert_non_null(text);
        struct req r;
        parse_req(text, &r);
        struct st_sigv4_input in = {
                .method = r.method, .path = r.path, .query = r.query, .headers = r.h, .n_headers = r.n,
                .body = r.body, .body_len = strlen(r.body), .region = "us-east-1", .service = "service",
                .amz_date = "20150830T123600Z",
        };
        st_buf authz = { 0 }, creq = { 0 }, sts = { 0 };
        assert_int_equal(st_sigv4_sign(&in, ACCESS_KEY, SECRET, &authz, &creq, &sts), 0);
        const char *ext[] = { "creq", "sts", "authz" };
        st_buf *got[] = { &creq, &sts, &authz };
        /* The suite is not self-consistent everywhere: the .sts of the form-urlencoded cases
         * does not hash their own .creq (no signer can reproduce their .sts and .authz). Such
         * cases are found, not listed: they are compared on the canonical request only. */
        char creq_hash[65];
        snprintf(path, sizeof(path), "%s/%s.creq", dir, name);
        char *their_creq = slurp(path), *their_sts;
        assert_non_null(their_creq);
        st_sha256_hex(their_creq, strlen(their_creq), creq_hash);
        snprintf(path, sizeof(path), "%s/%s.sts", dir, name);
        assert_non_null(their_sts = slurp(path));
        bool quirk = !strstr(their_sts, creq_hash);
        free(their_creq);
        free(their_sts);
        for (int i = 0; i < (quirk ? 1 : 3); i++) {
                snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext[i]);
                char *want = slurp(path);
                assert_non_null(want);
                if (strcmp(st_buf_cstr(got[i]), want) != 0)
                        fail_msg("%s.%s differs:\n--- AWS\n%s\n--- strata\n%s", name, ext[i], want, st_buf_cstr(got[i]));
                free(want);
        }
        quirks += quirk;
        cases++;
        st_buf_free(&authz);
        st_buf_free(&creq);
        st_buf_free(&sts);
        for (size_t i = 0; i < r.n_folded; i++)
                free(r.folded[i]);
        free(text);
}

/* Every folder holding NAME.req (the suite nests some: normalize-path/, post-sts-token/). */
static void walk(const char *dir) {
        DIR *d = opendir(dir);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char path[4096];
                struct stat st;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                if (stat(path, &st) < 0)
                        continue;
                if (S_ISDIR(st.st_mode))
                        walk(path);
                else {
                        size_t n = strlen(de->d_name);
                        if (n > 4 && strcmp(de->d_name + n - 4, ".req") == 0) {
                                char name[256];
                                snprintf(name, sizeof(name), "%.*s", (int) (n - 4), de->d_name);
                                check_case(dir, name);
                        }
                }
        }
        closedir(d);
}

static void test_aws_suite(void **state) {
        (void) state;
        const char *src = getenv("STRATA_SOURCE_DIR");
        char dir[4096];
        assert_non_null(src);
        snprintf(dir, sizeof(dir), "%s/../shared/testdata/aws-sig-v4-test-suite/aws-sig-v4-test-suite", src);
        struct stat st;
        if (stat(dir, &st) < 0) {
                print_message("AWS's SigV4 test suite is not at %s (../shared beside the repository): SKIPPED\n", dir);
                skip();
        }
        walk(dir);
        print_message("%zu SigV4 cases of AWS's suite match (%zu compared on the canonical request only)\n", cases, quirks);
        assert_true(cases >= 30);
        assert_true(quirks <= 2); /* the two form-urlencoded cases, no more */
}

/* A request as strata sends them (CloudWatch's query protocol), with a session token. */
static void test_session_token_and_dates(void **state) {
        (void) state;
        char d[17];
        st_amz_date(1440938160, d);
        assert_string_equal(d, "20150830T123600Z");
        const char *body = "Action=ListMetrics&Version=2010-08-01";
        struct st_sigv4_header h[] = {
                { "Host", "monitoring.eu-west-1.amazonaws.com" },
                { "Content-Type", "application/x-www-form-urlencoded; charset=utf-8" },
                { "X-Amz-Date", "20150830T123600Z" },
                { "X-Amz-Security-Token", "tok" },
        };
        struct st_sigv4_input in = { .method = "POST", .path = "/", .headers = h, .n_headers = 4, .body = body,
                                     .body_len = strlen(body), .region = "eu-west-1", .service = "monitoring",
                                     .amz_date = "20150830T123600Z" };
        st_buf a = { 0 };
        assert_int_equal(st_sigv4_sign(&in, "AKID", "secret", &a, NULL, NULL), 0);
        assert_non_null(strstr(st_buf_cstr(&a), "Credential=AKID/20150830/eu-west-1/monitoring/aws4_request, "
                                                "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="));
        st_buf_free(&a);
        in.region = NULL;
        assert_int_equal(st_sigv4_sign(&in, "AKID", "secret", &a, NULL, NULL), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_aws_suite),
                cmocka_unit_test(test_session_token_and_dates),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
