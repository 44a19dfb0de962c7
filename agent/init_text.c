/* See init_text.h. */
#include "init_text.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

/* Defined by cmake/hot_text.ld; undefined (null) in builds linked without it. */
extern const char __strata_init_text_start[] __attribute__((weak, visibility("hidden")));
extern const char __strata_init_text_end[] __attribute__((weak, visibility("hidden")));

int st_init_text_release(size_t *ret_bytes) {
        uintptr_t start = (uintptr_t) __strata_init_text_start, end = (uintptr_t) __strata_init_text_end;
        long page = sysconf(_SC_PAGESIZE);

        if (start == 0 || end == 0 || page <= 0) {
                *ret_bytes = 0;
                return 0;
        }
        /* Whole pages inside the section only. */
        start = (start + (uintptr_t) page - 1) & ~((uintptr_t) page - 1);
        end &= ~((uintptr_t) page - 1);
        if (end <= start) {
                *ret_bytes = 0;
                return 0;
        }
        /* A private file mapping that was never written: the pages go back to the page cache. */
        if (madvise((void *) start, end - start, MADV_DONTNEED) < 0)
                return -errno;
        *ret_bytes = end - start;
        return 0;
}
