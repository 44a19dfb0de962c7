#include "aws_sigv4.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void hex(const unsigned char *d, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[d[i] >> 4];
                out[2 * i + 1] = digits[d[i] & 15];
        }
        out[2 * n] = '\0';
}

void st_sha256_hex(const void *data, size_t len, char out[65]) {
        unsigned char md[SHA256_DIGEST_LENGTH];
        SHA256(data, len, md);
        hex(md, sizeof(md), out);
}

void st_amz_date(long long unix_s, char out[17]) {
        time_t t = (time_t) unix_s;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int hmac(const void *key, size_t klen, const char *msg, unsigned char out[32]) {
        unsigned int n = 32;
        return HMAC(EVP_sha256(), key, (int) klen, (const unsigned char *) msg, strlen(msg), out, &n) ? 0 : -EINVAL;
}

static bool unreserved(unsigned char c) { return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~'; }

/* RFC 3986 encoding of n bytes, '/' kept when keep_slash. */
static int encode(st_buf *b, const char *s, size_t n, bool keep_slash) {
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                int r = unreserved(c) || (keep_slash && c == '/') ? st_buf_append(b, &s[i], 1) : st_buf_printf(b, "%%%02X", c);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int hexval(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decoding in place ('+' stays: it is a space only in forms). Returns the length. */
static size_t decode(char *s, size_t n) {
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '%' && i + 2 < n + 0 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                        s[w++] = (char) (hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                        i += 2;
                } else
                        s[w++] = s[i];
        }
        return w;
}

/* The path: dot segments removed and empty ones collapsed (not for S3), each byte encoded. */
static int canonical_path(st_buf *b, const char *path, bool keep) {
        if (!path || !*path)
                return st_buf_puts(b, "/");
        if (keep)
                return encode(b, path, strlen(path), true);
        size_t n = strlen(path);
        const char **seg = calloc(n + 1, sizeof(*seg));
        size_t *len = calloc(n + 1, sizeof(*len)), k = 0;
        int r = 0;
        if (!seg || !len) {
                free(seg);
                free(len);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n;) {
                while (i < n && path[i] == '/')
                        i++;
                size_t start = i;
                while (i < n && path[i] != '/')
                        i++;
                size_t l = i - start;
                if (l == 0 || (l == 1 && path[start] == '.'))
                        continue;
                if (l == 2 && path[start] == '.' && path[start + 1] == '.') {
                        if (k)
                                k--;
                        continue;
                }
                seg[k] = path + start;
                len[k++] = l;
        }
        /* a trailing slash (or a final "." / "..") leaves the path a directory */
        bool trailing = path[n - 1] == '/' || (n >= 2 && strcmp(path + n - 2, "/.") == 0) ||
                        (n >= 3 && strcmp(path + n - 3, "/..") == 0);
        if (!k)
                r = st_buf_puts(b, "/");
        for (size_t i = 0; i < k && r >= 0; i++) {
                r = st_buf_puts(b, "/");
                if (r >= 0)
                        r = encode(b, seg[i], len[i], false);
        }
        if (r >= 0 && k && trailing)
                r = st_buf_puts(b, "/");
        free(seg);
        free(len);
        return r;
}

struct param {
        char *key, *value; /* encoded */
};

static int cmp_param(const void *a, const void *b) {
        const struct param *x = a, *y = b;
        int c = strcmp(x->key, y->key);
        return c ? c : strcmp(x->value, y->value);
}

/* key=value pairs decoded, re-encoded, sorted by key then value. */
static int canonical_query(st_buf *b, const char *query) {
        if (!query || !*query)
                return 0;
        size_t n = 1;
        for (const char *q = query; *q; q++)
                n += *q == '&';
        struct param *v = calloc(n, sizeof(*v));
        char *copy = strdup(query);
        size_t m = 0;
        int r = 0;
        if (!v || !copy) {
                r = -ENOMEM;
                goto out;
        }
        for (char *save = NULL, *part = strtok_r(copy, "&", &save); part && r >= 0; part = strtok_r(NULL, "&", &save)) {
                char *eq = strchr(part, '=');
                char *val = eq ? eq + 1 : (char *) "";
                if (eq)
                        *eq = '\0';
                st_buf k = { 0 }, w = { 0 };
                size_t kl = decode(part, strlen(part)), vl = eq ? decode(val, strlen(val)) : 0;
                if (encode(&k, part, kl, false) < 0 || encode(&w, val, vl, false) < 0) {
                        st_buf_free(&k);
                        st_buf_free(&w);
                        r = -ENOMEM;
                        break;
                }
                v[m].key = strdup(st_buf_cstr(&k));
                v[m].value = strdup(st_buf_cstr(&w));
                st_buf_free(&k);
                st_buf_free(&w);
                if (!v[m].key || !v[m].value)
                        r = -ENOMEM;
                m++;
        }
        if (r >= 0) {
                qsort(v, m, sizeof(*v), cmp_param);
                for (size_t i = 0; i < m && r >= 0; i++)
                        r = st_buf_printf(b, "%s%s=%s", i ? "&" : "", v[i].key, v[i].value);
        }
out:
        for (size_t i = 0; v && i < m; i++) {
                free(v[i].key);
                free(v[i].value);
        }
        free(v);
        free(copy);
        return r;
}

struct hdr {
        char *name;  /* lowercased */
        st_buf value;
        size_t order;
};

static int cmp_hdr(const void *a, const void *b) {
        const struct hdr *x = a, *y = b;
        int c = strcmp(x->name, y->name);
        return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* A value trimmed, inner runs of spaces collapsed, folded lines joined with ','. */
static int append_value(st_buf *b, const char *v) {
        bool first_line = true;
        for (const char *line = v; line;) {
                const char *nl = strchr(line, '\n');
                size_t n = nl ? (size_t) (nl - line) : strlen(line);
                size_t s = 0, e = n;
                while (s < e && isspace((unsigned char) line[s]))
                        s++;
                while (e > s && isspace((unsigned char) line[e - 1]))
                        e--;
                if (e > s || first_line) {
                        if (!first_line && st_buf_puts(b, ",") < 0)
                                return -ENOMEM;
                        bool space = false;
                        for (size_t i = s; i < e; i++) {
                                bool sp = line[i] == ' ' || line[i] == '\t';
                                if (sp && space)
                                        continue;
                                if (st_buf_append(b, sp ? " " : &line[i], 1) < 0)
                                        return -ENOMEM;
                                space = sp;
                        }
                        first_line = false;
                }
                line = nl ? nl + 1 : NULL;
        }
        return 0;
}

int st_sigv4_sign(const struct st_sigv4_input *in, const char *access_key_id, const char *secret_access_key,
                  st_buf *ret_authorization, st_buf *ret_canonical, st_buf *ret_string_to_sign) {
        st_buf creq = { 0 }, signed_headers = { 0 }, sts = { 0 };
        struct hdr *h = NULL;
        size_t nh = 0;
        char body_hash[65], creq_hash[65], date[9], sig[65];
        unsigned char k1[32], k2[32], k3[32], k4[32], s[32];
        char *ksecret = NULL;
        int r = -EINVAL;

        if (!in->method || !in->amz_date || strlen(in->amz_date) < 8 || !in->region || !in->service || !access_key_id ||
            !secret_access_key)
                return -EINVAL;
        memcpy(date, in->amz_date, 8);
        date[8] = '\0';

        /* headers: merged by name (duplicates joined in order), sorted */
        h = calloc(in->n_headers ? in->n_headers : 1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        for (size_t i = 0; i < in->n_headers; i++) {
                char *name = strdup(in->headers[i].name);
                if (!name)
                        goto nomem;
                for (char *c = name; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
                size_t j;
                for (j = 0; j < nh && strcmp(h[j].name, name) != 0; j++)
                        ;
                if (j < nh) {
                        free(name);
                        if (st_buf_puts(&h[j].value, ",") < 0 || append_value(&h[j].value, in->headers[i].value) < 0)
                                goto nomem;
                } else {
                        h[nh] = (struct hdr) { .name = name, .order = i };
                        if (append_value(&h[nh++].value, in->headers[i].value) < 0)
                                goto nomem;
                }
        }
        qsort(h, nh, sizeof(*h), cmp_hdr);

        st_sha256_hex(in->body ? in->body : "", in->body_len, body_hash);
        if (st_buf_printf(&creq, "%s\n", in->method) < 0 || canonical_path(&creq, in->path, in->keep_path) < 0 ||
            st_buf_puts(&creq, "\n") < 0 || canonical_query(&creq, in->query) < 0 || st_buf_puts(&creq, "\n") < 0)
                goto nomem;
        for (size_t i = 0; i < nh; i++)
                if (st_buf_printf(&creq, "%s:%s\n", h[i].name, st_buf_cstr(&h[i].value)) < 0 ||
                    st_buf_printf(&signed_headers, "%s%s", i ? ";" : "", h[i].name) < 0)
                        goto nomem;
        if (st_buf_printf(&creq, "\n%s\n%s", nh ? st_buf_cstr(&signed_headers) : "", body_hash) < 0)
                goto nomem;

        st_sha256_hex(creq.data, creq.len, creq_hash);
        if (st_buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", in->amz_date, date, in->region,
                          in->service, creq_hash) < 0)
                goto nomem;

        if (asprintf(&ksecret, "AWS4%s", secret_access_key) < 0) {
                ksecret = NULL;
                goto nomem;
        }
        if (hmac(ksecret, strlen(ksecret), date, k1) < 0 || hmac(k1, 32, in->region, k2) < 0 ||
            hmac(k2, 32, in->service, k3) < 0 || hmac(k3, 32, "aws4_request", k4) < 0 ||
            hmac(k4, 32, st_buf_cstr(&sts), s) < 0)
                goto out;
        hex(s, 32, sig);
        r = 0;
        if (ret_authorization &&
            st_buf_printf(ret_authorization, "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
                          access_key_id, date, in->region, in->service, nh ? st_buf_cstr(&signed_headers) : "", sig) < 0)
                r = -ENOMEM;
        if (r >= 0 && ret_canonical && st_buf_append(ret_canonical, creq.data, creq.len) < 0)
                r = -ENOMEM;
        if (r >= 0 && ret_string_to_sign && st_buf_append(ret_string_to_sign, sts.data, sts.len) < 0)
                r = -ENOMEM;
        goto out;
nomem:
        r = -ENOMEM;
out:
        if (ksecret) {
                explicit_bzero(ksecret, strlen(ksecret));
                free(ksecret);
        }
        explicit_bzero(k1, sizeof(k1));
        explicit_bzero(k4, sizeof(k4));
        for (size_t i = 0; i < nh; i++) {
                free(h[i].name);
                st_buf_free(&h[i].value);
        }
        free(h);
        st_buf_free(&creq);
        st_buf_free(&signed_headers);
        st_buf_free(&sts);
        return r;
}
