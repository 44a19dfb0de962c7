/* OTLP/gRPC: the three Export methods served by gRPC C core on TCP and/or Unix sockets.
 *
 * One thread loops on a completion queue. Each call lives in a slot that goes
 * WAITING (request_registered_call outstanding) → the call arrives with its message →
 * decode, consume synchronously, start one batch that sends metadata, response and status and
 * receives the close → ANSWERING → that batch completes → the call is released and the slot
 * waits for the next call. Several slots per method keep calls being accepted while earlier
 * answers are still being written. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "clock.h"
#include "endpoint.h"
#include "log.h"
#include "otlp_receiver.h"
#include "unix_socket.h"
#include "peer.h"

#define SLOTS_PER_METHOD 8
#define GENERIC_SLOTS 2                 /* calls to methods we do not serve: answered UNIMPLEMENTED */
#define METHOD_GENERIC ST_SIGNAL_COUNT
#define N_SLOTS (ST_SIGNAL_COUNT * SLOTS_PER_METHOD + GENERIC_SLOTS)
#define MAX_UNIX 2
#define MAX_GATHER 256 /* slices of one request gathered without merging them first */

enum slot_state { SLOT_IDLE, SLOT_WAITING, SLOT_ANSWERING };

struct slot {
        struct otlprecv_grpc *g;
        int method; /* a signal, or METHOD_GENERIC */
        enum slot_state state;
        grpc_call *call;
        gpr_timespec deadline;
        grpc_call_details details; /* METHOD_GENERIC */
        grpc_metadata_array md;
        grpc_byte_buffer *payload;
        /* What the answer's batch refers to until it completes. */
        grpc_byte_buffer *resp;
        grpc_slice status_msg;
        grpc_metadata trailer;
        int cancelled;
};

struct otlprecv_grpc {
        struct otlprecv *r;
        const char *log;
        uint64_t max_msg;
        grpc_server *server;
        grpc_completion_queue *cq;
        void *methods[ST_SIGNAL_COUNT];
        struct slot slots[N_SLOTS];
        pthread_t thread;
        bool thread_running, grpc_inited, started;
        atomic_bool stopping;
        char shutdown_tag; /* its address is the tag of the server's shutdown notification */
        int port;
        bool port_watched;          /* announced to the connection owner source (peer.h) */
        char *unix_paths[MAX_UNIX]; /* socket files we created: removed at stop */
        size_t n_unix;
        /* Unix sockets we accept on ourselves, to read each sender's SO_PEERCRED before the
         * connection is handed to gRPC (whose calls then name it "fd:N"). */
        int unix_fds[MAX_UNIX];
        size_t n_unix_fds;
        int wake_fd;                /* eventfd: stops the acceptor */
        pthread_t acceptor;
        bool acceptor_running;
        pthread_mutex_t peers_lock;
        struct st_peer *peers;      /* by connection fd */
        size_t n_peers;
};

static void slot_init(struct slot *sl) {
        sl->state = SLOT_IDLE;
        sl->call = NULL;
        sl->payload = NULL;
        sl->resp = NULL;
        sl->status_msg = grpc_empty_slice();
        sl->trailer = (grpc_metadata) { .key = grpc_empty_slice(), .value = grpc_empty_slice() };
        sl->cancelled = 0;
        grpc_metadata_array_init(&sl->md);
        grpc_call_details_init(&sl->details);
}

/* Releases what the last call held; the slot can wait again. */
static void slot_reset(struct slot *sl) {
        if (sl->call)
                grpc_call_unref(sl->call);
        grpc_byte_buffer_destroy(sl->payload);
        grpc_byte_buffer_destroy(sl->resp);
        grpc_slice_unref(sl->status_msg);
        grpc_slice_unref(sl->trailer.value);
        grpc_metadata_array_destroy(&sl->md);
        grpc_call_details_destroy(&sl->details);
        slot_init(sl);
}

static void slot_request(struct slot *sl) {
        struct otlprecv_grpc *g = sl->g;
        grpc_call_error e;

        if (sl->method == METHOD_GENERIC)
                e = grpc_server_request_call(g->server, &sl->call, &sl->details, &sl->md, g->cq, g->cq, sl);
        else
                e = grpc_server_request_registered_call(g->server, g->methods[sl->method], &sl->call, &sl->deadline,
                                                        &sl->md, &sl->payload, g->cq, g->cq, sl);
        if (e != GRPC_CALL_OK) {
                st_warn(g->log, "cannot wait for gRPC calls (error %d), serving with fewer slots, ignoring", (int) e);
                slot_reset(sl);
                return;
        }
        sl->state = SLOT_WAITING;
}

/* Who sent the call: the credentials its Unix connection had at accept, or the kernel
 * receiver's owner of its TCP connection; and, for TCP, from which address (into b). */
static void call_sender(struct slot *sl, st_batch *b, struct st_peer *ret) {
        struct otlprecv_grpc *g = sl->g;
        bool attribute = g->r->cfg->attribute_senders;
        *ret = (struct st_peer) { .method = ST_PEER_NONE };
        char *peer = grpc_call_get_peer(sl->call);
        struct st_conn_key k;
        if (!peer)
                return;
        if (strncmp(peer, "fd:", 3) == 0) {
                /* A connection's fd is closed by gRPC when it ends and may be reused by the
                 * next accept; its calls are all answered by then, so a slot never sees a
                 * reused entry. */
                char *end;
                unsigned long fd = strtoul(peer + 3, &end, 10);
                pthread_mutex_lock(&g->peers_lock);
                if (attribute && *end == '\0' && fd < g->n_peers)
                        *ret = g->peers[fd];
                pthread_mutex_unlock(&g->peers_lock);
        } else if (st_conn_key_from_grpc_peer(peer, &k) == 0) {
                (void) inet_ntop(k.family, k.client_addr, b->peer_ip, sizeof(b->peer_ip));
                k.server_port = (uint16_t) g->port;
                if (attribute && g->port)
                        (void) st_peer_from_tcp(&k, ret);
        }
        gpr_free(peer);
}

/* Reads the message, hands it to the pipeline, says what to answer. */
static enum otlprecv_outcome handle_export(struct slot *sl, char *msg, size_t msglen) {
        struct otlprecv_grpc *g = sl->g;
        enum st_signal s = (enum st_signal) sl->method;
        const char *req_name = st_signals[s].req->short_name;
        grpc_byte_buffer_reader rd;
        grpc_slice merged = grpc_empty_slice();
        st_batch *b = NULL;
        size_t len;
        int r;

        if (!st_consumer_set(&g->r->set.next[s]))
                return otlprecv_outcome(s, -ENOSYS, msg, msglen);
        if (!sl->payload) {
                snprintf(msg, msglen, "missing %s message", req_name);
                return OTLPRECV_BAD_REQUEST;
        }
        /* The reader decompresses what the client compressed with grpc-encoding. */
        if (!grpc_byte_buffer_reader_init(&rd, sl->payload)) {
                snprintf(msg, msglen, "failed to decompress %s", req_name);
                return OTLPRECV_BAD_REQUEST;
        }
        len = grpc_byte_buffer_length(rd.buffer_out);
        if (len > g->max_msg) {
                grpc_byte_buffer_reader_destroy(&rd);
                snprintf(msg, msglen, "%s of %zu bytes exceeds max_recv_msg_size of %" PRIu64 " bytes", req_name, len,
                         g->max_msg);
                return OTLPRECV_BAD_REQUEST;
        }
        /* The slices are gathered straight into the batch (one copy, however many slices a
         * large request arrived in), or merged by gRPC when there are too many to list. */
        grpc_slice_buffer *sb = &rd.buffer_out->data.raw.slice_buffer;
        struct iovec parts[MAX_GATHER];
        size_t n = 0;
        if (sb->count <= MAX_GATHER) {
                for (; n < sb->count; n++)
                        parts[n] = (struct iovec) { .iov_base = GRPC_SLICE_START_PTR(sb->slices[n]),
                                                    .iov_len = GRPC_SLICE_LENGTH(sb->slices[n]) };
        } else {
                merged = grpc_byte_buffer_reader_readall(&rd);
                parts[n++] = (struct iovec) { .iov_base = GRPC_SLICE_START_PTR(merged), .iov_len = len };
        }
        r = otlprecv_decode_parts(s, parts, n, &b, msg, msglen);
        grpc_slice_unref(merged);
        grpc_byte_buffer_reader_destroy(&rd);
        /* the batch holds its own copy of the bytes */
        grpc_byte_buffer_destroy(sl->payload);
        sl->payload = NULL;
        if (r == -EBADMSG)
                return OTLPRECV_BAD_REQUEST;
        if (r < 0)
                return otlprecv_outcome(s, r, msg, msglen);

        struct st_peer peer;
        call_sender(sl, b, &peer);
        r = otlprecv_deliver(g->r, b, &peer);
        st_batch_unref(b);
        if (r < 0)
                st_debug(g->log, "%s: %s", st_signals[s].grpc_method, strerror(-r));
        return otlprecv_outcome(s, r, msg, msglen);
}

static grpc_status_code status_code(enum otlprecv_outcome o) {
        switch (o) {
        case OTLPRECV_OK: return GRPC_STATUS_OK;
        case OTLPRECV_BAD_REQUEST: return GRPC_STATUS_INVALID_ARGUMENT;
        case OTLPRECV_RETRY_LATER: return GRPC_STATUS_RESOURCE_EXHAUSTED;
        case OTLPRECV_UNIMPLEMENTED: return GRPC_STATUS_UNIMPLEMENTED;
        case OTLPRECV_UNAVAILABLE: break;
        }
        return GRPC_STATUS_UNAVAILABLE;
}

static void answer(struct slot *sl) {
        struct otlprecv_grpc *g = sl->g;
        char msg[512] = "";
        enum otlprecv_outcome o;
        grpc_status_code code;
        grpc_op ops[4];
        size_t n = 0;
        grpc_call_error e;

        if (sl->method == METHOD_GENERIC) {
                snprintf(msg, sizeof(msg), "unknown method %.*s", (int) GRPC_SLICE_LENGTH(sl->details.method),
                         (const char *) GRPC_SLICE_START_PTR(sl->details.method));
                o = OTLPRECV_UNIMPLEMENTED;
        } else
                o = handle_export(sl, msg, sizeof(msg));
        code = status_code(o);

        memset(ops, 0, sizeof(ops));
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        if (code == GRPC_STATUS_OK) {
                /* Export*ServiceResponse without partial_success packs to zero bytes. */
                grpc_slice empty = grpc_empty_slice();
                sl->resp = grpc_raw_byte_buffer_create(&empty, 1);
                ops[n].op = GRPC_OP_SEND_MESSAGE;
                ops[n++].data.send_message.send_message = sl->resp;
        }
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.status = code;
        if (msg[0]) {
                sl->status_msg = grpc_slice_from_copied_string(msg);
                ops[n].data.send_status_from_server.status_details = &sl->status_msg;
        }
        if (o == OTLPRECV_RETRY_LATER) {
                /* OTLP clients retry RESOURCE_EXHAUSTED only when the status carries a RetryInfo. */
                st_buf st = { 0 };
                if (st_rpc_status_pack(code, msg, OTLPRECV_RETRY_DELAY_S * ST_NS_PER_SEC, &st) >= 0) {
                        sl->trailer.key = grpc_slice_from_static_string("grpc-status-details-bin");
                        sl->trailer.value = grpc_slice_from_copied_buffer(st.data, st.len);
                        ops[n].data.send_status_from_server.trailing_metadata_count = 1;
                        ops[n].data.send_status_from_server.trailing_metadata = &sl->trailer;
                }
                st_buf_free(&st);
        }
        n++;
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n++].data.recv_close_on_server.cancelled = &sl->cancelled;

        sl->state = SLOT_ANSWERING;
        e = grpc_call_start_batch(sl->call, ops, n, sl, NULL);
        if (e != GRPC_CALL_OK) {
                st_warn(g->log, "cannot answer a gRPC call (error %d), ignoring", (int) e);
                slot_reset(sl);
                if (!atomic_load(&g->stopping))
                        slot_request(sl);
        }
}

static void *serve(void *arg) {
        struct otlprecv_grpc *g = arg;

        for (;;) {
                grpc_event ev = grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                if (ev.type == GRPC_QUEUE_SHUTDOWN)
                        break;
                if (ev.type != GRPC_OP_COMPLETE)
                        continue;
                if (ev.tag == &g->shutdown_tag) {
                        /* Every call is gone; what is left on the queue are failed requests. */
                        grpc_completion_queue_shutdown(g->cq);
                        continue;
                }
                struct slot *sl = ev.tag;
                if (sl->state == SLOT_WAITING && ev.success) {
                        answer(sl);
                        continue;
                }
                /* An answer was sent (or the call died), or the server is shutting down and
                 * failed the request. */
                slot_reset(sl);
                if (!atomic_load(&g->stopping))
                        slot_request(sl);
        }
        return NULL;
}

static int read_text_file(const char *path, char **ret) {
        FILE *f = fopen(path, "re");
        st_buf b = { 0 };
        char chunk[4096];
        size_t n;
        int r = 0;

        if (!f)
                return -errno;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && r >= 0)
                r = st_buf_append(&b, chunk, n);
        if (r >= 0 && ferror(f))
                r = -EIO;
        fclose(f);
        if (r >= 0)
                r = st_buf_reserve(&b, 1);
        if (r < 0) {
                st_buf_free(&b);
                return r;
        }
        b.data[b.len] = 0;
        *ret = b.data;
        return 0;
}

static int make_credentials(struct otlprecv_grpc *g, const struct otlprecv_grpc_config *c, grpc_server_credentials **ret) {
        grpc_ssl_pem_key_cert_pair pair;
        char *cert = NULL, *key = NULL;
        int r;

        if (!c->has_tls) {
                *ret = grpc_insecure_server_credentials_create();
                return *ret ? 0 : -ENOMEM;
        }
        r = read_text_file(c->tls.cert_file, &cert);
        if (r < 0) {
                st_error(g->log, "cannot read tls.cert_file %s: %s", c->tls.cert_file, strerror(-r));
                goto out;
        }
        r = read_text_file(c->tls.key_file, &key);
        if (r < 0) {
                st_error(g->log, "cannot read tls.key_file %s: %s", c->tls.key_file, strerror(-r));
                goto out;
        }
        pair = (grpc_ssl_pem_key_cert_pair) { .private_key = key, .cert_chain = cert };
        *ret = grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL);
        if (!*ret) {
                st_error(g->log, "tls.cert_file %s and tls.key_file %s do not make TLS credentials", c->tls.cert_file,
                         c->tls.key_file);
                r = -EINVAL;
        }
out:
        free(cert);
        if (key) {
                explicit_bzero(key, strlen(key));
                free(key);
        }
        return r;
}

static int add_unix_listener(struct otlprecv_grpc *g, const char *path, mode_t mode, grpc_server_credentials *creds,
                             bool tls) {
        char addr[128];
        int r, fd;

        if (g->n_unix == MAX_UNIX)
                return -EINVAL;
        if (!tls) {
                /* We accept, gRPC serves: the only way to learn each sender's credentials. */
                r = st_unix_listen(path, mode, &fd);
                if (r < 0)
                        goto fail;
                g->unix_fds[g->n_unix_fds++] = fd;
        } else {
                /* gRPC takes only insecure connections from us: with TLS it accepts itself,
                 * and senders on this socket stay unattributed. */
                r = st_unix_remove_stale(path);
                if (r < 0)
                        goto fail;
                snprintf(addr, sizeof(addr), "unix:%s", path);
                if (grpc_server_add_http2_port(g->server, addr, creds) == 0) {
                        st_error(g->log, "cannot listen on %s", addr);
                        return -EADDRNOTAVAIL;
                }
                /* Before grpc_server_start(): no connection is served before the mode is right. */
                if (chmod(path, mode) < 0) {
                        r = -errno;
                        st_error(g->log, "cannot chmod %s to %04o: %s", path, (unsigned) mode, strerror(-r));
                        unlink(path);
                        return r;
                }
        }
        g->unix_paths[g->n_unix] = strdup(path);
        if (!g->unix_paths[g->n_unix]) {
                unlink(path);
                return -ENOMEM;
        }
        g->n_unix++;
        st_info(g->log, "OTLP/gRPC listening on unix://%s", path);
        return 0;
fail:
        st_error(g->log, "cannot listen on %s: %s", path,
                 r == -EADDRINUSE ? "another process is serving it" :
                 r == -EEXIST ? "it exists and is not a socket" : strerror(-r));
        return r;
}

/* Remembers the sender of connection fd (indexed by fd: small and dense). */
static void remember_peer(struct otlprecv_grpc *g, int fd, const struct st_peer *p) {
        pthread_mutex_lock(&g->peers_lock);
        if ((size_t) fd >= g->n_peers) {
                size_t n = (size_t) fd + 64;
                struct st_peer *v = realloc(g->peers, n * sizeof(*v));
                if (v) {
                        memset(v + g->n_peers, 0, (n - g->n_peers) * sizeof(*v));
                        g->peers = v;
                        g->n_peers = n;
                }
        }
        if ((size_t) fd < g->n_peers)
                g->peers[fd] = *p;
        pthread_mutex_unlock(&g->peers_lock);
}

static void *accept_unix(void *arg) {
        struct otlprecv_grpc *g = arg;
        struct pollfd pfd[MAX_UNIX + 1];
        grpc_server_credentials *insecure = grpc_insecure_server_credentials_create();
        int64_t last_warn = 0;

        for (size_t i = 0; i < g->n_unix_fds; i++)
                pfd[i] = (struct pollfd) { .fd = g->unix_fds[i], .events = POLLIN };
        pfd[g->n_unix_fds] = (struct pollfd) { .fd = g->wake_fd, .events = POLLIN };
        while (!atomic_load(&g->stopping)) {
                if (poll(pfd, g->n_unix_fds + 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        st_error(g->log, "cannot wait for Unix socket connections: %m");
                        break;
                }
                if (pfd[g->n_unix_fds].revents)
                        break;
                for (size_t i = 0; i < g->n_unix_fds; i++) {
                        if (!pfd[i].revents)
                                continue;
                        int fd = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                        if (fd < 0) {
                                if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                                        continue;
                                /* out of descriptors: say so now and then, and let the
                                 * backlog wait instead of spinning */
                                if (st_now_ns() - last_warn > 10 * ST_NS_PER_SEC) {
                                        st_warn(g->log, "cannot accept a Unix socket connection: %m, retrying");
                                        last_warn = st_now_ns();
                                }
                                usleep(100000);
                                continue;
                        }
                        struct st_peer p = { .method = ST_PEER_NONE };
                        int r = st_peer_from_unix_fd(fd, "/proc", &p);
                        if (r < 0)
                                st_debug(g->log, "no credentials of a Unix socket sender: %s", strerror(-r));
                        remember_peer(g, fd, &p);
                        grpc_server_add_channel_from_fd(g->server, fd, insecure);
                }
        }
        grpc_server_credentials_release(insecure);
        return NULL;
}

static int add_tcp_listener(struct otlprecv_grpc *g, const char *endpoint, grpc_server_credentials *creds) {
        char addr[300];
        /* ":4317" means every interface; gRPC wants a host. */
        snprintf(addr, sizeof(addr), "%s%s", endpoint[0] == ':' ? "0.0.0.0" : "", endpoint);
        g->port = grpc_server_add_http2_port(g->server, addr, creds);
        if (g->port == 0) {
                st_error(g->log, "cannot listen on %s (address in use or not available)", addr);
                return -EADDRINUSE;
        }
        st_info(g->log, "OTLP/gRPC listening on %.*s:%d", (int) (strrchr(addr, ':') - addr), addr, g->port);
        return 0;
}

int otlprecv_grpc_start(struct otlprecv *r, const struct otlprecv_grpc_config *c, struct otlprecv_grpc **ret) {
        struct otlprecv_grpc *g;
        grpc_server_credentials *creds = NULL;
        const char *path;
        mode_t mode = 0660;
        int ret2;

        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->r = r;
        g->log = r->set.log_name;
        g->max_msg = c->max_recv_msg_size;
        atomic_init(&g->stopping, false);
        pthread_mutex_init(&g->peers_lock, NULL);
        g->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (g->wake_fd < 0) {
                free(g);
                return -errno;
        }
        for (size_t i = 0; i < N_SLOTS; i++) {
                g->slots[i].g = g;
                g->slots[i].method = i < ST_SIGNAL_COUNT * SLOTS_PER_METHOD ? (int) (i / SLOTS_PER_METHOD) : METHOD_GENERIC;
                slot_init(&g->slots[i]);
        }
        (void) st_parse_mode(c->unix_socket_mode, &mode); /* validated */

        grpc_init();
        g->grpc_inited = true;
        ret2 = make_credentials(g, c, &creds);
        if (ret2 < 0)
                goto fail;

        /* The core refuses messages above its limit with RESOURCE_EXHAUSTED and no RetryInfo,
         * which clients do not retry but which says nothing about size. We give the core twice
         * our limit, so that what is a bit too large reaches our own check and gets an
         * INVALID_ARGUMENT that names the sizes. */
        uint64_t core_limit = c->max_recv_msg_size * 2 > INT32_MAX ? INT32_MAX : c->max_recv_msg_size * 2;
        grpc_arg args[3] = {
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                  .value.integer = (int) core_limit },
                /* SO_REUSEPORT would let a second agent share the port silently. */
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0 },
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_MAX_CONCURRENT_STREAMS,
                  .value.integer = (int) c->max_concurrent_streams },
        };
        grpc_channel_args chargs = { .num_args = c->max_concurrent_streams > 0 ? 3 : 2, .args = args };
        g->server = grpc_server_create(&chargs, NULL);
        g->cq = grpc_completion_queue_create_for_next(NULL);
        if (!g->server || !g->cq) {
                ret2 = -ENOMEM;
                goto fail;
        }
        grpc_server_register_completion_queue(g->server, g->cq, NULL);
        for (int s = 0; s < ST_SIGNAL_COUNT; s++) {
                g->methods[s] = grpc_server_register_method(g->server, st_signals[s].grpc_method, NULL,
                                                            GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
                if (!g->methods[s]) {
                        ret2 = -ENOMEM;
                        goto fail;
                }
        }

        if (c->endpoint && *c->endpoint) {
                if (st_endpoint_is_unix(c->endpoint, &path))
                        ret2 = add_unix_listener(g, path, mode, creds, c->has_tls);
                else
                        ret2 = add_tcp_listener(g, c->endpoint, creds);
                if (ret2 < 0)
                        goto fail;
        }
        if (c->unix_socket && *c->unix_socket && otlprecv_unix_path(c->unix_socket, &path) >= 0) {
                ret2 = add_unix_listener(g, path, mode, creds, c->has_tls);
                if (ret2 < 0)
                        goto fail;
        }
        grpc_server_credentials_release(creds);
        creds = NULL;

        grpc_server_start(g->server);
        g->started = true;
        for (size_t i = 0; i < N_SLOTS; i++)
                slot_request(&g->slots[i]);
        ret2 = -pthread_create(&g->thread, NULL, serve, g);
        if (ret2 < 0) {
                st_error(g->log, "cannot start the gRPC thread: %s", strerror(-ret2));
                goto fail;
        }
        g->thread_running = true;
        (void) pthread_setname_np(g->thread, "otlp-grpc");
        if (g->n_unix_fds) {
                ret2 = -pthread_create(&g->acceptor, NULL, accept_unix, g);
                if (ret2 < 0) {
                        st_error(g->log, "cannot start the Unix socket acceptor: %s", strerror(-ret2));
                        goto fail;
                }
                g->acceptor_running = true;
                (void) pthread_setname_np(g->acceptor, "otlp-unix");
        }
        if (g->port && r->cfg->attribute_senders) {
                st_conn_owner_watch_port((uint16_t) g->port, true);
                g->port_watched = true;
        }
        *ret = g;
        return 0;
fail:
        if (creds)
                grpc_server_credentials_release(creds);
        otlprecv_grpc_stop(g, 0);
        return ret2;
}

int otlprecv_grpc_port(const struct otlprecv_grpc *g) {
        return g ? g->port : 0;
}

/* Waits for the server thread until deadline_ns (CLOCK_MONOTONIC). */
static int join_until(pthread_t t, int64_t deadline_ns) {
        int64_t left = deadline_ns - st_now_ns();
        struct timespec ts = st_ns_to_timespec(st_wall_ns() + (left > 0 ? left : 0));
        return -pthread_timedjoin_np(t, NULL, &ts);
}

void otlprecv_grpc_stop(struct otlprecv_grpc *g, int64_t deadline_ns) {
        if (!g)
                return;
        if (g->port_watched)
                st_conn_owner_watch_port((uint16_t) g->port, false);
        atomic_store(&g->stopping, true);
        if (g->acceptor_running) {
                /* no new connections before the server's shutdown says goodbye to the others */
                (void) eventfd_write(g->wake_fd, 1);
                pthread_join(g->acceptor, NULL);
        }
        for (size_t i = 0; i < g->n_unix_fds; i++)
                close(g->unix_fds[i]);
        if (g->server) {
                /* A server that has listeners must have been started for its shutdown to
                 * complete; one that failed half-way through start() is started here. */
                if (!g->started)
                        grpc_server_start(g->server);
                atomic_store(&g->stopping, true);
                grpc_server_shutdown_and_notify(g->server, g->cq, &g->shutdown_tag);
                if (g->thread_running) {
                        /* Calls being consumed finish: consume() runs on the thread. */
                        if (join_until(g->thread, deadline_ns) == -ETIMEDOUT) {
                                st_warn(g->log, "gRPC calls still open at the shutdown deadline, cancelling them");
                                grpc_server_cancel_all_calls(g->server);
                                pthread_join(g->thread, NULL);
                        }
                } else
                        serve(g); /* no call was ever requested: this only drains the queue */
                grpc_server_destroy(g->server);
        }
        for (size_t i = 0; i < N_SLOTS; i++)
                slot_reset(&g->slots[i]);
        if (g->cq)
                grpc_completion_queue_destroy(g->cq);
        for (size_t i = 0; i < g->n_unix; i++) {
                if (unlink(g->unix_paths[i]) < 0 && errno != ENOENT)
                        st_warn(g->log, "cannot remove %s: %m, ignoring", g->unix_paths[i]);
                free(g->unix_paths[i]);
        }
        if (g->grpc_inited)
                grpc_shutdown();
        close(g->wake_fd);
        pthread_mutex_destroy(&g->peers_lock);
        free(g->peers);
        free(g);
}
