/* A component thread's stop signal: the owner raises it at shutdown, the thread's sleeps end
 * at once, and the curl transfers given its flag (curl_util.h) abort. */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct st_stop {
        atomic_bool raised;
        pthread_mutex_t lock;
        pthread_cond_t cond;
};

void st_stop_init(struct st_stop *s);
void st_stop_destroy(struct st_stop *s);
void st_stop_raise(struct st_stop *s);
static inline bool st_stop_raised(struct st_stop *s) { return atomic_load(&s->raised); }
/* Sleeps until wall_ns (CLOCK_REALTIME ns) or the signal; false when raised. */
bool st_stop_sleep_until(struct st_stop *s, int64_t wall_ns);
