/* The AWS credentials chain against local servers that answer as the ECS container
 * credentials endpoint, IMDSv2 and STS do: each source, their order, the IMDSv2 session token,
 * the ECS authorization token, refresh before expiry, and what is said when none has any
 * (never a secret). */
#include <errno.h>
#include <microhttpd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws_credentials.h"
#include "buf.h"

/* --- the fake AWS endpoints ------------------------------------------------------------------ */

static int ecs_calls, imds_token_calls, sts_calls;
static const char *IMDS_TOKEN = "imds-session-token-1";

struct upload {
        st_buf body;
};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned code, const char *body) {
        struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *) body, MHD_RESPMEM_MUST_COPY);
        enum MHD_Result ret = MHD_queue_response(c, code, r);
        MHD_destroy_response(r);
        return ret;
}

static char *iso(time_t t) {
        static char buf[4][32];
        static int i;
        struct tm tm;
        gmtime_r(&t, &tm);
        char *b = buf[i++ % 4];
        strftime(b, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return b;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *data, size_t *size, void **state) {
        (void) cls, (void) version;
        struct upload *u = *state;
        char body[2048];
        if (!u) {
                *state = calloc(1, sizeof(struct upload));
                return MHD_YES;
        }
        if (*size) {
                st_buf_append(&u->body, data, *size);
                *size = 0;
                return MHD_YES;
        }
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        const char *imds = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-aws-ec2-metadata-token");
        if (strncmp(url, "/ecs/", 5) == 0) {
                ecs_calls++;
                if (strcmp(url, "/ecs/full") == 0 && (!auth || strcmp(auth, "ecs-auth-token") != 0))
                        return answer(c, 401, "{\"message\":\"unauthorized\"}");
                /* the first credentials expire in 2 minutes: inside the refresh window */
                snprintf(body, sizeof(body),
                         "{\"AccessKeyId\":\"ASIAECS%d\",\"SecretAccessKey\":\"ecs-secret\",\"Token\":\"ecs-token\","
                         "\"Expiration\":\"%s\",\"RoleArn\":\"arn:aws:iam::1:role/task\"}",
                         ecs_calls, iso(time(NULL) + (ecs_calls == 1 ? 120 : 3600)));
                return answer(c, 200, body);
        }
        if (strcmp(url, "/latest/api/token") == 0 && strcmp(method, "PUT") == 0) {
                imds_token_calls++;
                if (!MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-aws-ec2-metadata-token-ttl-seconds"))
                        return answer(c, 400, "missing ttl");
                return answer(c, 200, IMDS_TOKEN);
        }
        if (strncmp(url, "/latest/meta-data/iam/security-credentials/", 43) == 0) {
                if (!imds || strcmp(imds, IMDS_TOKEN) != 0)
                        return answer(c, 401, "");
                if (!url[43])
                        return answer(c, 200, "instance-role\n");
                if (strcmp(url + 43, "instance-role") != 0)
                        return answer(c, 404, "");
                snprintf(body, sizeof(body),
                         "{\"Code\":\"Success\",\"LastUpdated\":\"%s\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAIMDS\","
                         "\"SecretAccessKey\":\"imds-secret\",\"Token\":\"imds-token\",\"Expiration\":\"%s\"}",
                         iso(time(NULL)), iso(time(NULL) + 6 * 3600));
                return answer(c, 200, body);
        }
        if (strcmp(url, "/sts/") == 0 && strcmp(method, "POST") == 0) {
                sts_calls++;
                const char *form = st_buf_cstr(&u->body);
                if (!strstr(form, "Action=AssumeRoleWithWebIdentity") || !strstr(form, "WebIdentityToken=eyJ.jwt.sig") ||
                    !strstr(form, "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fstrata"))
                        return answer(c, 400,
                                      "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>bad</Message></Error></ErrorResponse>");
                snprintf(body, sizeof(body),
                         "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                         "<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIAWEB</AccessKeyId>"
                         "<SecretAccessKey>web-secret</SecretAccessKey><SessionToken>web-token</SessionToken>"
                         "<Expiration>%s</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
                         "</AssumeRoleWithWebIdentityResponse>",
                         iso(time(NULL) + 3600));
                return answer(c, 200, body);
        }
        return answer(c, 404, "");
}

static void done(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode code) {
        (void) cls, (void) c, (void) code;
        struct upload *u = *state;
        if (u) {
                st_buf_free(&u->body);
                free(u);
        }
}

static struct MHD_Daemon *d;
static char base[64], dir[64];

static const char *const VARS[] = { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                                    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
                                    "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION",
                                    "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_DISABLED", "STRATA_TEST_ECS_CREDENTIALS_HOST", NULL };

static void clean_env(void) {
        for (size_t i = 0; VARS[i]; i++)
                unsetenv(VARS[i]);
        setenv("HOME", dir, 1); /* no ~/.aws of the machine's */
        setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static int setup(void **state) {
        (void) state;
        d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handle, NULL, MHD_OPTION_NOTIFY_COMPLETED, done, NULL,
                             MHD_OPTION_END);
        if (!d)
                return -1;
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        snprintf(base, sizeof(base), "http://127.0.0.1:%u", di->port);
        strcpy(dir, "/tmp/strata-aws-XXXXXX");
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
        (void) state;
        MHD_stop_daemon(d);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        return system(cmd) == 0 ? 0 : -1;
}

static void get(struct st_aws_creds *c, const char *want_source, const char *want_key) {
        struct st_aws_provider *p;
        char why[2048];
        assert_int_equal(st_aws_provider_new(&p), 0);
        if (st_aws_credentials(p, c, why, sizeof(why)) < 0)
                fail_msg("no credentials: %s", why);
        assert_string_equal(c->source, want_source);
        assert_string_equal(c->access_key_id, want_key);
        st_aws_provider_free(p);
}

static void write_file(const char *name, const char *text, char *path, size_t cap) {
        snprintf(path, cap, "%s/%s", dir, name);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

/* --- the tests ---------------------------------------------------------------------------------- */

static void test_order(void **state) {
        (void) state;
        struct st_aws_creds c;
        char cred[128], config[128], tok[128];
        clean_env();
        /* everything configured: the environment wins, then the files, ECS, web identity, IMDS */
        setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
        write_file("credentials", "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = file-secret\n", cred, sizeof(cred));
        setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
        setenv("STRATA_TEST_ECS_CREDENTIALS_HOST", base, 1);
        setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/rel", 1);
        write_file("token", "eyJ.jwt.sig\n", tok, sizeof(tok));
        setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tok, 1);
        setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/strata", 1);
        char sts[128];
        snprintf(sts, sizeof(sts), "%s/sts", base);
        setenv("AWS_ENDPOINT_URL_STS", sts, 1);
        setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", base, 1);
        unsetenv("AWS_EC2_METADATA_DISABLED");
        get(&c, "environment", "AKIAENV");
        unsetenv("AWS_ACCESS_KEY_ID");
        get(&c, "shared files", "AKIAFILE");
        unsetenv("AWS_SHARED_CREDENTIALS_FILE");
        get(&c, "web identity", "ASIAWEB"); /* before the container endpoint, as the SDKs have it */
        assert_string_equal(c.session_token, "web-token");
        unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
        get(&c, "ECS", "ASIAECS1");
        assert_string_equal(c.session_token, "ecs-token");
        assert_true(c.expires_unix > time(NULL));
        unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
        int before = imds_token_calls;
        get(&c, "IMDSv2", "ASIAIMDS");
        assert_string_equal(c.secret_access_key, "imds-secret");
        assert_int_equal(imds_token_calls, before + 1); /* the session token first */

        /* profiles: the credentials file by name, the config file as "profile NAME", region */
        clean_env();
        write_file("credentials", "[default]\naws_access_key_id=AKIADEF\naws_secret_access_key=x\n[dev]\naws_access_key_id = AKIADEV\n"
                   "aws_secret_access_key = y\naws_session_token = z\n", cred, sizeof(cred));
        write_file("config", "[default]\nregion = us-west-2\n[profile ops]\nregion = eu-central-1\naws_access_key_id = AKIAOPS\n"
                   "aws_secret_access_key = w\n", config, sizeof(config));
        setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
        setenv("AWS_CONFIG_FILE", config, 1);
        setenv("AWS_PROFILE", "dev", 1);
        get(&c, "shared files", "AKIADEV");
        assert_string_equal(c.session_token, "z");
        setenv("AWS_PROFILE", "ops", 1);
        get(&c, "shared files", "AKIAOPS");
        char region[64];
        st_aws_region(region, sizeof(region));
        assert_string_equal(region, "eu-central-1");
        setenv("AWS_REGION", "ap-south-1", 1);
        st_aws_region(region, sizeof(region));
        assert_string_equal(region, "ap-south-1");
}

static void test_ecs_full_uri_and_refresh(void **state) {
        (void) state;
        struct st_aws_creds c;
        struct st_aws_provider *p;
        char url[128], why[2048], tokfile[128];
        clean_env();
        ecs_calls = 0;
        snprintf(url, sizeof(url), "%s/ecs/full", base);
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
        setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong", 1);
        assert_int_equal(st_aws_provider_new(&p), 0);
        assert_int_equal(st_aws_credentials(p, &c, why, sizeof(why)), -ENOENT);
        assert_non_null(strstr(why, "ECS container credentials (full URI): HTTP 401"));
        assert_null(strstr(why, "wrong")); /* the token is not said */
        st_aws_provider_free(p);

        write_file("ecs-token", "ecs-auth-token\n", tokfile, sizeof(tokfile));
        setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokfile, 1); /* the file wins over the variable */
        ecs_calls = 0;
        assert_int_equal(st_aws_provider_new(&p), 0);
        assert_int_equal(st_aws_credentials(p, &c, why, sizeof(why)), 0);
        assert_string_equal(c.access_key_id, "ASIAECS1");
        /* they expire in 2 minutes, inside the 5-minute refresh window: fetched again */
        assert_int_equal(st_aws_credentials(p, &c, why, sizeof(why)), 0);
        assert_string_equal(c.access_key_id, "ASIAECS2");
        /* now valid for an hour: cached */
        assert_int_equal(st_aws_credentials(p, &c, why, sizeof(why)), 0);
        assert_int_equal(ecs_calls, 2);
        st_aws_provider_free(p);
}

static void test_none(void **state) {
        (void) state;
        struct st_aws_creds c;
        struct st_aws_provider *p;
        char why[2048], tok[128], sts[128];
        clean_env();
        /* web identity configured but STS refuses the token; IMDS reachable without a role path */
        write_file("token", "not-the-right-jwt", tok, sizeof(tok));
        setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tok, 1);
        setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/strata", 1);
        snprintf(sts, sizeof(sts), "%s/sts", base);
        setenv("AWS_ENDPOINT_URL", sts, 1);
        assert_int_equal(st_aws_provider_new(&p), 0);
        assert_int_equal(st_aws_credentials(p, &c, why, sizeof(why)), -ENOENT);
        assert_non_null(strstr(why, "environment: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not set"));
        assert_non_null(strstr(why, "shared files: no keys for profile 'default'"));
        assert_non_null(strstr(why, "web identity"));
        assert_non_null(strstr(why, "InvalidIdentityToken"));
        assert_null(strstr(why, "not-the-right-jwt"));
        st_aws_provider_free(p);
        assert_int_equal(st_aws_parse_time("2026-12-02T10:00:00Z"), 1796205600);
        assert_int_equal(st_aws_parse_time("yesterday"), -1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_order),
                cmocka_unit_test(test_ecs_full_uri_and_refresh),
                cmocka_unit_test(test_none),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
