#include "k8s_kubeconfig.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tree.h"

char *k8s_base64_decode(const char *s, size_t *ret_len) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t n = strlen(s), len = 0;
        char *out = malloc(n / 4 * 3 + 4);
        uint32_t acc = 0;
        int bits = 0;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
                        continue;
                if (c == '=')
                        break;
                const char *p = strchr(alphabet, c);
                if (!p || !c) {
                        free(out);
                        return NULL;
                }
                acc = acc << 6 | (uint32_t) (p - alphabet);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[len++] = (char) ((acc >> bits) & 0xff);
                }
        }
        out[len] = '\0';
        if (ret_len)
                *ret_len = len;
        return out;
}

void k8s_kubeconfig_clear(struct k8s_kubeconfig *k) {
        if (!k)
                return;
        char **all[] = { &k->server, &k->ca_file, &k->ca_pem, &k->token, &k->token_file, &k->cert_file, &k->cert_pem, &k->key_file, &k->key_pem };
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
                if (*all[i] && (all[i] == &k->token || all[i] == &k->key_pem))
                        explicit_bzero(*all[i], strlen(*all[i]));
                free(*all[i]);
                *all[i] = NULL;
        }
}

static const char *scalar(const st_node *map, const char *key) {
        const st_node *n = map ? st_node_get(map, key) : NULL;
        return n && n->kind == ST_NODE_SCALAR ? n->value : NULL;
}

/* The entry named name of a list like clusters: [{name, cluster: {...}}]; its `inner` map. */
static const st_node *named(const st_node *root, const char *list, const char *inner, const char *name) {
        const st_node *seq = st_node_get(root, list);
        for (size_t i = 0; seq && seq->kind == ST_NODE_SEQ && i < seq->n; i++) {
                const char *nm = scalar(seq->items[i], "name");
                if (nm && strcmp(nm, name) == 0) {
                        const st_node *m = st_node_get(seq->items[i], inner);
                        return m && m->kind == ST_NODE_MAP ? m : NULL;
                }
        }
        return NULL;
}

/* A path from the file, made absolute against its directory. */
static char *path_of(const char *dir, const char *p) {
        char *out = NULL;
        if (!p)
                return NULL;
        if (p[0] == '/')
                return strdup(p);
        return asprintf(&out, "%s/%s", dir, p) < 0 ? NULL : out;
}

int k8s_kubeconfig_load(const char *path, const char *context, struct k8s_kubeconfig *ret, char *err, size_t errlen) {
        struct st_diag d = { 0 };
        st_node *root = NULL;
        struct k8s_kubeconfig k = { 0 };
        int r = -EINVAL;
        char *copy = strdup(path), *dir = copy ? dirname(copy) : NULL;

        if (!dir) {
                snprintf(err, errlen, "out of memory");
                free(copy);
                return -ENOMEM;
        }
        if (st_tree_parse_file(path, &root, &d) < 0 || !root || root->kind != ST_NODE_MAP) {
                snprintf(err, errlen, "%s: %s", path, d.text.len ? st_buf_cstr(&d.text) : "not a kubeconfig (no mapping)");
                goto out;
        }
        const char *ctx_name = context && *context ? context : scalar(root, "current-context");
        if (!ctx_name) {
                snprintf(err, errlen, "%s: no current-context, and no context configured", path);
                goto out;
        }
        const st_node *ctx = named(root, "contexts", "context", ctx_name);
        if (!ctx) {
                snprintf(err, errlen, "%s: no context named '%s'", path, ctx_name);
                goto out;
        }
        const char *cluster_name = scalar(ctx, "cluster"), *user_name = scalar(ctx, "user");
        const st_node *cluster = cluster_name ? named(root, "clusters", "cluster", cluster_name) : NULL;
        if (!cluster || !scalar(cluster, "server")) {
                snprintf(err, errlen, "%s: context '%s' names no cluster with a server", path, ctx_name);
                goto out;
        }
        k.server = strdup(scalar(cluster, "server"));
        const char *v = scalar(cluster, "insecure-skip-tls-verify");
        k.insecure = v && strcmp(v, "true") == 0;
        k.ca_file = path_of(dir, scalar(cluster, "certificate-authority"));
        if ((v = scalar(cluster, "certificate-authority-data")) && !(k.ca_pem = k8s_base64_decode(v, NULL))) {
                snprintf(err, errlen, "%s: cluster '%s': certificate-authority-data is not base64", path, cluster_name);
                goto out;
        }
        const st_node *user = user_name ? named(root, "users", "user", user_name) : NULL;
        if (user) {
                if (st_node_get(user, "exec") || st_node_get(user, "auth-provider")) {
                        snprintf(err, errlen, "%s: user '%s' authenticates through a plugin (exec, auth-provider), which "
                                 "strata does not run: use a token or a client certificate", path, user_name);
                        goto out;
                }
                if ((v = scalar(user, "token")))
                        k.token = strdup(v);
                k.token_file = path_of(dir, scalar(user, "tokenFile"));
                k.cert_file = path_of(dir, scalar(user, "client-certificate"));
                k.key_file = path_of(dir, scalar(user, "client-key"));
                if (((v = scalar(user, "client-certificate-data")) && !(k.cert_pem = k8s_base64_decode(v, NULL))) ||
                    ((v = scalar(user, "client-key-data")) && !(k.key_pem = k8s_base64_decode(v, NULL)))) {
                        snprintf(err, errlen, "%s: user '%s': client certificate or key data is not base64", path, user_name);
                        goto out;
                }
        }
        if (!k.server) {
                snprintf(err, errlen, "out of memory");
                r = -ENOMEM;
                goto out;
        }
        *ret = k;
        k = (struct k8s_kubeconfig) { 0 };
        r = 0;
out:
        k8s_kubeconfig_clear(&k);
        st_node_free(root);
        st_diag_free(&d);
        free(copy);
        return r;
}
