/* The context store's process table: what strata knows of every process on the host.
 *
 * Seeded from /proc at start-up so that processes already running are known, kept current by
 * the kernel receiver (fork, exec, exit), read by processors that enrich records. A process is
 * identified by (pid, start time): a pid reused by a new process never inherits the old one's
 * facts. Exited processes stay readable for a grace period, because their last records are
 * still in the pipeline after they are gone.
 *
 * Concurrency: sharded by pid, one rwlock per shard; readers copy out what they need, so no
 * pointer into the table outlives a lock. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "container.h"

#define ST_PROC_COMM_LEN 16

struct st_proctab;

/* One process, as a copy the caller owns (st_process_clear frees the strings). */
struct st_process {
        uint32_t pid, ppid;
        uint64_t start_ns;      /* CLOCK_BOOTTIME ns (from /proc: to the clock tick) */
        uint32_t uid, gid;
        uint64_t cgroup_id;     /* cgroup v2 id, 0 when unknown */
        char comm[ST_PROC_COMM_LEN];
        char *exe;              /* executable path, NULL when unknown */
        char *cmdline;          /* arguments joined by spaces, NULL when unknown */
        bool exited;
        int32_t exit_code;      /* wait(2) status, when exited */
        uint64_t exit_ns;       /* CLOCK_BOOTTIME ns, when exited */
        bool from_proc;         /* learnt from /proc (seed), not from an exec event */
        uint32_t fork_tid;      /* the parent's thread that forked it (at start_ns), 0 when unknown */
        /* The container (and pod) the process runs in: from its cgroup at seed or exec,
         * inherited from the parent at fork. container.id "" = none or not known, or a pod's
         * sandbox (the "pause" process), which is no container of the pod's. */
        struct st_container_ref container;
};
void st_process_clear(struct st_process *p); /* NULL-safe; frees exe and cmdline */
/* A pod's sandbox ("pause") holds the pod's namespaces and runs none of its code: its process
 * is attributed to no container, so that it is never taken for one of the pod's containers.
 * Clears p's container when p is one. (The table applies it at seed and exec.) */
void st_process_drop_sandbox(struct st_process *p);

int st_proctab_new(struct st_proctab **ret);
void st_proctab_free(struct st_proctab *t); /* NULL-safe */

/* The process table of the agent (created on first use; NULL only when out of memory). */
struct st_proctab *st_proctab_global(void);

/* Adds the processes in proc_root ("/proc", or a test's copy); returns how many, or -errno
 * when proc_root cannot be read. Processes already known are left as they are. */
int st_proctab_seed(struct st_proctab *t, const char *proc_root);

/* Adds process pid from proc_root when the table does not know it (a sender attributed by
 * SO_PEERCRED where no kernel receiver keeps the table current). 0, or -ENOENT when there is
 * no such process. */
int st_proctab_learn(struct st_proctab *t, const char *proc_root, uint32_t pid);

/* Kernel facts. start_ns identifies the process; an entry of the same pid with another start
 * is replaced (the pid was reused and its exit was missed). */
int st_proctab_fork(struct st_proctab *t, uint32_t parent_pid, uint32_t parent_tid, uint32_t pid, uint64_t start_ns);
/* p->exe, p->cmdline copied. A p without a container keeps the one the process had (from its
 * parent) as long as it is still in the same cgroup. */
int st_proctab_exec(struct st_proctab *t, const struct st_process *p);
int st_proctab_exit(struct st_proctab *t, uint32_t pid, uint64_t start_ns, int32_t exit_code, uint64_t exit_ns);

/* Copies the process pid out (into *ret, to st_process_clear). start_ns 0 means "whichever
 * process has this pid now"; otherwise only that exact process matches. -ENOENT when unknown. */
int st_proctab_get(struct st_proctab *t, uint32_t pid, uint64_t start_ns, struct st_process *ret);

/* Calls fn with the process pid (start_ns as for st_proctab_get) under the table's read lock,
 * for readers that copy what they need straight where it goes (no copy of the strings
 * first). fn must not call into the table. -ENOENT when unknown. */
int st_proctab_with(struct st_proctab *t, uint32_t pid, uint64_t start_ns,
                    void (*fn)(const struct st_process *p, void *ctx), void *ctx);

/* Marks exited (exit_code -1: unknown) the processes that are no longer in proc_root, or whose
 * pid now belongs to another start: their exits were never seen (filtered out, lost, or
 * before strata). Checks at most max processes, resuming where the last call stopped; stops
 * early when proc_root cannot be read for another reason than the process being gone.
 * Returns how many were marked. Reads proc_root outside the locks. proc_root must show the
 * host's pid namespace (the same pids the kernel reports). */
size_t st_proctab_reconcile(struct st_proctab *t, const char *proc_root, uint64_t now_ns, size_t max);

/* Forgets processes that exited before older_than_ns (CLOCK_BOOTTIME). Returns how many. */
size_t st_proctab_expire(struct st_proctab *t, uint64_t older_than_ns);
size_t st_proctab_size(struct st_proctab *t);

/* Whether two start times are the same process start: /proc gives them to the clock tick. */
bool st_proc_same_start(uint64_t a_ns, uint64_t b_ns);
/* The start time of pid from proc_root/PID/stat (to the clock tick). -errno when gone. */
int st_proc_start_ns(const char *proc_root, uint32_t pid, uint64_t *ret);
/* What to add to a CLOCK_BOOTTIME time to get Unix epoch ns (now: the clocks drift apart
 * when the real-time clock is stepped). */
int64_t st_boot_to_unix_ns(void);
/* CLOCK_BOOTTIME now, in ns. */
uint64_t st_boottime_ns(void);
