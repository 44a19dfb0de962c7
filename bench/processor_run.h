/* Driving a processor for the benchmarks: batches made beforehand, then consumed from several
 * threads at once, each timing its own run. Shared by correlate_bench and k8s_bench.
 *
 * Header-only because every .c file in bench/ is its own executable. */
#pragma once
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "batch.h"
#include "clock.h"
#include "component.h"

#define PR_MAX_THREADS 16

/* xorshift32-ish over 64 bits: cheap enough not to show in what is measured. */
static inline uint32_t pr_rnd(uint64_t *s) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return (uint32_t) *s;
}

struct pr_run {
        const struct st_factory *f;
        void *inst;
        st_batch **v;
        size_t n;
        int64_t ns;
};

static inline void *pr_run_thread(void *arg) {
        struct pr_run *r = arg;
        int64_t t = st_now_ns();
        for (size_t i = 0; i < r->n; i++)
                if (r->f->consume(r->inst, r->v[i]) < 0) {
                        fprintf(stderr, "%s: consume failed\n", r->f->type);
                        exit(1);
                }
        r->ns = st_now_ns() - t;
        return NULL;
}

/* ns per item (items_per_batch in each batch) as each of `threads` threads sees it, averaged;
 * each thread consumes n_batches batches of its own, made by make from its own seed. */
static inline double pr_measure(const struct st_factory *f, void *inst, st_batch *(*make)(uint64_t *seed), size_t threads,
                                size_t n_batches, size_t items_per_batch, uint64_t seed0) {
        struct pr_run runs[PR_MAX_THREADS];
        pthread_t th[PR_MAX_THREADS];
        if (threads > PR_MAX_THREADS)
                threads = PR_MAX_THREADS;
        for (size_t t = 0; t < threads; t++) {
                uint64_t seed = seed0 + 0x9e3779b97f4a7c15ull * (t + 1);
                runs[t] = (struct pr_run) { .f = f, .inst = inst, .n = n_batches, .v = calloc(n_batches, sizeof(st_batch *)) };
                if (!runs[t].v) {
                        fprintf(stderr, "out of memory\n");
                        exit(1);
                }
                for (size_t i = 0; i < n_batches; i++)
                        runs[t].v[i] = make(&seed);
        }
        for (size_t t = 0; t < threads; t++)
                pthread_create(&th[t], NULL, pr_run_thread, &runs[t]);
        double per = 0;
        for (size_t t = 0; t < threads; t++) {
                pthread_join(th[t], NULL);
                per += (double) runs[t].ns / (double) (n_batches * items_per_batch);
                for (size_t i = 0; i < n_batches; i++)
                        st_batch_unref(runs[t].v[i]);
                free(runs[t].v);
        }
        return per / (double) threads;
}
