/* Kubernetes v1 Pod objects (JSON, as the API serves them) → the stripped pods of the context
 * store (pod_cache.h). Separate from the API client so that it can be tested on payloads alone. */
#pragma once
#include <json-c/json.h>
#include <stddef.h>

#include "pod_cache.h"

/* What to keep of a pod beyond the fixed fields: labels and annotations by key. */
struct k8s_extract {
        char *const *labels;
        size_t n_labels;
        char *const *annotations;
        size_t n_annotations;
};

/* Parses one Pod. -EBADMSG, with the reason in err ("metadata.uid: expected a string"), when
 * obj is not a Pod of the expected shape; -ENOMEM. */
int k8s_pod_from_json(const json_object *obj, const struct k8s_extract *x, struct st_pod **ret, char *err, size_t errlen);

/* The Deployment of a ReplicaSet: its name without the pod-template hash ("web-7d4b9c8f5" →
 * "web"), given the pod's pod-template-hash label when it has one. NULL when the name does not
 * end in a hash. Malloc'd. */
char *k8s_deployment_of_replicaset(const char *rs_name, const char *template_hash);
/* The CronJob of a Job: its name without the scheduled-time suffix ("backup-28930260" →
 * "backup"). NULL when there is none. Malloc'd. */
char *k8s_cronjob_of_job(const char *job_name);

/* A Namespace or Node object: its name, and the labels of keys (only those). -EBADMSG with the
 * reason in err. */
int k8s_meta_from_json(const json_object *obj, char *const *keys, size_t n_keys, char **ret_name,
                       struct st_pod_kv **ret_labels, size_t *ret_n, char *err, size_t errlen);
