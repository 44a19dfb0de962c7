/* The ECS task metadata endpoint, version 4 (ECS_CONTAINER_METADATA_URI_V4): who this task is
 * (cluster, ARN, family, revision, zone, launch type) and its containers, and their stats.
 * Read by the ecs receiver (per-container metrics) and the resourcedetection processor (task
 * identity on every record). */
#pragma once
#include <json-c/json.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct st_ecs_container {
        char id[160];     /* DockerId (Fargate: 32 hex + "-" + digits) */
        char name[256];
        char image[512];
        bool is_self;     /* the container strata runs in (the metadata URI's) */
        bool is_pause;    /* ECS's own ~internal~ecs~pause */
};

struct st_ecs_task {
        char cluster_arn[512], task_arn[512], family[256], revision[32];
        char region[64], account[32], zone[64], launch_type[32];
        struct st_ecs_container containers[32];
        size_t n_containers;
};

/* The metadata base URI: ECS_CONTAINER_METADATA_URI_V4, or NULL outside ECS. */
const char *st_ecs_metadata_uri(void);

/* Parses a /task document (and, for which container is strata's, the URI's own container
 * document's DockerId, NULL when unknown). -EBADMSG with the reason in err. */
int st_ecs_task_parse(const char *task_json, size_t len, const char *self_id, struct st_ecs_task *ret, char *err,
                      size_t errlen);

/* GETs base + path ("/task", "/task/stats", "" for the container) into a new buffer.
 * -EIO with the reason in err. */
int st_ecs_get(const char *base, const char *path, char **ret, size_t *ret_len, char *err, size_t errlen);
/* A flag that, once true, aborts this thread's requests underway (its owner's shutdown). */
void st_ecs_set_stop(const atomic_bool *stop);

/* Fetches and parses the task (and which container is strata's). */
int st_ecs_task_fetch(const char *base, struct st_ecs_task *ret, char *err, size_t errlen);

/* The container an app's records come from when nothing else says: the only container that is
 * neither strata's own nor ECS's pause container. NULL when there is none or several. */
const struct st_ecs_container *st_ecs_app_container(const struct st_ecs_task *t);
