#include "context_channel.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "unix_socket.h"

#define MAX_CONNS 1024
#define MAX_SKEW_NS (UINT64_C(3600) * 1000000000)
#define READ_RECORDS 64

static uint32_t le32(const uint8_t *p) { return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24; }
static uint64_t le64(const uint8_t *p) { return (uint64_t) le32(p) | (uint64_t) le32(p + 4) << 32; }

#define ALIGN_EPOCH_NS (INT64_C(10) * 1000000000)

void st_clock_align_note(struct st_clock_align *c, int64_t now_ns, int64_t record_ns) {
        int64_t d = now_ns - record_ns;
        if (!c->have_cur && !c->have_prev)
                c->epoch_ns = now_ns;
        if (now_ns - c->epoch_ns >= ALIGN_EPOCH_NS) {
                /* a new epoch: a drifting clock is followed, an old minimum forgotten */
                c->prev = c->cur;
                c->have_prev = c->have_cur;
                c->have_cur = false;
                c->epoch_ns = now_ns;
        }
        if (!c->have_cur || d < c->cur) {
                c->cur = d;
                c->have_cur = true;
        }
}

int64_t st_clock_align_offset(const struct st_clock_align *c) {
        if (c->have_cur && c->have_prev)
                return c->cur < c->prev ? c->cur : c->prev;
        return c->have_cur ? c->cur : c->have_prev ? c->prev : 0;
}

int st_ctxchan_apply(struct st_spanidx *x, const uint8_t rec[ST_CTXCHAN_RECORD_SIZE], uint32_t peer_pid,
                     int64_t clock_offset_ns, struct st_ctxchan_stats *stats, char *err, size_t errlen) {
        uint8_t version = rec[0], type = rec[1];
        uint16_t flags = (uint16_t) (rec[2] | rec[3] << 8);
        uint32_t pid = le32(rec + 4), tid = le32(rec + 8);
        uint64_t t = le64(rec + 16);
        struct st_span_ref ref;
        t = (uint64_t) ((int64_t) t + clock_offset_ns);

        if (version != ST_CTXCHAN_VERSION) {
                snprintf(err, errlen, "record version %u (this strata speaks %u)", version, ST_CTXCHAN_VERSION);
                return -EBADMSG;
        }
        if (flags) {
                snprintf(err, errlen, "record flags 0x%x (none are defined)", flags);
                return -EBADMSG;
        }
        if (type != ST_CTXCHAN_SPAN_START && type != ST_CTXCHAN_SPAN_END) {
                snprintf(err, errlen, "record type %u (1 = span start, 2 = span end)", type);
                return -EBADMSG;
        }
        if (!peer_pid || pid != peer_pid) {
                /* The kernel says who is at the other end. Another pid is a forked child
                 * writing on its parent's connection (it must connect on its own: its spans
                 * are not its parent's), or a lie; no pid at all is a sender in a pid
                 * namespace we cannot see. Either way the record says nothing we can trust. */
                stats->pid_mismatch++;
                return 0;
        }
        memcpy(ref.trace_id, rec + 24, 16);
        memcpy(ref.span_id, rec + 40, 8);
        if (type == ST_CTXCHAN_SPAN_START)
                (void) st_spanidx_add(x, pid, tid, t, ST_SPAN_OPEN, &ref);
        else if (st_spanidx_end(x, pid, ref.span_id, t) == -ENOENT)
                (void) st_spanidx_add(x, pid, tid, t, t, &ref); /* its start was lost: an instant */
        stats->records++;
        return 0;
}

/* --- the listener ------------------------------------------------------------------------- */

struct conn {
        struct conn *prev, *next;
        int fd;
        uint32_t pid;
        uint8_t buf[READ_RECORDS * ST_CTXCHAN_RECORD_SIZE];
        size_t fill;
        struct st_clock_align clock;
};

struct st_ctxchan {
        char *path;
        char *log;
        unsigned refs;
        int listen_fd, epoll_fd, wake_fd;
        pthread_t thread;
        bool running;
        pthread_mutex_t stats_lock;
        struct st_ctxchan_stats stats;
        size_t n_conns;
        struct conn *conns; /* owned by the thread while it runs */
        struct st_ctxchan *next;
};

static void conn_close(struct st_ctxchan *c, struct conn *k) {
        if (k->fill) {
                pthread_mutex_lock(&c->stats_lock);
                c->stats.partial += k->fill;
                pthread_mutex_unlock(&c->stats_lock);
        }
        epoll_ctl(c->epoll_fd, EPOLL_CTL_DEL, k->fd, NULL);
        close(k->fd);
        if (k->prev)
                k->prev->next = k->next;
        else
                c->conns = k->next;
        if (k->next)
                k->next->prev = k->prev;
        free(k);
        c->n_conns--;
}

static void on_accept(struct st_ctxchan *c) {
        for (;;) {
                int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                st_warn(c->log, "context channel: cannot accept: %m, ignoring");
                        return;
                }
                struct ucred cred;
                socklen_t len = sizeof(cred);
                struct conn *k = c->n_conns < MAX_CONNS ? calloc(1, sizeof(*k)) : NULL;
                if (!k) {
                        st_warn(c->log, "context channel: %s, refusing a connection",
                                c->n_conns >= MAX_CONNS ? "too many connections" : "out of memory");
                        close(fd);
                        continue;
                }
                k->fd = fd;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 0)
                        k->pid = (uint32_t) cred.pid;
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = k };
                if (epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        close(fd);
                        free(k);
                        continue;
                }
                k->next = c->conns;
                if (c->conns)
                        c->conns->prev = k;
                c->conns = k;
                c->n_conns++;
                pthread_mutex_lock(&c->stats_lock);
                c->stats.connections++;
                pthread_mutex_unlock(&c->stats_lock);
        }
}

/* Reads what the connection has; false when it is to be closed. */
static bool on_readable(struct st_ctxchan *c, struct conn *k) {
        struct st_spanidx *x = st_spanidx_global();
        for (;;) {
                ssize_t n = read(k->fd, k->buf + k->fill, sizeof(k->buf) - k->fill);
                if (n < 0)
                        return errno == EAGAIN || errno == EINTR;
                if (n == 0)
                        return false;
                k->fill += (size_t) n;
                size_t whole = k->fill / ST_CTXCHAN_RECORD_SIZE * ST_CTXCHAN_RECORD_SIZE;
                /* the clock first: every record of this read was received now. A time more
                 * than an hour from ours is a broken sender, not a clock to follow. */
                int64_t now = st_wall_ns();
                struct st_ctxchan_stats delta = { 0 };
                bool ok = true;
                char err[160];
                for (size_t off = 0; off < whole && ok; off += ST_CTXCHAN_RECORD_SIZE) {
                        uint64_t t = le64(k->buf + off + 16);
                        if (t > (uint64_t) now + MAX_SKEW_NS || t + MAX_SKEW_NS < (uint64_t) now) {
                                snprintf(err, sizeof(err), "record time %" PRIu64 " is more than an hour from strata's clock", t);
                                ok = false;
                                whole = off; /* the records before it are used */
                        } else
                                st_clock_align_note(&k->clock, now, (int64_t) t);
                }
                int64_t align = st_clock_align_offset(&k->clock);
                for (size_t off = 0; off < whole && x; off += ST_CTXCHAN_RECORD_SIZE)
                        if (st_ctxchan_apply(x, k->buf + off, k->pid, align, &delta, err, sizeof(err)) < 0) {
                                ok = false;
                                break;
                        }
                if (!ok) {
                        st_error(c->log, "context channel: sender pid %u: %s; closing its connection", (unsigned) k->pid, err);
                        delta.bad_records++;
                }
                pthread_mutex_lock(&c->stats_lock);
                c->stats.records += delta.records;
                c->stats.bad_records += delta.bad_records;
                c->stats.pid_mismatch += delta.pid_mismatch;
                pthread_mutex_unlock(&c->stats_lock);
                if (!ok) {
                        k->fill = 0; /* refused, not partial */
                        return false;
                }
                memmove(k->buf, k->buf + whole, k->fill - whole);
                k->fill -= whole;
        }
}

static void *serve(void *arg) {
        struct st_ctxchan *c = arg;
        struct epoll_event evs[32];
        for (;;) {
                int n = epoll_wait(c->epoll_fd, evs, 32, -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        st_error(c->log, "context channel: cannot wait: %m; it stops");
                        break;
                }
                for (int i = 0; i < n; i++) {
                        if (evs[i].data.ptr == &c->wake_fd)
                                return NULL;
                        if (evs[i].data.ptr == &c->listen_fd) {
                                on_accept(c);
                                continue;
                        }
                        struct conn *k = evs[i].data.ptr;
                        if (!on_readable(c, k))
                                conn_close(c, k);
                }
        }
        return NULL;
}

static void chan_free(struct st_ctxchan *c) {
        if (!c)
                return;
        if (c->running) {
                (void) eventfd_write(c->wake_fd, 1);
                pthread_join(c->thread, NULL);
        }
        while (c->conns)
                conn_close(c, c->conns);
        if (c->epoll_fd >= 0)
                close(c->epoll_fd);
        if (c->listen_fd >= 0) {
                close(c->listen_fd);
                if (unlink(c->path) < 0 && errno != ENOENT)
                        st_warn(c->log, "cannot remove %s: %m, ignoring", c->path);
        }
        if (c->wake_fd >= 0)
                close(c->wake_fd);
        pthread_mutex_destroy(&c->stats_lock);
        free(c->path);
        free(c->log);
        free(c);
}

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct st_ctxchan *registry;

int st_ctxchan_acquire(const char *path, mode_t mode, const char *log, struct st_ctxchan **ret) {
        int r;
        pthread_mutex_lock(&registry_lock);
        for (struct st_ctxchan *c = registry; c; c = c->next)
                if (strcmp(c->path, path) == 0) {
                        c->refs++;
                        *ret = c;
                        pthread_mutex_unlock(&registry_lock);
                        return 0;
                }
        struct st_ctxchan *c = calloc(1, sizeof(*c));
        if (!c) {
                pthread_mutex_unlock(&registry_lock);
                return -ENOMEM;
        }
        c->listen_fd = c->epoll_fd = c->wake_fd = -1;
        pthread_mutex_init(&c->stats_lock, NULL);
        c->path = strdup(path);
        c->log = strdup(log);
        if (!c->path || !c->log) {
                r = -ENOMEM;
                goto fail;
        }
        if (!st_spanidx_global()) {
                r = -ENOMEM;
                goto fail;
        }
        r = st_unix_listen(path, mode, &c->listen_fd);
        if (r < 0) {
                st_error(log, "cannot listen on the context channel %s: %s", path,
                         r == -EADDRINUSE ? "another process is serving it" :
                         r == -EEXIST ? "it exists and is not a socket" : strerror(-r));
                c->listen_fd = -1;
                goto fail;
        }
        c->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        struct epoll_event l = { .events = EPOLLIN, .data.ptr = &c->listen_fd };
        struct epoll_event w = { .events = EPOLLIN, .data.ptr = &c->wake_fd };
        if (c->epoll_fd < 0 || c->wake_fd < 0 || epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, c->listen_fd, &l) < 0 ||
            epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, c->wake_fd, &w) < 0) {
                r = -errno;
                goto fail;
        }
        r = -pthread_create(&c->thread, NULL, serve, c);
        if (r < 0)
                goto fail;
        c->running = true;
        (void) pthread_setname_np(c->thread, "ctx-channel");
        c->refs = 1;
        c->next = registry;
        registry = c;
        pthread_mutex_unlock(&registry_lock);
        st_info(log, "context channel listening on unix://%s", path);
        *ret = c;
        return 0;
fail:
        pthread_mutex_unlock(&registry_lock);
        chan_free(c);
        return r;
}

void st_ctxchan_release(struct st_ctxchan *c) {
        if (!c)
                return;
        pthread_mutex_lock(&registry_lock);
        if (--c->refs > 0) {
                pthread_mutex_unlock(&registry_lock);
                return;
        }
        for (struct st_ctxchan **pp = &registry; *pp; pp = &(*pp)->next)
                if (*pp == c) {
                        *pp = c->next;
                        break;
                }
        pthread_mutex_unlock(&registry_lock);
        chan_free(c);
}

void st_ctxchan_stats(struct st_ctxchan *c, struct st_ctxchan_stats *ret) {
        pthread_mutex_lock(&c->stats_lock);
        *ret = c->stats;
        pthread_mutex_unlock(&c->stats_lock);
}
