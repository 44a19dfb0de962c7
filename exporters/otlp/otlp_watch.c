/* A thread per exporter that keeps the channel's I/O moving between calls.
 *
 * gRPC C core makes progress (connects, TLS handshakes, reconnect timers' follow-ups) only
 * while some thread polls a completion queue that the channel is tied to. Our calls fail fast
 * while the channel is down (no wait_for_ready), so between retries nobody polls, and a
 * backend that came back would be noticed only by gRPC's 5-second backup poller, or never
 * while each retry restarts the attempt. Watching the channel's connectivity state on our own
 * queue ties the channel to a poller for its whole life; the state changes are logged too. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "clock.h"
#include "grpc_glue.h"
#include "log.h"
#include "otlp_exporter.h"

/* How long a watch lasts: bounds how late the thread notices it should stop. */
#define WATCH_NS (100 * ST_NS_PER_MS)

static const char *state_name(grpc_connectivity_state s) {
        switch (s) {
        case GRPC_CHANNEL_IDLE: return "idle";
        case GRPC_CHANNEL_CONNECTING: return "connecting";
        case GRPC_CHANNEL_READY: return "ready";
        case GRPC_CHANNEL_TRANSIENT_FAILURE: return "transient failure";
        case GRPC_CHANNEL_SHUTDOWN: return "shut down";
        }
        return "?";
}

static void *watch(void *arg) {
        struct otlp_exporter *e = arg;
        grpc_connectivity_state last = grpc_channel_check_connectivity_state(e->channel, 1); /* connect now */
        bool was_ready = false;
        sigset_t all;

        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);

        while (!atomic_load(&e->watch_stop)) {
                grpc_channel_watch_connectivity_state(e->channel, last, st_grpc_deadline(st_now_ns() + WATCH_NS),
                                                      e->watch_cq, e);
                grpc_event ev = grpc_completion_queue_next(e->watch_cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                if (ev.type != GRPC_OP_COMPLETE)
                        break;
                grpc_connectivity_state now = grpc_channel_check_connectivity_state(e->channel, 0);
                if (now == last)
                        continue;
                if (now == GRPC_CHANNEL_READY) {
                        st_info(e->log_name, "connected to %s", e->cfg->endpoint);
                        was_ready = true;
                } else if (was_ready && last == GRPC_CHANNEL_READY) {
                        st_info(e->log_name, "connection to %s lost (%s)", e->cfg->endpoint, state_name(now));
                } else
                        st_debug(e->log_name, "channel %s -> %s", state_name(last), state_name(now));
                last = now;
        }
        return NULL;
}

int otlp_watch_start(struct otlp_exporter *e) {
        int r;
        e->watch_cq = grpc_completion_queue_create_for_next(NULL);
        if (!e->watch_cq)
                return -ENOMEM;
        atomic_store(&e->watch_stop, false);
        r = -pthread_create(&e->watch_thread, NULL, watch, e);
        if (r < 0) {
                grpc_completion_queue_destroy(e->watch_cq);
                e->watch_cq = NULL;
                return r;
        }
        e->watching = true;
        return 0;
}

void otlp_watch_stop(struct otlp_exporter *e) {
        if (!e->watching)
                return;
        atomic_store(&e->watch_stop, true);
        pthread_join(e->watch_thread, NULL); /* within WATCH_NS: its watch expires */
        grpc_completion_queue_shutdown(e->watch_cq);
        while (grpc_completion_queue_next(e->watch_cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type != GRPC_QUEUE_SHUTDOWN)
                ;
        grpc_completion_queue_destroy(e->watch_cq);
        e->watch_cq = NULL;
        e->watching = false;
}
