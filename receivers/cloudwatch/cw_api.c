#include "cw_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws_sigv4.h"
#include "buf.h"
#include "curl_util.h"

#define TIMEOUT_MS 30000L
#define MAX_RESPONSE (UINT64_C(64) << 20)

static const char *env(const char *n) {
        const char *v = getenv(n);
        return v && *v ? v : NULL;
}

static void trim_slash(char *s) {
        size_t n = strlen(s);
        while (n && s[n - 1] == '/')
                s[--n] = '\0';
}

void cw_client_init(struct cw_client *c, const char *endpoint, const char *region, struct st_aws_provider *creds) {
        snprintf(c->region, sizeof(c->region), "%s", region);
        c->creds = creds;
        if (endpoint && *endpoint)
                snprintf(c->endpoint, sizeof(c->endpoint), "%s", endpoint);
        else if (env("AWS_ENDPOINT_URL_CLOUDWATCH") || env("AWS_ENDPOINT_URL"))
                snprintf(c->endpoint, sizeof(c->endpoint), "%s",
                         env("AWS_ENDPOINT_URL_CLOUDWATCH") ? env("AWS_ENDPOINT_URL_CLOUDWATCH") : env("AWS_ENDPOINT_URL"));
        else
                snprintf(c->endpoint, sizeof(c->endpoint), "https://monitoring.%s.amazonaws.com", region);
        if (env("AWS_ENDPOINT_URL_STS") || env("AWS_ENDPOINT_URL"))
                snprintf(c->sts_endpoint, sizeof(c->sts_endpoint), "%s",
                         env("AWS_ENDPOINT_URL_STS") ? env("AWS_ENDPOINT_URL_STS") : env("AWS_ENDPOINT_URL"));
        else
                snprintf(c->sts_endpoint, sizeof(c->sts_endpoint), "https://sts.%s.amazonaws.com", region);
        trim_slash(c->endpoint);
        trim_slash(c->sts_endpoint);
}

/* "https://host:port/path" → host ("host:port"), path ("/path" or "/"). */
static int split_url(const char *url, char *host, size_t hcap, char *path, size_t pcap) {
        const char *s = strstr(url, "://");
        if (!s)
                return -EINVAL;
        s += 3;
        size_t hl = strcspn(s, "/");
        if (!hl || hl >= hcap)
                return -EINVAL;
        memcpy(host, s, hl);
        host[hl] = '\0';
        /* curl sends no default port in Host: neither may the signature */
        size_t l = strlen(host);
        bool https = strncmp(url, "https://", 8) == 0;
        if ((https && l > 4 && strcmp(host + l - 4, ":443") == 0) || (!https && l > 3 && strcmp(host + l - 3, ":80") == 0))
                host[l - (https ? 4 : 3)] = '\0';
        snprintf(path, pcap, "%s", s[hl] ? s + hl : "/");
        return 0;
}

/* A signed POST of body to url; status and response body. */
static int signed_post(struct cw_client *c, const char *url, const char *service, const char *content_type,
                       const char *target, const char *body, long *ret_status, struct st_curl_body *ret_body, char *err, size_t errlen) {
        struct st_aws_creds cr;
        char why[1024], host[300], path[512], date[17];
        if (st_aws_credentials(c->creds, &cr, why, sizeof(why)) < 0) {
                snprintf(err, errlen, "no AWS credentials: %s", why);
                return -ENOENT;
        }
        if (split_url(url, host, sizeof(host), path, sizeof(path)) < 0) {
                snprintf(err, errlen, "endpoint %s is not a URL", url);
                return -EINVAL;
        }
        st_amz_date((long long) time(NULL), date);
        struct st_sigv4_header h[5];
        size_t nh = 0;
        h[nh++] = (struct st_sigv4_header) { "Host", host };
        h[nh++] = (struct st_sigv4_header) { "X-Amz-Date", date };
        h[nh++] = (struct st_sigv4_header) { "Content-Type", content_type };
        if (target)
                h[nh++] = (struct st_sigv4_header) { "X-Amz-Target", target };
        if (cr.session_token[0])
                h[nh++] = (struct st_sigv4_header) { "X-Amz-Security-Token", cr.session_token };
        struct st_sigv4_input in = { .method = "POST", .path = path, .headers = h, .n_headers = nh, .body = body,
                                     .body_len = strlen(body), .region = c->region, .service = service, .amz_date = date };
        st_buf authz = { 0 }, line = { 0 };
        int r = st_sigv4_sign(&in, cr.access_key_id, cr.secret_access_key, &authz, NULL, NULL);
        if (r < 0) {
                snprintf(err, errlen, "cannot sign the request: %s", strerror(-r));
                goto out;
        }
        struct curl_slist *hl = NULL;
        for (size_t i = 1; i < nh; i++) { /* curl sends Host itself, from the URL */
                st_buf_clear(&line);
                st_buf_printf(&line, "%s: %s", h[i].name, h[i].value);
                hl = st_curl_slist_append(hl, st_buf_cstr(&line));
        }
        st_buf_clear(&line);
        st_buf_printf(&line, "Authorization: %s", st_buf_cstr(&authz));
        hl = st_curl_slist_append(hl, st_buf_cstr(&line));
        hl = st_curl_slist_append(hl, "Expect:");
        CURL *ch = st_curl_easy_init();
        if (!ch) {
                st_curl_slist_free_all(hl);
                r = st_curl_init_error(err, errlen);
                goto out;
        }
        st_curl_easy_setopt(ch, CURLOPT_URL, url);
        st_curl_easy_setopt(ch, CURLOPT_POSTFIELDS, body);
        st_curl_easy_setopt(ch, CURLOPT_HTTPHEADER, hl);
        st_curl_easy_setopt(ch, CURLOPT_NOSIGNAL, 1L);
        st_curl_easy_setopt(ch, CURLOPT_TIMEOUT_MS, TIMEOUT_MS);
        st_curl_collect(ch, ret_body);
        st_curl_abort_when(ch, c->stop);
        CURLcode cc = st_curl_easy_perform(ch);
        st_curl_easy_getinfo(ch, CURLINFO_RESPONSE_CODE, ret_status);
        st_curl_easy_cleanup(ch);
        st_curl_slist_free_all(hl);
        if (cc != CURLE_OK) {
                snprintf(err, errlen, "%s: %s", url, ret_body->too_big ? "an answer larger than 64 MiB" : st_curl_easy_strerror(cc));
                r = -EIO;
        }
out:
        explicit_bzero(&cr, sizeof(cr));
        if (line.data)
                explicit_bzero(line.data, line.len);
        st_buf_free(&authz);
        st_buf_free(&line);
        return r;
}

enum cw_result cw_call(struct cw_client *c, const char *action, json_object *req, json_object **ret, char *err,
                       size_t errlen) {
        char target[128], url[600];
        struct st_curl_body body = { .limit = MAX_RESPONSE };
        long status = 0;
        snprintf(target, sizeof(target), "GraniteServiceVersion20100801.%s", action);
        snprintf(url, sizeof(url), "%s/", c->endpoint);
        int r = signed_post(c, url, "monitoring", "application/x-amz-json-1.0", target,
                            json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN), &status, &body, err, errlen);
        if (r < 0) {
                st_buf_free(&body.b);
                return CW_FAILED;
        }
        json_tokener *tok = json_tokener_new();
        json_object *o = tok && body.b.len ? json_tokener_parse_ex(tok, body.b.data, (int) body.b.len) : NULL;
        json_tokener_free(tok);
        st_buf_free(&body.b);
        if (status == 200 && json_object_is_type(o, json_type_object)) {
                *ret = o;
                return CW_OK;
        }
        /* {"__type": "com.amazon.coral.availability#ThrottlingException", "message": "Rate exceeded"} */
        json_object *type = NULL, *msg = NULL;
        const char *t = "", *m = "";
        if (o && json_object_object_get_ex(o, "__type", &type) && json_object_is_type(type, json_type_string))
                t = json_object_get_string(type);
        if (o && (json_object_object_get_ex(o, "message", &msg) || json_object_object_get_ex(o, "Message", &msg)) &&
            json_object_is_type(msg, json_type_string))
                m = json_object_get_string(msg);
        const char *hash = strrchr(t, '#');
        const char *code = hash ? hash + 1 : t;
        bool throttled = status == 429 || status == 503 || strstr(code, "Throttling") != NULL;
        if (status == 200)
                snprintf(err, errlen, "%s: the response is not a JSON object", action);
        else
                snprintf(err, errlen, "%s: HTTP %ld %s%s%s", action, status, *code ? code : "", *m ? ": " : "", m);
        json_object_put(o);
        return throttled ? CW_THROTTLED : CW_FAILED;
}

int cw_account_id(struct cw_client *c, char *out, size_t cap, char *err, size_t errlen) {
        char url[600];
        struct st_curl_body body = { .limit = MAX_RESPONSE };
        long status = 0;
        snprintf(url, sizeof(url), "%s/", c->sts_endpoint);
        int r = signed_post(c, url, "sts", "application/x-www-form-urlencoded; charset=utf-8", NULL,
                            "Action=GetCallerIdentity&Version=2011-06-15", &status, &body, err, errlen);
        const char *text = body.b.data ? st_buf_cstr(&body.b) : "";
        const char *s = strstr(text, "<Account>"), *e = s ? strstr(s, "</Account>") : NULL;
        if (r == 0 && (status != 200 || !s || !e || (size_t) (e - s - 9) >= cap)) {
                snprintf(err, errlen, "GetCallerIdentity: HTTP %ld, no Account in the answer", status);
                r = -EIO;
        }
        if (r == 0) {
                memcpy(out, s + 9, (size_t) (e - s - 9));
                out[e - s - 9] = '\0';
        }
        st_buf_free(&body.b);
        return r;
}
