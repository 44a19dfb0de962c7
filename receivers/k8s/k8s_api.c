#include "k8s_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "curl_util.h"

#define MAX_LIST_BYTES (UINT64_C(256) << 20) /* one page of a list */
#define MAX_EVENT_BYTES (16u << 20)           /* one watch event (a line) */
#define CONNECT_TIMEOUT_S 10L
#define LIST_TIMEOUT_S 60L

static int read_token(const char *file, char *buf, size_t cap) {
        FILE *f = fopen(file, "re");
        if (!f)
                return -errno;
        size_t n = fread(buf, 1, cap - 1, f);
        fclose(f);
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        return 0;
}


/* A handle for GET url with the connection's TLS and token. */
static CURL *request(const struct k8s_conn *c, const char *url, struct curl_slist **hdrs, char *err, size_t errlen) {
        char token[8192], auth[8300];
        CURL *h = st_curl_easy_init();
        if (!h) {
                st_curl_init_error(err, errlen);
                return NULL;
        }
        *hdrs = st_curl_slist_append(NULL, "Accept: application/json");
        if (c->token_file && *c->token_file) {
                int r = read_token(c->token_file, token, sizeof(token));
                if (r < 0) {
                        snprintf(err, errlen, "cannot read the token file %s: %s", c->token_file, strerror(-r));
                        st_curl_slist_free_all(*hdrs);
                        st_curl_easy_cleanup(h);
                        return NULL;
                }
                snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
                *hdrs = st_curl_slist_append(*hdrs, auth);
                explicit_bzero(token, sizeof(token));
                explicit_bzero(auth, sizeof(auth));
        } else if (c->token && *c->token) {
                snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
                *hdrs = st_curl_slist_append(*hdrs, auth);
                explicit_bzero(auth, sizeof(auth));
        }
        st_curl_easy_setopt(h, CURLOPT_URL, url);
        st_curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
        st_curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        st_curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
        st_curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2TLS);
        st_curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
        if (c->ca_pem) {
                struct curl_blob b = { .data = c->ca_pem, .len = strlen(c->ca_pem), .flags = CURL_BLOB_COPY };
                st_curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
        } else if (c->ca_file && *c->ca_file)
                st_curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
        if (c->cert_pem) {
                struct curl_blob b = { .data = c->cert_pem, .len = strlen(c->cert_pem), .flags = CURL_BLOB_COPY };
                st_curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &b);
        } else if (c->cert_file)
                st_curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
        if (c->key_pem) {
                struct curl_blob b = { .data = c->key_pem, .len = strlen(c->key_pem), .flags = CURL_BLOB_COPY };
                st_curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &b);
        } else if (c->key_file)
                st_curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
        if (c->insecure) {
                st_curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
                st_curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        st_curl_abort_when(h, c->stop);
        return h;
}

const char *k8s_kind_name(enum k8s_kind k) {
        return k == K8S_NAMESPACES ? "namespaces" : k == K8S_NODES ? "nodes" : "pods";
}

/* "/api/v1/pods", "/api/v1/namespaces/NS/pods", "/api/v1/namespaces", "/api/v1/nodes" */
static void kind_path(const struct k8s_conn *c, enum k8s_kind kind, CURL *h, char *buf, size_t cap) {
        if (kind == K8S_PODS && c->namespace_ && *c->namespace_) {
                char *esc = st_curl_easy_escape(h, c->namespace_, 0);
                snprintf(buf, cap, "/api/v1/namespaces/%s/pods", esc ? esc : "");
                st_curl_free(esc);
        } else
                snprintf(buf, cap, "/api/v1/%s", k8s_kind_name(kind));
}

/* "?fieldSelector=spec.nodeName%3Dnode-1&" (pods), "?fieldSelector=metadata.name%3Dnode-1&"
 * (this node), or "?" */
static void selector(const struct k8s_conn *c, enum k8s_kind kind, CURL *h, char *buf, size_t cap) {
        const char *field = kind == K8S_PODS ? "spec.nodeName" : kind == K8S_NODES ? "metadata.name" : NULL;
        if (field && c->node && *c->node) {
                char *esc = st_curl_easy_escape(h, c->node, 0);
                snprintf(buf, cap, "?fieldSelector=%s%%3D%s&", field, esc ? esc : "");
                st_curl_free(esc);
        } else
                snprintf(buf, cap, "?");
}

/* The API's own error ("pods is forbidden: …") from a Status body, when there is one. */
static void status_message(const char *body, size_t len, long code, char *err, size_t errlen) {
        json_tokener *tok = len ? json_tokener_new() : NULL;
        json_object *o = tok ? json_tokener_parse_ex(tok, body, (int) len) : NULL;
        json_tokener_free(tok);
        json_object *msg = NULL;
        if (o && json_object_object_get_ex(o, "message", &msg) && json_object_is_type(msg, json_type_string))
                snprintf(err, errlen, "HTTP %ld: %s", code, json_object_get_string(msg));
        else
                snprintf(err, errlen, "HTTP %ld", code);
        json_object_put(o);
}

int k8s_list(const struct k8s_conn *c, enum k8s_kind kind, int (*fn)(void *ctx, json_object *obj), void *ctx,
             char **ret_rv, char *err, size_t errlen) {
        char *cont = NULL, *rv = NULL;
        int r = 0;
        do {
                char url[4096], sel[512];
                struct curl_slist *hdrs = NULL;
                struct st_curl_body body = { .limit = MAX_LIST_BYTES };
                CURL *h = request(c, "", &hdrs, err, errlen);
                if (!h) {
                        r = -EIO;
                        break;
                }
                char pp[512];
                selector(c, kind, h, sel, sizeof(sel));
                kind_path(c, kind, h, pp, sizeof(pp));
                char *esc = cont ? st_curl_easy_escape(h, cont, 0) : NULL;
                snprintf(url, sizeof(url), "%s%s%slimit=%lld%s%s", c->server, pp, sel, (long long) c->page_size,
                         esc ? "&continue=" : "", esc ? esc : "");
                st_curl_free(esc);
                st_curl_easy_setopt(h, CURLOPT_URL, url);
                st_curl_easy_setopt(h, CURLOPT_TIMEOUT, LIST_TIMEOUT_S);
                st_curl_collect(h, &body);
                CURLcode cr = st_curl_easy_perform(h);
                long code = 0;
                st_curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
                st_curl_slist_free_all(hdrs);
                st_curl_easy_cleanup(h);
                json_object *list = NULL;
                if (cr == CURLE_ABORTED_BY_CALLBACK)
                        r = -ECANCELED;
                else if (body.too_big) {
                        snprintf(err, errlen, "a page of the list of %s is larger than %llu bytes: lower page_size",
                                 k8s_kind_name(kind), (unsigned long long) MAX_LIST_BYTES);
                        r = -EIO;
                } else if (cr != CURLE_OK) {
                        snprintf(err, errlen, "%s", st_curl_easy_strerror(cr));
                        r = -EIO;
                } else if (code == 410 && cont) {
                        /* the continue token expired: the list starts over */
                        snprintf(err, errlen, "HTTP 410: the continue token expired");
                        r = -EAGAIN;
                } else if (code != 200) {
                        status_message(body.b.data, body.b.len, code, err, errlen);
                        r = -EIO;
                } else {
                        json_tokener *tok = json_tokener_new();
                        list = tok ? json_tokener_parse_ex(tok, body.b.data ? body.b.data : "", (int) body.b.len) : NULL;
                        json_tokener_free(tok);
                }
                st_buf_free(&body.b);
                if (r < 0)
                        break;
                json_object *items = NULL, *meta = NULL, *v = NULL;
                if (!list || !json_object_object_get_ex(list, "items", &items) ||
                    !(json_object_is_type(items, json_type_array) || json_object_is_type(items, json_type_null)) ||
                    !json_object_object_get_ex(list, "metadata", &meta) || !json_object_is_type(meta, json_type_object)) {
                        snprintf(err, errlen, "the list of %s has no items array or metadata object", k8s_kind_name(kind));
                        json_object_put(list);
                        r = -EBADMSG;
                        break;
                }
                for (size_t i = 0; json_object_is_type(items, json_type_array) && i < json_object_array_length(items); i++)
                        if ((r = fn(ctx, json_object_array_get_idx(items, i))) < 0)
                                break;
                free(rv);
                rv = json_object_object_get_ex(meta, "resourceVersion", &v) && json_object_is_type(v, json_type_string)
                             ? strdup(json_object_get_string(v))
                             : NULL;
                free(cont);
                cont = json_object_object_get_ex(meta, "continue", &v) && json_object_is_type(v, json_type_string) &&
                                       *json_object_get_string(v)
                               ? strdup(json_object_get_string(v))
                               : NULL;
                json_object_put(list);
        } while (r >= 0 && cont);
        free(cont);
        if (r >= 0 && !rv) {
                snprintf(err, errlen, "the list of %s has no metadata.resourceVersion", k8s_kind_name(kind));
                r = -EBADMSG;
        }
        if (r < 0) {
                free(rv);
                return r;
        }
        *ret_rv = rv;
        return 0;
}

/* --- watch ------------------------------------------------------------------------------------ */

struct watch {
        const struct k8s_conn *c;
        char **rv;
        int (*fn)(void *ctx, const char *type, json_object *pod);
        void *ctx;
        st_buf line;
        enum k8s_watch_end end;
        bool ended; /* a verdict was reached inside the stream (ERROR event) */
        char *err;
        size_t errlen;
        long code;
        CURL *h;
};

static void set_rv(struct watch *w, json_object *obj) {
        json_object *meta = NULL, *v = NULL;
        if (json_object_object_get_ex(obj, "metadata", &meta) && json_object_object_get_ex(meta, "resourceVersion", &v) &&
            json_object_is_type(v, json_type_string)) {
                char *n = strdup(json_object_get_string(v));
                if (n) {
                        free(*w->rv);
                        *w->rv = n;
                }
        }
}

/* One event: {"type": "...", "object": {...}}. false ends the stream. */
static bool on_event(struct watch *w, const char *text, size_t len) {
        json_tokener *tok = json_tokener_new();
        json_object *ev = tok ? json_tokener_parse_ex(tok, text, (int) len) : NULL;
        json_tokener_free(tok);
        json_object *type = NULL, *obj = NULL;
        bool ok = true;
        if (!ev || !json_object_object_get_ex(ev, "type", &type) || !json_object_is_type(type, json_type_string) ||
            !json_object_object_get_ex(ev, "object", &obj) || !json_object_is_type(obj, json_type_object)) {
                snprintf(w->err, w->errlen, "a watch event that is not {type, object}: %.80s", text);
                w->end = K8S_WATCH_FAILED;
                ok = false;
        } else {
                const char *t = json_object_get_string(type);
                if (strcmp(t, "ERROR") == 0) {
                        json_object *code = NULL, *msg = NULL;
                        json_object_object_get_ex(obj, "code", &code);
                        json_object_object_get_ex(obj, "message", &msg);
                        bool gone = code && json_object_get_int(code) == 410;
                        snprintf(w->err, w->errlen, "watch ERROR %d: %s", code ? json_object_get_int(code) : 0,
                                 msg && json_object_is_type(msg, json_type_string) ? json_object_get_string(msg) : "");
                        w->end = gone ? K8S_WATCH_GONE : K8S_WATCH_FAILED;
                        ok = false;
                } else if (strcmp(t, "BOOKMARK") == 0) {
                        set_rv(w, obj);
                } else if (strcmp(t, "ADDED") == 0 || strcmp(t, "MODIFIED") == 0 || strcmp(t, "DELETED") == 0) {
                        (void) w->fn(w->ctx, t, obj); /* a pod we cannot read is the caller's to report */
                        set_rv(w, obj);
                }
                /* other types: a newer API; ignored */
        }
        json_object_put(ev);
        if (!ok)
                w->ended = true;
        return ok;
}

static size_t on_stream(char *p, size_t size, size_t n, void *ud) {
        struct watch *w = ud;
        size_t len = size * n;
        if (!w->code)
                st_curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &w->code);
        if (w->code != 200) {
                /* an error body (Status): keep it for the message */
                if (w->line.len + len <= 65536)
                        st_buf_append(&w->line, p, len);
                return len;
        }
        /* events are lines; a chunk may end anywhere, even inside a UTF-8 sequence */
        for (size_t i = 0; i < len;) {
                const char *nl = memchr(p + i, '\n', len - i);
                size_t take = nl ? (size_t) (nl - (p + i)) : len - i;
                if (w->line.len + take > MAX_EVENT_BYTES) {
                        snprintf(w->err, w->errlen, "a watch event larger than %u bytes", MAX_EVENT_BYTES);
                        w->end = K8S_WATCH_FAILED;
                        w->ended = true;
                        return 0;
                }
                if (st_buf_append(&w->line, p + i, take) < 0)
                        return 0;
                i += take;
                if (!nl)
                        break;
                i++; /* the newline */
                if (w->line.len && !on_event(w, w->line.data, w->line.len))
                        return 0;
                w->line.len = 0;
        }
        return len;
}

enum k8s_watch_end k8s_watch(const struct k8s_conn *c, enum k8s_kind kind, char **rv,
                             int (*fn)(void *ctx, const char *type, json_object *obj), void *ctx, char *err, size_t errlen) {
        char url[4096], sel[512];
        struct curl_slist *hdrs = NULL;
        struct watch w = { .c = c, .rv = rv, .fn = fn, .ctx = ctx, .err = err, .errlen = errlen };
        CURL *h = request(c, "", &hdrs, err, errlen);
        if (!h)
                return K8S_WATCH_FAILED;
        w.h = h;
        char pp[512];
        selector(c, kind, h, sel, sizeof(sel));
        kind_path(c, kind, h, pp, sizeof(pp));
        char *esc = st_curl_easy_escape(h, *rv ? *rv : "", 0);
        snprintf(url, sizeof(url), "%s%s%swatch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%lld",
                 c->server, pp, sel, esc ? esc : "", (long long) c->watch_timeout_s);
        st_curl_free(esc);
        st_curl_easy_setopt(h, CURLOPT_URL, url);
        /* the server ends the stream after timeoutSeconds; a dead connection is noticed by TCP
         * keepalive rather than by an overall timeout */
        st_curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
        st_curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
        st_curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 10L);
        st_curl_easy_setopt(h, CURLOPT_TIMEOUT, (long) c->watch_timeout_s + 60L);
        st_curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_stream);
        st_curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
        CURLcode cr = st_curl_easy_perform(h);
        long code = 0;
        st_curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        enum k8s_watch_end end;
        if (w.ended)
                end = w.end;
        else if (cr == CURLE_ABORTED_BY_CALLBACK)
                end = K8S_WATCH_STOPPED;
        else if (code == 410)
                end = K8S_WATCH_GONE;
        else if (cr != CURLE_OK) {
                snprintf(err, errlen, "%s", st_curl_easy_strerror(cr));
                end = K8S_WATCH_FAILED;
        } else if (code != 200) {
                status_message(w.line.data, w.line.len, code, err, errlen);
                end = K8S_WATCH_FAILED;
        } else
                end = K8S_WATCH_TIMEOUT;
        st_buf_free(&w.line);
        st_curl_slist_free_all(hdrs);
        st_curl_easy_cleanup(h);
        return end;
}
