/* A thread per exporter that gets the channel connected, and connected again.
 *
 * gRPC C core makes progress (connects, TLS handshakes, reconnect timers' follow-ups) only
 * while some thread polls a completion queue that the channel is tied to. Our calls fail fast
 * while the channel is down (no wait_for_ready), so between retries nobody polls, and a
 * backend that came back would be noticed only by gRPC's 5-second backup poller, or never
 * while each retry restarts the attempt. Watching the channel's connectivity state on our own
 * queue ties the channel to a poller; the state changes are logged too.
 *
 * It polls only while the channel is not ready. A thread waiting on a polling queue takes
 * its turn at gRPC's one epoll set, so while the channel is ready it would also read the
 * OTLP receiver's requests and the sink's answers and hand each to the thread that waits for
 * it: at 10k spans/s that was 10% of strata's CPU. So, once the channel is ready, the
 * thread sleeps on a condition variable until an export fails (otlp_watch_kick) or the
 * exporter stops, and then watches with a polled queue again.
 *
 * A watch ends when the state changes, and the channel's destruction is such a change (to
 * SHUTDOWN): that is how a polling thread learns it should stop. The deadlines only bound
 * how long a watch lasts when nothing changes. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "clock.h"
#include "grpc_glue.h"
#include "log.h"
#include "otlp_exporter.h"

/* How long a watch lasts while the channel is not ready and nothing changes. */
#define WATCH_NS (30 * ST_NS_PER_SEC)
/* After a failed export on a channel that still says ready: long enough for gRPC to notice
 * a connection that is gone (its read fails at once), short enough to go back to sleep. */
#define KICKED_WATCH_NS (1 * ST_NS_PER_SEC)

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
        grpc_connectivity_state last;
        bool was_ready = false;
        sigset_t all;

        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);

        pthread_mutex_lock(&e->watch_lock);
        if (e->watch_stop || !e->channel) { /* closed before this thread first ran */
                pthread_mutex_unlock(&e->watch_lock);
                return NULL;
        }
        last = grpc_channel_check_connectivity_state(e->channel, 1); /* connect now */
        for (;;) {
                /* The channel is destroyed under watch_lock, after watch_stop is set. */
                if (e->watch_stop)
                        break;
                if (last == GRPC_CHANNEL_READY && !e->watch_kicked) {
                        pthread_cond_wait(&e->watch_cond, &e->watch_lock);
                        continue;
                }
                int64_t how_long = last == GRPC_CHANNEL_READY ? KICKED_WATCH_NS : WATCH_NS;
                e->watch_kicked = false;
                grpc_channel_watch_connectivity_state(e->channel, last, st_grpc_deadline(st_now_ns() + how_long),
                                                      e->watch_cq, e);
                pthread_mutex_unlock(&e->watch_lock);
                grpc_event ev = grpc_completion_queue_next(e->watch_cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                pthread_mutex_lock(&e->watch_lock);
                if (ev.type != GRPC_OP_COMPLETE)
                        break;
                if (e->watch_stop)
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
        pthread_mutex_unlock(&e->watch_lock);
        return NULL;
}

int otlp_watch_start(struct otlp_exporter *e) {
        int r;
        e->watch_cq = grpc_completion_queue_create_for_next(NULL);
        if (!e->watch_cq)
                return -ENOMEM;
        e->watch_stop = false;
        e->watch_kicked = false;
        r = -pthread_create(&e->watch_thread, NULL, watch, e);
        if (r < 0) {
                grpc_completion_queue_destroy(e->watch_cq);
                e->watch_cq = NULL;
                return r;
        }
        e->watching = true;
        (void) pthread_setname_np(e->watch_thread, "otlp-watch");
        return 0;
}

void otlp_watch_kick(struct otlp_exporter *e) {
        pthread_mutex_lock(&e->watch_lock);
        e->watch_kicked = true;
        pthread_cond_signal(&e->watch_cond);
        pthread_mutex_unlock(&e->watch_lock);
}

void otlp_channel_close(struct otlp_exporter *e) {
        pthread_mutex_lock(&e->watch_lock);
        e->watch_stop = true;
        pthread_cond_signal(&e->watch_cond);
        if (e->channel) {
                grpc_channel_destroy(e->channel); /* ends a running watch: the state becomes SHUTDOWN */
                e->channel = NULL;
        }
        pthread_mutex_unlock(&e->watch_lock);
        if (!e->watching)
                return;
        pthread_join(e->watch_thread, NULL);
        grpc_completion_queue_shutdown(e->watch_cq);
        while (grpc_completion_queue_next(e->watch_cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type != GRPC_QUEUE_SHUTDOWN)
                ;
        grpc_completion_queue_destroy(e->watch_cq);
        e->watch_cq = NULL;
        e->watching = false;
}
