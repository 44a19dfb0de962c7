#include "ecs_metadata.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "curl_util.h"

#define TIMEOUT_MS 5000L

const char *st_ecs_metadata_uri(void) {
        const char *u = getenv("ECS_CONTAINER_METADATA_URI_V4");
        return u && *u ? u : NULL;
}

static const char *str(json_object *o, const char *key) {
        json_object *v = NULL;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static void copy(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", src ? src : ""); }

/* arn:aws:ecs:REGION:ACCOUNT:task/… → region, account */
static void arn_parts(const char *arn, struct st_ecs_task *t) {
        const char *p = arn;
        for (int field = 0; field < 5 && p; field++) {
                const char *next = strchr(p, ':');
                size_t n = next ? (size_t) (next - p) : strlen(p);
                if (field == 3)
                        snprintf(t->region, sizeof(t->region), "%.*s", (int) n, p);
                else if (field == 4)
                        snprintf(t->account, sizeof(t->account), "%.*s", (int) n, p);
                p = next ? next + 1 : NULL;
        }
}

int st_ecs_task_parse(const char *task_json, size_t len, const char *self_id, struct st_ecs_task *ret, char *err,
                      size_t errlen) {
        json_tokener *tok = json_tokener_new();
        json_object *o = tok ? json_tokener_parse_ex(tok, task_json, (int) len) : NULL, *cs = NULL;
        json_tokener_free(tok);
        struct st_ecs_task t;
        memset(&t, 0, sizeof(t));
        int r = -EBADMSG;
        if (!json_object_is_type(o, json_type_object)) {
                snprintf(err, errlen, "the task document is not a JSON object");
                goto out;
        }
        const char *arn = str(o, "TaskARN"), *cluster = str(o, "Cluster");
        if (!arn || strncmp(arn, "arn:", 4) != 0 || !cluster) {
                snprintf(err, errlen, "the task document has no TaskARN or Cluster string");
                goto out;
        }
        copy(t.task_arn, sizeof(t.task_arn), arn);
        arn_parts(arn, &t);
        /* Cluster is an ARN, or (EC2 launch type, older agents) a short name */
        if (strncmp(cluster, "arn:", 4) == 0)
                copy(t.cluster_arn, sizeof(t.cluster_arn), cluster);
        else
                snprintf(t.cluster_arn, sizeof(t.cluster_arn), "arn:aws:ecs:%s:%s:cluster/%s", t.region, t.account, cluster);
        copy(t.family, sizeof(t.family), str(o, "Family"));
        copy(t.revision, sizeof(t.revision), str(o, "Revision"));
        copy(t.zone, sizeof(t.zone), str(o, "AvailabilityZone"));
        copy(t.launch_type, sizeof(t.launch_type), str(o, "LaunchType"));
        if (json_object_object_get_ex(o, "Containers", &cs) && !json_object_is_type(cs, json_type_array)) {
                snprintf(err, errlen, "Containers is not an array");
                goto out;
        }
        for (size_t i = 0; cs && i < json_object_array_length(cs) && t.n_containers < 32; i++) {
                json_object *c = json_object_array_get_idx(cs, i);
                const char *id = str(c, "DockerId"), *name = str(c, "Name");
                if (!id || !name)
                        continue;
                struct st_ecs_container *e = &t.containers[t.n_containers++];
                copy(e->id, sizeof(e->id), id);
                copy(e->name, sizeof(e->name), name);
                copy(e->image, sizeof(e->image), str(c, "Image"));
                e->is_self = self_id && strcmp(self_id, id) == 0;
                e->is_pause = strcmp(name, "~internal~ecs~pause") == 0;
        }
        *ret = t;
        r = 0;
out:
        json_object_put(o);
        return r;
}

static __thread const atomic_bool *stop_flag;
void st_ecs_set_stop(const atomic_bool *stop) { stop_flag = stop; }

int st_ecs_get(const char *base, const char *path, char **ret, size_t *ret_len, char *err, size_t errlen) {
        char url[1024];
        struct st_curl_body got = { .limit = 8u << 20 };
        long status = 0;
        CURL *h = st_curl_easy_init();
        if (!h)
                return st_curl_init_error(err, errlen);
        snprintf(url, sizeof(url), "%s%s", base, path);
        st_curl_easy_setopt(h, CURLOPT_URL, url);
        st_curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        st_curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, TIMEOUT_MS);
        st_curl_collect(h, &got);
        st_curl_abort_when(h, stop_flag);
        CURLcode cr = st_curl_easy_perform(h);
        st_curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        st_curl_easy_cleanup(h);
        if (cr != CURLE_OK || status != 200) {
                if (cr != CURLE_OK)
                        snprintf(err, errlen, "%s: %s", url, got.too_big ? "an answer larger than 8 MiB" : st_curl_easy_strerror(cr));
                else
                        snprintf(err, errlen, "%s: HTTP %ld", url, status);
                st_buf_free(&got.b);
                return -EIO;
        }
        if (st_buf_reserve(&got.b, 1) < 0) {
                st_buf_free(&got.b);
                return -ENOMEM;
        }
        got.b.data[got.b.len] = '\0';
        *ret = got.b.data;
        *ret_len = got.b.len;
        return 0;
}

int st_ecs_task_fetch(const char *base, struct st_ecs_task *ret, char *err, size_t errlen) {
        char *self = NULL, *task = NULL, self_id[160] = "";
        size_t n;
        /* the URI's own document names the container strata runs in */
        if (st_ecs_get(base, "", &self, &n, err, errlen) == 0) {
                json_tokener *tok = json_tokener_new();
                json_object *o = tok ? json_tokener_parse_ex(tok, self, (int) n) : NULL;
                json_tokener_free(tok);
                copy(self_id, sizeof(self_id), json_object_is_type(o, json_type_object) ? str(o, "DockerId") : NULL);
                json_object_put(o);
                free(self);
        }
        int r = st_ecs_get(base, "/task", &task, &n, err, errlen);
        if (r < 0)
                return r;
        r = st_ecs_task_parse(task, n, *self_id ? self_id : NULL, ret, err, errlen);
        free(task);
        return r;
}

const struct st_ecs_container *st_ecs_app_container(const struct st_ecs_task *t) {
        const struct st_ecs_container *found = NULL;
        for (size_t i = 0; i < t->n_containers; i++) {
                if (t->containers[i].is_self || t->containers[i].is_pause)
                        continue;
                if (found)
                        return NULL;
                found = &t->containers[i];
        }
        return found;
}
