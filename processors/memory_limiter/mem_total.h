/* Total memory available to this process: the smallest of MemTotal and the memory limit of
 * its cgroup (v2 memory.max or v1 memory.limit_in_bytes), for limit_percentage. */
#pragma once
#include <stdint.h>

int st_mem_total_bytes(uint64_t *ret); /* -ENOENT when nothing could be read */
