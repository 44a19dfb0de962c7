/* Kernel events → OTLP log records, gathered into one logs batch per flush.
 *
 * Records are grouped by process: each group is a ResourceLogs whose resource is the process
 * (process.pid, process.parent_pid, process.executable.*, process.command_line, cgroup) as
 * the process table knew it when the group opened; an exec opens a new group, since the
 * process is a new image from then on. Everything lives in the batch's arena. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "ebpf_decode.h"
#include "process_table.h"

struct krec_group;

struct krec_builder {
        st_batch *batch;           /* NULL until the first record */
        struct krec_group *groups;
        size_t n_groups, cap_groups;
        size_t records;
        int64_t boot_to_unix_ns;   /* CLOCK_REALTIME - CLOCK_BOOTTIME, set by krec_clock_sync */
        uint32_t net_sample_every; /* > 1: network records say they stand for that many */
        size_t dropped;            /* records lost to memory exhaustion since the last krec_take */
        size_t gap_records;        /* strata.gap records in the batch being built */
        uint64_t gap_lost;         /* and the lost events they tell of */
};

void krec_clock_sync(struct krec_builder *kb);
/* Adds the record of ev; proc is the process it is about, after the event (may be NULL). */
int krec_add(struct krec_builder *kb, const struct kevent *ev, const struct st_process *proc);
/* A `strata.gap` record: `lost` events were lost between first_ns and last_ns (CLOCK_BOOTTIME). */
int krec_add_gap(struct krec_builder *kb, const char *what, uint64_t lost, uint64_t first_ns, uint64_t last_ns);
/* Hands over the batch built so far (NULL when empty) and starts a new one. Records it could
 * not keep (out of memory) are added to kb->dropped, for the caller to count. */
st_batch *krec_take(struct krec_builder *kb);
void krec_reset(struct krec_builder *kb); /* drops what was built */
