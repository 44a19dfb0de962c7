/* The Kubernetes API, as the k8s receiver uses it: list pods in pages, then watch them from
 * the list's resourceVersion. libcurl over HTTPS (HTTP/2 where the server offers it), the
 * bearer token re-read from its file on every request (service account tokens rotate). */
#pragma once
#include <json-c/json.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct k8s_conn {
        char *server;      /* "https://10.96.0.1:443" */
        char *token_file;  /* "" = no token file */
        char *token;       /* a token given as is (kubeconfig), when there is no token file */
        char *ca_file;     /* "" = the system's CAs */
        char *ca_pem;      /* the CA bundle itself (kubeconfig's -data), instead of ca_file */
        char *cert_file, *cert_pem, *key_file, *key_pem; /* a client certificate (kubeconfig) */
        bool insecure;     /* no TLS verification (tests, never production) */
        char *node;        /* only pods of this node; "" = all */
        char *namespace_;  /* only pods of this namespace; "" = all (needs a ClusterRole) */
        int64_t page_size;
        int64_t watch_timeout_s;
        atomic_bool *stop; /* aborts a transfer underway */
};

/* What is listed and watched: pods (of the node and namespace of the connection), and, when
 * the config asks for their labels, namespaces and this node. */
enum k8s_kind { K8S_PODS, K8S_NAMESPACES, K8S_NODES };
const char *k8s_kind_name(enum k8s_kind k); /* "pods" */

/* Calls fn for each object of kind of every page, then returns the list's resourceVersion in
 * *ret_rv (malloc'd). -EIO with the reason in err (HTTP status and the API's message, or
 * curl's), -EBADMSG for a response that is not a PodList, -ECANCELED when stopped. */
int k8s_list(const struct k8s_conn *c, enum k8s_kind kind, int (*fn)(void *ctx, json_object *obj), void *ctx,
             char **ret_rv, char *err, size_t errlen);

enum k8s_watch_end {
        K8S_WATCH_TIMEOUT, /* the server ended the stream (its timeout): watch again from rv */
        K8S_WATCH_GONE,    /* 410 Gone (HTTP, or an ERROR event): the rv is too old, relist */
        K8S_WATCH_FAILED,  /* an error (in err): back off, watch again */
        K8S_WATCH_STOPPED,
};

/* Watches kind from *rv (updated as events and bookmarks come). fn gets each event's type
 * ("ADDED", "MODIFIED", "DELETED") and object; bookmarks only move *rv. */
enum k8s_watch_end k8s_watch(const struct k8s_conn *c, enum k8s_kind kind, char **rv,
                             int (*fn)(void *ctx, const char *type, json_object *obj), void *ctx, char *err, size_t errlen);
