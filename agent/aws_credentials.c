#include "aws_credentials.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "curl_util.h"

#define REFRESH_AHEAD_S 300
#define HTTP_TIMEOUT_MS 3000L
#define ECS_HOST "http://169.254.170.2"
#define IMDS_HOST "http://169.254.169.254"

/* the stop flag of the provider whose chain this thread walks now */
static __thread const atomic_bool *stop_flag;

struct st_aws_provider {
        pthread_mutex_t lock;
        const atomic_bool *stop;
        struct st_aws_creds cached;
        bool have;
};

int st_aws_provider_new(struct st_aws_provider **ret) {
        struct st_aws_provider *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        pthread_mutex_init(&p->lock, NULL);
        *ret = p;
        return 0;
}

void st_aws_provider_set_stop(struct st_aws_provider *p, const atomic_bool *stop) { p->stop = stop; }

void st_aws_provider_free(struct st_aws_provider *p) {
        if (!p)
                return;
        explicit_bzero(&p->cached, sizeof(p->cached));
        pthread_mutex_destroy(&p->lock);
        free(p);
}

static const char *env(const char *name) {
        const char *v = getenv(name);
        return v && *v ? v : NULL;
}

static void note(char *why, size_t cap, const char *fmt, ...) {
        size_t n = strlen(why);
        va_list ap;
        if (n + 3 >= cap)
                return;
        if (n)
                strcat(why, "; ");
        n = strlen(why);
        va_start(ap, fmt);
        vsnprintf(why + n, cap - n, fmt, ap);
        va_end(ap);
}

int64_t st_aws_parse_time(const char *s) {
        struct tm tm = { 0 };
        int y, mo, d, h, mi, sec;
        if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6)
                return -1;
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        return (int64_t) timegm(&tm);
}

static bool set(char *dst, size_t cap, const char *src) {
        if (!src || strlen(src) >= cap)
                return false;
        strcpy(dst, src);
        return true;
}

/* --- HTTP --------------------------------------------------------------------------------------- */

/* method url with headers (NULL-terminated "Name: value" list) → status and body. */
static int http(const char *method, const char *url, const char *const *headers, const char *body, long *ret_status,
                st_buf *ret_body, char *err, size_t errlen) {
        CURL *h = st_curl_easy_init();
        struct curl_slist *hl = NULL;
        if (!h)
                return st_curl_init_error(err, errlen);
        for (size_t i = 0; headers && headers[i]; i++)
                hl = st_curl_slist_append(hl, headers[i]);
        st_curl_easy_setopt(h, CURLOPT_URL, url);
        st_curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        st_curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        st_curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, HTTP_TIMEOUT_MS);
        st_curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
        struct st_curl_body got = { .limit = 1u << 20 };
        st_curl_collect(h, &got);
        st_curl_abort_when(h, stop_flag);
        if (body)
                st_curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        CURLcode cr = st_curl_easy_perform(h);
        st_curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, ret_status);
        st_curl_slist_free_all(hl);
        st_curl_easy_cleanup(h);
        int r = 0;
        if (cr != CURLE_OK) {
                snprintf(err, errlen, "%s", got.too_big ? "an answer larger than 1 MiB" : st_curl_easy_strerror(cr));
                r = -EIO;
        } else if (got.b.len && st_buf_append(ret_body, got.b.data, got.b.len) < 0)
                r = -ENOMEM;
        if (got.b.data)
                explicit_bzero(got.b.data, got.b.len); /* credentials pass through here */
        st_buf_free(&got.b);
        return r;
}

/* {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} (ECS and IMDS). */
static int from_json(const char *text, size_t len, struct st_aws_creds *c, char *err, size_t errlen) {
        json_tokener *tok = json_tokener_new();
        json_object *o = tok ? json_tokener_parse_ex(tok, text, (int) len) : NULL, *v;
        json_tokener_free(tok);
        int r = -EBADMSG;
        if (!o || !json_object_is_type(o, json_type_object)) {
                snprintf(err, errlen, "not a JSON object");
                goto out;
        }
        const char *keys[] = { "AccessKeyId", "SecretAccessKey" };
        char *dst[] = { c->access_key_id, c->secret_access_key };
        size_t caps[] = { sizeof(c->access_key_id), sizeof(c->secret_access_key) };
        for (int i = 0; i < 2; i++)
                if (!json_object_object_get_ex(o, keys[i], &v) || !json_object_is_type(v, json_type_string) ||
                    !set(dst[i], caps[i], json_object_get_string(v))) {
                        snprintf(err, errlen, "no %s string", keys[i]);
                        goto out;
                }
        if (json_object_object_get_ex(o, "Token", &v) && json_object_is_type(v, json_type_string) &&
            !set(c->session_token, sizeof(c->session_token), json_object_get_string(v))) {
                snprintf(err, errlen, "a Token too long");
                goto out;
        }
        if (json_object_object_get_ex(o, "Expiration", &v) && json_object_is_type(v, json_type_string))
                c->expires_unix = st_aws_parse_time(json_object_get_string(v));
        r = 0;
out:
        json_object_put(o);
        return r;
}

/* --- the sources ------------------------------------------------------------------------------------ */

static int from_env(struct st_aws_creds *c) {
        const char *id = env("AWS_ACCESS_KEY_ID"), *secret = env("AWS_SECRET_ACCESS_KEY");
        if (!id || !secret)
                return -ENOENT;
        if (!set(c->access_key_id, sizeof(c->access_key_id), id) ||
            !set(c->secret_access_key, sizeof(c->secret_access_key), secret))
                return -EINVAL;
        const char *tok = env("AWS_SESSION_TOKEN");
        if (tok && !set(c->session_token, sizeof(c->session_token), tok))
                return -EINVAL;
        c->source = "environment";
        return 0;
}

/* key = value of [section] in an INI file. */
static bool ini_get(const char *path, const char *section, const char *key, char *out, size_t cap) {
        FILE *f = fopen(path, "re");
        char line[8192];
        bool in = false, found = false;
        if (!f)
                return false;
        while (!found && fgets(line, sizeof(line), f)) {
                char *s = line;
                while (isspace((unsigned char) *s))
                        s++;
                s[strcspn(s, "\r\n")] = '\0';
                if (*s == '[') {
                        char *e = strchr(s, ']');
                        if (e) {
                                *e = '\0';
                                char *name = s + 1;
                                while (isspace((unsigned char) *name))
                                        name++;
                                size_t n = strlen(name);
                                while (n && isspace((unsigned char) name[n - 1]))
                                        name[--n] = '\0';
                                in = strcmp(name, section) == 0;
                        }
                        continue;
                }
                if (!in || *s == '#' || *s == ';')
                        continue;
                char *eq = strchr(s, '=');
                if (!eq)
                        continue;
                char *k = s, *v = eq + 1, *ke = eq;
                while (ke > k && isspace((unsigned char) ke[-1]))
                        ke--;
                *ke = '\0';
                while (isspace((unsigned char) *v))
                        v++;
                size_t vn = strlen(v);
                while (vn && isspace((unsigned char) v[vn - 1]))
                        v[--vn] = '\0';
                if (strcmp(k, key) == 0 && vn < cap) {
                        strcpy(out, v);
                        found = true;
                }
        }
        fclose(f);
        return found;
}

static void shared_paths(char *cred, char *config, size_t cap) {
        const char *home = env("HOME");
        snprintf(cred, cap, "%s", env("AWS_SHARED_CREDENTIALS_FILE") ? env("AWS_SHARED_CREDENTIALS_FILE") : "");
        snprintf(config, cap, "%s", env("AWS_CONFIG_FILE") ? env("AWS_CONFIG_FILE") : "");
        if (!*cred && home)
                snprintf(cred, cap, "%s/.aws/credentials", home);
        if (!*config && home)
                snprintf(config, cap, "%s/.aws/config", home);
}

static int from_files(struct st_aws_creds *c, char *why, size_t cap) {
        char cred[1024], config[1024], section[300];
        const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
        shared_paths(cred, config, sizeof(cred));
        snprintf(section, sizeof(section), strcmp(profile, "default") == 0 ? "%s" : "profile %s", profile);
        /* the credentials file names sections by profile; the config file says "profile NAME" */
        bool ok = ini_get(cred, profile, "aws_access_key_id", c->access_key_id, sizeof(c->access_key_id)) &&
                  ini_get(cred, profile, "aws_secret_access_key", c->secret_access_key, sizeof(c->secret_access_key));
        if (ok)
                ini_get(cred, profile, "aws_session_token", c->session_token, sizeof(c->session_token));
        else {
                ok = ini_get(config, section, "aws_access_key_id", c->access_key_id, sizeof(c->access_key_id)) &&
                     ini_get(config, section, "aws_secret_access_key", c->secret_access_key, sizeof(c->secret_access_key));
                if (ok)
                        ini_get(config, section, "aws_session_token", c->session_token, sizeof(c->session_token));
        }
        if (!ok) {
                note(why, cap, "shared files: no keys for profile '%s'", profile);
                return -ENOENT;
        }
        c->source = "shared files";
        return 0;
}

static int from_ecs(struct st_aws_creds *c, char *why, size_t cap) {
        const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
        char url[2048], auth[4200], token[4096] = "", err[256];
        const char *headers[2] = { NULL, NULL };
        if (!rel && !full)
                return -ENOENT;
        if (rel)
                snprintf(url, sizeof(url), "%s%s", env("STRATA_TEST_ECS_CREDENTIALS_HOST") ? env("STRATA_TEST_ECS_CREDENTIALS_HOST") : ECS_HOST, rel);
        else
                snprintf(url, sizeof(url), "%s", full);
        const char *tok = env("AWS_CONTAINER_AUTHORIZATION_TOKEN"), *tok_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        if (tok_file) {
                FILE *f = fopen(tok_file, "re");
                if (f) {
                        size_t n = fread(token, 1, sizeof(token) - 1, f);
                        token[n] = '\0';
                        token[strcspn(token, "\r\n")] = '\0';
                        fclose(f);
                }
        } else if (tok)
                snprintf(token, sizeof(token), "%s", tok);
        if (*token) {
                snprintf(auth, sizeof(auth), "Authorization: %s", token);
                headers[0] = auth;
        }
        st_buf body = { 0 };
        long status = 0;
        int r = http("GET", url, headers, NULL, &status, &body, err, sizeof(err));
        explicit_bzero(auth, sizeof(auth));
        explicit_bzero(token, sizeof(token));
        if (r == 0 && status != 200) {
                snprintf(err, sizeof(err), "HTTP %ld", status);
                r = -EIO;
        }
        if (r == 0)
                r = from_json(body.data ? body.data : "", body.len, c, err, sizeof(err));
        st_buf_free(&body);
        if (r < 0) {
                note(why, cap, "ECS container credentials (%s): %s", rel ? "relative URI" : "full URI", err);
                return r;
        }
        c->source = "ECS";
        return 0;
}

/* <Tag>value</Tag> inside text. */
static bool xml_tag(const char *text, const char *tag, char *out, size_t cap) {
        char open[64], close[64];
        snprintf(open, sizeof(open), "<%s>", tag);
        snprintf(close, sizeof(close), "</%s>", tag);
        const char *s = strstr(text, open), *e;
        if (!s || !(e = strstr(s, close)))
                return false;
        s += strlen(open);
        size_t n = (size_t) (e - s);
        if (n >= cap)
                return false;
        memcpy(out, s, n);
        out[n] = '\0';
        return true;
}

static int from_web_identity(struct st_aws_creds *c, char *why, size_t cap) {
        const char *file = env("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = env("AWS_ROLE_ARN");
        char err[256], url[1024], exp[64], region[64];
        if (!file || !role)
                return -ENOENT;
        FILE *f = fopen(file, "re");
        if (!f) {
                note(why, cap, "web identity: cannot read %s: %s", file, strerror(errno));
                return -errno;
        }
        st_buf tok = { 0 };
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                st_buf_append(&tok, chunk, n);
        fclose(f);
        CURL *h = st_curl_easy_init();
        char *e_tok = h ? st_curl_easy_escape(h, tok.data ? tok.data : "", (int) tok.len) : NULL;
        char *e_role = h ? st_curl_easy_escape(h, role, 0) : NULL;
        const char *session = env("AWS_ROLE_SESSION_NAME") ? env("AWS_ROLE_SESSION_NAME") : "strata";
        char *e_session = h ? st_curl_easy_escape(h, session, 0) : NULL;
        st_buf form = { 0 };
        st_buf_printf(&form, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=%s&RoleSessionName=%s&WebIdentityToken=%s",
                      e_role ? e_role : "", e_session ? e_session : "", e_tok ? e_tok : "");
        st_curl_free(e_tok);
        st_curl_free(e_role);
        st_curl_free(e_session);
        st_curl_easy_cleanup(h);
        explicit_bzero(tok.data, tok.len);
        st_buf_free(&tok);
        st_aws_region(region, sizeof(region));
        const char *ep = env("AWS_ENDPOINT_URL_STS") ? env("AWS_ENDPOINT_URL_STS") : env("AWS_ENDPOINT_URL");
        if (ep)
                snprintf(url, sizeof(url), "%s/", ep);
        else
                snprintf(url, sizeof(url), "https://sts.%s.amazonaws.com/", *region ? region : "us-east-1");
        const char *headers[] = { "Content-Type: application/x-www-form-urlencoded; charset=utf-8", "Accept: application/xml", NULL };
        st_buf body = { 0 };
        long status = 0;
        int r = http("POST", url, headers, st_buf_cstr(&form), &status, &body, err, sizeof(err));
        explicit_bzero(form.data, form.len);
        st_buf_free(&form);
        const char *text = body.data ? st_buf_cstr(&body) : "";
        if (r == 0 && status != 200) {
                char code[128] = "", msg[256] = "";
                xml_tag(text, "Code", code, sizeof(code));
                xml_tag(text, "Message", msg, sizeof(msg));
                snprintf(err, sizeof(err), "HTTP %ld %.60s: %.150s", status, code, msg);
                r = -EIO;
        }
        if (r == 0 && !(xml_tag(text, "AccessKeyId", c->access_key_id, sizeof(c->access_key_id)) &&
                        xml_tag(text, "SecretAccessKey", c->secret_access_key, sizeof(c->secret_access_key)) &&
                        xml_tag(text, "SessionToken", c->session_token, sizeof(c->session_token)))) {
                snprintf(err, sizeof(err), "no Credentials in the AssumeRoleWithWebIdentity response");
                r = -EBADMSG;
        }
        if (r == 0 && xml_tag(text, "Expiration", exp, sizeof(exp)))
                c->expires_unix = st_aws_parse_time(exp);
        if (body.data)
                explicit_bzero(body.data, body.len);
        st_buf_free(&body);
        if (r < 0) {
                note(why, cap, "web identity (STS at %s): %s", url, err);
                return r;
        }
        c->source = "web identity";
        return 0;
}

static int from_imds(struct st_aws_creds *c, char *why, size_t cap) {
        const char *dis = env("AWS_EC2_METADATA_DISABLED");
        if (dis && strcasecmp(dis, "true") == 0)
                return -ENOENT;
        const char *base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT") ? env("AWS_EC2_METADATA_SERVICE_ENDPOINT") : IMDS_HOST;
        char url[1024], err[256], hdr[600], role[256];
        st_buf token = { 0 }, body = { 0 };
        long status = 0;
        const char *ttl[] = { "X-aws-ec2-metadata-token-ttl-seconds: 21600", NULL };
        snprintf(url, sizeof(url), "%s/latest/api/token", base);
        int r = http("PUT", url, ttl, NULL, &status, &token, err, sizeof(err));
        if (r == 0 && status != 200) {
                snprintf(err, sizeof(err), "the session token request answered HTTP %ld", status);
                r = -EIO;
        }
        if (r == 0 && token.len >= 512) {
                snprintf(err, sizeof(err), "the session token answer is not a token (%zu bytes)", token.len);
                r = -EIO;
        }
        if (r < 0)
                goto out;
        snprintf(hdr, sizeof(hdr), "X-aws-ec2-metadata-token: %s", st_buf_cstr(&token));
        const char *auth[] = { hdr, NULL };
        snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/", base);
        r = http("GET", url, auth, NULL, &status, &body, err, sizeof(err));
        if (r == 0 && status != 200) {
                snprintf(err, sizeof(err), "no instance role (HTTP %ld)", status);
                r = -ENOENT;
        }
        if (r < 0)
                goto out;
        snprintf(role, sizeof(role), "%s", st_buf_cstr(&body));
        role[strcspn(role, "\r\n")] = '\0';
        st_buf_clear(&body);
        snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/%s", base, role);
        r = http("GET", url, auth, NULL, &status, &body, err, sizeof(err));
        if (r == 0 && status != 200) {
                snprintf(err, sizeof(err), "role %.100s: HTTP %ld", role, status);
                r = -EIO;
        }
        if (r == 0)
                r = from_json(body.data ? body.data : "", body.len, c, err, sizeof(err));
out:
        explicit_bzero(hdr, sizeof(hdr));
        if (token.data)
                explicit_bzero(token.data, token.len);
        if (body.data)
                explicit_bzero(body.data, body.len);
        st_buf_free(&token);
        st_buf_free(&body);
        if (r < 0) {
                note(why, cap, "IMDSv2 (%s): %s", base, err);
                return r;
        }
        c->source = "IMDSv2";
        return 0;
}

void st_aws_region(char *out, size_t cap) {
        const char *r = env("AWS_REGION") ? env("AWS_REGION") : env("AWS_DEFAULT_REGION");
        char cred[1024], config[1024], section[300], v[64];
        if (r) {
                snprintf(out, cap, "%s", r);
                return;
        }
        const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
        shared_paths(cred, config, sizeof(cred));
        snprintf(section, sizeof(section), strcmp(profile, "default") == 0 ? "%s" : "profile %s", profile);
        snprintf(out, cap, "%s", ini_get(config, section, "region", v, sizeof(v)) ? v : "");
}

int st_aws_credentials(struct st_aws_provider *p, struct st_aws_creds *ret, char *why, size_t cap) {
        int64_t now = (int64_t) time(NULL);
        pthread_mutex_lock(&p->lock);
        if (p->have && (!p->cached.expires_unix || p->cached.expires_unix - REFRESH_AHEAD_S > now)) {
                *ret = p->cached;
                pthread_mutex_unlock(&p->lock);
                return 0;
        }
        struct st_aws_creds c;
        stop_flag = p->stop;
        /* the SDKs' order: web identity (IRSA) before the container and instance endpoints */
        int (*sources[])(struct st_aws_creds *, char *, size_t) = { from_files, from_web_identity, from_ecs, from_imds };
        int r;
        why[0] = '\0';
        memset(&c, 0, sizeof(c));
        r = from_env(&c);
        if (r == -ENOENT)
                note(why, cap, "environment: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not set");
        for (size_t i = 0; r < 0 && i < sizeof(sources) / sizeof(sources[0]); i++) {
                memset(&c, 0, sizeof(c));
                r = sources[i](&c, why, cap);
        }
        if (r == 0 && c.session_token[0] && c.expires_unix <= 0)
                c.expires_unix = now + 15 * 60; /* temporary, but when until was not said (or not read): ask again soon */
        if (r == 0) {
                p->cached = c;
                p->have = true;
                *ret = c;
        } else if (p->have && p->cached.expires_unix > now) {
                /* the refresh failed but what we have still works for a while */
                *ret = p->cached;
                r = 0;
        }
        explicit_bzero(&c, sizeof(c));
        pthread_mutex_unlock(&p->lock);
        return r < 0 ? -ENOENT : 0;
}
