#include "mem_total.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A number from a one-line file; "max" (cgroup v2: no limit) and unreadable files give 0. */
static uint64_t read_limit(const char *path) {
        FILE *f = fopen(path, "re");
        unsigned long long v = 0;
        if (!f)
                return 0;
        if (fscanf(f, "%llu", &v) != 1)
                v = 0;
        fclose(f);
        return v;
}

static uint64_t meminfo_total(void) {
        FILE *f = fopen("/proc/meminfo", "re");
        char line[256];
        unsigned long long kb = 0;
        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
                        break;
        fclose(f);
        return (uint64_t) kb * 1024;
}

static void take_min(uint64_t *total, uint64_t v) {
        if (v > 0 && (*total == 0 || v < *total))
                *total = v; /* v1 reports "no limit" as a huge number, which never wins */
}

int st_mem_total_bytes(uint64_t *ret) {
        uint64_t total = meminfo_total();
        char line[512], path[700];
        FILE *f;

        /* Inside a container the cgroup is usually mounted at its own root; outside, it is the
         * path from /proc/self/cgroup. Try both. */
        take_min(&total, read_limit("/sys/fs/cgroup/memory.max"));
        take_min(&total, read_limit("/sys/fs/cgroup/memory/memory.limit_in_bytes"));
        f = fopen("/proc/self/cgroup", "re");
        if (f) {
                while (fgets(line, sizeof(line), f)) {
                        char *ctrl = strchr(line, ':'), *cg;
                        if (!ctrl || !(cg = strchr(ctrl + 1, ':')))
                                continue;
                        *cg++ = 0;
                        cg[strcspn(cg, "\n")] = 0;
                        if (strcmp(cg, "/") == 0)
                                continue;
                        if (strcmp(ctrl + 1, "") == 0)
                                snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max", cg);
                        else if (strstr(ctrl + 1, "memory"))
                                snprintf(path, sizeof(path), "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", cg);
                        else
                                continue;
                        take_min(&total, read_limit(path));
                }
                fclose(f);
        }
        if (total == 0)
                return -ENOENT;
        *ret = total;
        return 0;
}
