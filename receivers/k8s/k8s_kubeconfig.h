/* A kubeconfig file (for development outside a cluster): the server, CA and credentials of a
 * context, as kubectl reads them. Supported: server, certificate-authority(-data),
 * insecure-skip-tls-verify; token, tokenFile, client-certificate(-data), client-key(-data).
 * Not: exec and auth-provider plugins (they run programs), username/password. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct k8s_kubeconfig {
        char *server;
        char *ca_file, *ca_pem;       /* a file, or the PEM itself (from -data) */
        bool insecure;
        char *token, *token_file;
        char *cert_file, *cert_pem;
        char *key_file, *key_pem;
};

/* Loads context (NULL or "": current-context) of the kubeconfig at path. Relative file paths
 * in it are relative to its directory, as kubectl has them. -EINVAL with the reason in err. */
int k8s_kubeconfig_load(const char *path, const char *context, struct k8s_kubeconfig *ret, char *err, size_t errlen);
void k8s_kubeconfig_clear(struct k8s_kubeconfig *k);

/* Standard base64 (padding optional, whitespace skipped) into a new NUL-terminated buffer.
 * NULL when s is not base64. */
char *k8s_base64_decode(const char *s, size_t *ret_len);
