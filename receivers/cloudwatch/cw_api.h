/* CloudWatch's API as the cloudwatch receiver uses it: GetMetricData and ListMetrics over the
 * AWS JSON 1.0 protocol (POST /, X-Amz-Target: GraniteServiceVersion20100801.<Action>), and
 * STS GetCallerIdentity (query protocol) for the account id; every request signed with SigV4.
 * Throttling (the Throttling error, HTTP 429 and 503) is told apart from other errors. */
#pragma once
#include <json-c/json.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws_credentials.h"

struct cw_client {
        char endpoint[512];     /* https://monitoring.eu-west-1.amazonaws.com (no trailing slash) */
        char sts_endpoint[512];
        char region[64];
        struct st_aws_provider *creds;
        const atomic_bool *stop; /* aborts a request underway */
};

/* The endpoints: configured, else AWS_ENDPOINT_URL_CLOUDWATCH / _STS, else AWS_ENDPOINT_URL,
 * else the region's. */
void cw_client_init(struct cw_client *c, const char *endpoint, const char *region, struct st_aws_provider *creds);

enum cw_result { CW_OK, CW_THROTTLED, CW_FAILED };

/* Calls action with the JSON body req; *ret is the parsed response (json_object_put it). On
 * failure, err says what: AWS's error code and message, HTTP status, or curl's reason. */
enum cw_result cw_call(struct cw_client *c, const char *action, json_object *req, json_object **ret, char *err,
                       size_t errlen);

/* The account id of the credentials (STS GetCallerIdentity) into out. */
int cw_account_id(struct cw_client *c, char *out, size_t cap, char *err, size_t errlen);
