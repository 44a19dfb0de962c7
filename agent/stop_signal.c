#include "stop_signal.h"

#include "clock.h"

void st_stop_init(struct st_stop *s) {
        atomic_init(&s->raised, false);
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
}

void st_stop_destroy(struct st_stop *s) {
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
}

void st_stop_raise(struct st_stop *s) {
        pthread_mutex_lock(&s->lock);
        atomic_store(&s->raised, true);
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
}

bool st_stop_sleep_until(struct st_stop *s, int64_t wall_ns) {
        struct timespec ts = st_ns_to_timespec(wall_ns);
        pthread_mutex_lock(&s->lock);
        while (!atomic_load(&s->raised) && pthread_cond_timedwait(&s->cond, &s->lock, &ts) == 0)
                ;
        pthread_mutex_unlock(&s->lock);
        return !atomic_load(&s->raised);
}
