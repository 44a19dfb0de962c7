/* Monotonic and wall-clock time in nanoseconds. */
#pragma once
#include <stdint.h>
#include <time.h>

#define ST_NS_PER_MS INT64_C(1000000)
#define ST_NS_PER_SEC INT64_C(1000000000)

static inline int64_t st_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * ST_NS_PER_SEC + ts.tv_nsec;
}

static inline int64_t st_wall_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * ST_NS_PER_SEC + ts.tv_nsec;
}

/* An absolute CLOCK_MONOTONIC deadline as a timespec (for pthread_cond_timedwait with a
 * monotonic condattr). */
static inline struct timespec st_ns_to_timespec(int64_t ns) {
        return (struct timespec) { .tv_sec = ns / ST_NS_PER_SEC, .tv_nsec = ns % ST_NS_PER_SEC };
}
