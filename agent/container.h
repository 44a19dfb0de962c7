/* Which container a process runs in, read from its cgroup path.
 *
 * Container engines name a container's cgroup after its id, in a handful of shapes that
 * depend on the runtime and on the cgroup driver (systemd or cgroupfs):
 *
 *   /system.slice/docker-<id>.scope                        docker, systemd driver
 *   /docker/<id>                                           docker, cgroupfs driver
 *   /kubepods.slice/kubepods-besteffort.slice/
 *      kubepods-besteffort-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope
 *   /kubepods/burstable/pod<uid>/<id>                      kubelet, cgroupfs driver
 *   /system.slice/containerd.service/kubepods-…-pod<uid>.slice:cri-containerd:<id>
 *   /machine.slice/libpod-<id>.scope                       podman
 *   /../<id>                                               seen from inside a cgroup namespace
 *   /ecs/<task>/<task>-<n>                                 ECS (Fargate container ids)
 *
 * The innermost match wins (kind and nested engines put one inside another). Helper
 * processes that live beside a container (CRI-O's and podman's conmon) are in no container. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_CONTAINER_ID_MAX 64
#define ST_POD_UID_LEN 36

struct st_container_ref {
        char id[ST_CONTAINER_ID_MAX + 1];     /* "" when the process is in no container */
        char pod_uid[ST_POD_UID_LEN + 1];     /* "" when the path names no pod */
        const char *runtime;                  /* "containerd", "cri-o", "docker", "podman", or NULL */
};

static inline bool st_container_known(const struct st_container_ref *c) { return c->id[0] != '\0'; }

/* One cgroup path (the part after "hierarchy:controllers:"). Returns 0 and fills *ret when
 * the path names a container, -ENOENT when it names none (or a conmon helper). */
int st_container_from_path(const char *path, struct st_container_ref *ret);

/* A whole /proc/PID/cgroup text ("0::/…\n12:pids:/docker/…\n"): the v2 line first, then the
 * v1 lines (hybrid hosts where the engine only uses v1 leave the v2 path at "/"). */
int st_container_from_cgroup_file(const char *text, struct st_container_ref *ret);

/* Reads proc_root/PID/cgroup and parses it. -ENOENT when no container, -ESRCH when the process
 * is gone, -errno on other read errors. */
int st_container_of_pid(const char *proc_root, uint32_t pid, struct st_container_ref *ret);

/* The container of process pid whose v2 cgroup id is cgroup_id and whose cgroup in the memory
 * controller's hierarchy has the id memcg_id (either 0: unknown): from caches of ids, else
 * from proc_root/PID/cgroup. Thread-safe. -ENOENT when in no container, -errno when the
 * process is gone (callers keep what the parent had). */
int st_container_resolve(uint64_t cgroup_id, uint64_t memcg_id, const char *proc_root, uint32_t pid,
                         struct st_container_ref *ret);
