/* AWS credentials, found as AWS SDKs find them, in this order:
 *
 *   1. environment   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *   2. shared files  AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and AWS_CONFIG_FILE
 *                    (~/.aws/config, "[profile NAME]"), profile AWS_PROFILE or "default"
 *   3. web identity  AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (IRSA): STS
 *                    AssumeRoleWithWebIdentity (AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL)
 *   4. ECS           AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (http://169.254.170.2…), or
 *                    AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN
 *                    (or _TOKEN_FILE)
 *   5. IMDSv2        a session token first (PUT), then the instance role's credentials
 *                    (AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_EC2_METADATA_DISABLED)
 *
 * (The SDKs' order: web identity comes before the container and instance endpoints.)
 * Temporary credentials are refreshed before they expire (5 minutes ahead); those whose expiry
 * is not said are asked for again after 15 minutes. Secrets never
 * appear in messages. Thread-safe. */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct st_aws_creds {
        char access_key_id[128];
        char secret_access_key[128];
        char session_token[4096]; /* "" for long-term keys */
        int64_t expires_unix;     /* 0: does not expire */
        const char *source;       /* "environment", "shared files (profile p)", "ECS", "web identity", "IMDSv2" */
};

struct st_aws_provider;

/* A provider reading the environment as it is now (tests set it before). */
int st_aws_provider_new(struct st_aws_provider **ret);
void st_aws_provider_free(struct st_aws_provider *p); /* NULL-safe */
/* A flag that, once true, aborts the provider's requests underway (its owner's shutdown). */
void st_aws_provider_set_stop(struct st_aws_provider *p, const atomic_bool *stop);

/* Current credentials (cached; fetched again when missing or about to expire). -ENOENT with
 * what each source said in why (cap bytes) when none has any. */
int st_aws_credentials(struct st_aws_provider *p, struct st_aws_creds *ret, char *why, size_t cap);

/* The region: AWS_REGION, AWS_DEFAULT_REGION, the config file's region for the profile. ""
 * when none (the caller may ask IMDS or the ECS metadata). */
void st_aws_region(char *out, size_t cap);

/* Parses "2026-12-02T10:00:00Z" (RFC 3339, UTC); -1 when not such a time. */
int64_t st_aws_parse_time(const char *s);
