/* One batch to several consumers; see fanout.h for what a partial refusal becomes. */
#include "fanout.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

static int fanout_consume(void *data, st_batch *b) {
        struct st_fanout *fo = data;
        uint64_t failed = 0; /* bit i: consumer i refused (n <= ST_FANOUT_MAX) */
        size_t taken = 0;
        int first_err = 0;
        /* Hold a reference for the duration so that a mutating consumer sees the batch as
         * shared and takes a copy instead of changing what the others read. */
        st_batch_ref(b);
        for (size_t i = 0; i < fo->n; i++) {
                int q = st_consume(&fo->to[i], b);
                if (q >= 0) {
                        taken++;
                        continue;
                }
                if (q == -ENOBUFS && taken == 0 && failed == 0) {
                        first_err = q; /* nobody has it: the caller may offer it again to all */
                        break;
                }
                failed |= UINT64_C(1) << i;
                if (first_err == 0)
                        first_err = q;
        }
        if (taken > 0) /* the refusals are drops: the caller hears success */
                for (size_t i = 0; i < fo->n; i++)
                        if ((failed >> i & 1) && fo->tel[i])
                                st_tel_add(&fo->tel[i]->sig[b->signal].dropped, b->items);
        st_batch_unref(b);
        return taken > 0 ? 0 : first_err;
}

struct st_consumer st_fanout_consumer(struct st_fanout *fo) {
        if (fo->n == 1)
                return fo->to[0];
        return (struct st_consumer) { .consume = fanout_consume, .data = fo };
}

int st_fanout_add(struct st_fanout *fo, struct st_consumer c, struct st_component_telemetry *tel) {
        if (fo->n == ST_FANOUT_MAX)
                return -E2BIG;
        struct st_consumer *to = realloc(fo->to, (fo->n + 1) * sizeof(*to));
        if (!to)
                return -ENOMEM;
        fo->to = to;
        struct st_component_telemetry **t = realloc(fo->tel, (fo->n + 1) * sizeof(*t));
        if (!t)
                return -ENOMEM;
        fo->tel = t;
        fo->to[fo->n] = c;
        fo->tel[fo->n++] = tel;
        return 0;
}

void st_fanout_free(struct st_fanout *fo) {
        free(fo->to);
        free(fo->tel);
        fo->to = NULL;
        fo->tel = NULL;
        fo->n = 0;
}
