#include "malloc_tune.h"

#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Above max_recv_msg_size's default (4 MiB) and a full default batch, so that the buffers of
 * the hot path come from the heap and are reused. */
#define MMAP_THRESHOLD (16u << 20)
/* Freed memory kept at the top of a heap before glibc trims it on its own. */
#define TRIM_THRESHOLD (64u << 20)
/* One heap for all threads. A request's bytes are allocated on a gRPC thread and freed on an
 * exporter's, and each thread's own arena kept its own free memory: at 10k spans/s the peak RSS
 * was about 1 MiB higher with glibc's default (8 arenas per core), and flat-out throughput per
 * core no higher, on 2 CPUs (docs/design-notes.md); contention on more cores is unmeasured. */
#define ARENA_MAX 1

static bool user_tuned;

void st_malloc_configure(void) {
        const char *t = getenv("GLIBC_TUNABLES");
        if (t && strstr(t, "glibc.malloc.")) {
                user_tuned = true;
                st_debug(NULL, "malloc: GLIBC_TUNABLES sets glibc.malloc.*, leaving malloc as configured");
                return;
        }
        if (mallopt(M_MMAP_THRESHOLD, (int) MMAP_THRESHOLD) != 1 || mallopt(M_TRIM_THRESHOLD, (int) TRIM_THRESHOLD) != 1 ||
            mallopt(M_ARENA_MAX, ARENA_MAX) != 1)
                st_debug(NULL, "malloc: mallopt refused a threshold or the arena limit, ignoring");
}

void st_malloc_release(void) {
        if (!user_tuned)
                malloc_trim(0);
}
