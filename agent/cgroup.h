/* cgroup v2 facts: where the unified hierarchy is mounted, and the id of a cgroup (what BPF's
 * bpf_get_current_cgroup_id() returns: the inode number of its directory). Hosts may be pure
 * v2 (/sys/fs/cgroup) or hybrid (v2 at /sys/fs/cgroup/unified): never assume, read mounts. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* The first cgroup2 mount point in mounts_path ("/proc/self/mounts"), into buf.
 * -ENOENT when there is none. */
int st_cgroup2_mount(const char *mounts_path, char *buf, size_t cap);

/* The mount point in mounts_path of the v1 hierarchy that controller ("memory") is bound to,
 * into buf. -ENOENT when there is none (pure v2 hosts, or the controller is on v2). */
int st_cgroup_v1_mount(const char *mounts_path, const char *controller, char *buf, size_t cap);

/* The v2 cgroup path of a process ("/system.slice/x.service") from its cgroup file
 * (proc_root/PID/cgroup, the "0::" line), into buf. -ENOENT when it has none. */
int st_cgroup2_path_of(const char *proc_root, uint32_t pid, char *buf, size_t cap);

/* The id of the cgroup at mount + path (v2, or a v1 hierarchy's: kernfs gives each its
 * node id as inode number); 0 when it cannot be stat'ed. */
uint64_t st_cgroup2_id(const char *mount, const char *path);

/* The path ("/kubepods.slice/…", relative to mount) of the v2 cgroup with this id, through a
 * kernfs file handle: works after every process of the cgroup is gone, needs
 * CAP_DAC_READ_SEARCH. -ESTALE when no such cgroup exists (any more); -EXDEV when it is not
 * under the mount's root (strata in a cgroup namespace of its own sees only its subtree). */
int st_cgroup2_path_of_id(const char *mount, uint64_t id, char *buf, size_t cap);
