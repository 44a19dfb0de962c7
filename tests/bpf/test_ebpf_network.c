/* TCP connections from the kernel, against ground truth: M loopback connections over IPv4 and
 * IPv6 with known byte counts each way, connected from this thread and accepted on another.
 * Every connect, accept and close must be reported once, attributed to the right process and
 * thread (the accept to the accepting thread, not to whatever ran the handshake in softirq),
 * with both endpoints and the exact byte counts, and nothing lost. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ebpf_test.h"
#include "peer.h"

#define M_PER_FAMILY 4

struct conn {
        int family;
        int client_port, server_port;
        size_t up, down; /* bytes client → server, server → client */
        int connects, accepts, client_closes, server_closes;
        bool connect_ok, accept_ok, client_close_ok, server_close_ok;
};

struct truth {
        struct conn c[2 * M_PER_FAMILY];
        size_t n;
        pid_t pid, client_tid, server_tid;
        int listen_fd[2];
        int ports[2];
        int gaps;
};

static pid_t tid(void) { return (pid_t) syscall(SYS_gettid); }

static int listener(int family, int *ret_port) {
        int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_storage ss = { 0 };
        socklen_t len;
        assert_true(fd >= 0);
        if (family == AF_INET) {
                struct sockaddr_in *a = (struct sockaddr_in *) &ss;
                a->sin_family = AF_INET;
                a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                len = sizeof(*a);
        } else {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *) &ss;
                a->sin6_family = AF_INET6;
                a->sin6_addr = in6addr_loopback;
                len = sizeof(*a);
        }
        assert_int_equal(bind(fd, (struct sockaddr *) &ss, len), 0);
        assert_int_equal(listen(fd, 16), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &ss, &len), 0);
        *ret_port = ntohs(family == AF_INET ? ((struct sockaddr_in *) &ss)->sin_port : ((struct sockaddr_in6 *) &ss)->sin6_port);
        return fd;
}

static void write_all(int fd, size_t n) {
        char buf[4096];
        memset(buf, 'x', sizeof(buf));
        while (n) {
                ssize_t k = write(fd, buf, n < sizeof(buf) ? n : sizeof(buf));
                assert_true(k > 0);
                n -= (size_t) k;
        }
}

static size_t read_n(int fd, size_t n) {
        char buf[4096];
        size_t got = 0;
        while (got < n) {
                ssize_t k = read(fd, buf, n - got < sizeof(buf) ? n - got : sizeof(buf));
                if (k <= 0)
                        break;
                got += (size_t) k;
        }
        return got;
}

static bool read_eof(int fd) {
        char c;
        return read(fd, &c, 1) == 0;
}

/* The server: accepts the connections in order, reads `up` bytes, answers `down`, then waits
 * for the client's close before closing (so that every byte is acknowledged at close). */
static void *server_main(void *arg) {
        struct truth *t = arg;
        t->server_tid = tid();
        for (size_t i = 0; i < t->n; i++) {
                struct conn *c = &t->c[i];
                int fd = accept4(t->listen_fd[c->family == AF_INET6], NULL, NULL, SOCK_CLOEXEC);
                assert_true(fd >= 0);
                assert_int_equal(read_n(fd, c->up), c->up);
                write_all(fd, c->down);
                shutdown(fd, SHUT_WR);
                assert_true(read_eof(fd));
                close(fd);
        }
        return NULL;
}

static void workload(struct truth *t) {
        pthread_t th;
        t->pid = getpid();
        t->client_tid = tid();
        t->listen_fd[0] = listener(AF_INET, &t->ports[0]);
        t->listen_fd[1] = listener(AF_INET6, &t->ports[1]);
        for (int f = 0; f < 2; f++)
                for (int i = 0; i < M_PER_FAMILY; i++) {
                        struct conn *c = &t->c[t->n++];
                        c->family = f ? AF_INET6 : AF_INET;
                        c->up = 1000 + 4099 * (size_t) i + (size_t) f;
                        c->down = 77 + 65537 * (size_t) i;
                }
        assert_int_equal(pthread_create(&th, NULL, server_main, t), 0);
        for (size_t i = 0; i < t->n; i++) {
                struct conn *c = &t->c[i];
                struct sockaddr_storage ss = { 0 };
                socklen_t len;
                int fd = socket(c->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
                assert_true(fd >= 0);
                c->server_port = t->ports[c->family == AF_INET6];
                if (c->family == AF_INET) {
                        struct sockaddr_in *a = (struct sockaddr_in *) &ss;
                        a->sin_family = AF_INET;
                        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                        a->sin_port = htons((uint16_t) c->server_port);
                        len = sizeof(*a);
                } else {
                        struct sockaddr_in6 *a = (struct sockaddr_in6 *) &ss;
                        a->sin6_family = AF_INET6;
                        a->sin6_addr = in6addr_loopback;
                        a->sin6_port = htons((uint16_t) c->server_port);
                        len = sizeof(*a);
                }
                assert_int_equal(connect(fd, (struct sockaddr *) &ss, len), 0);
                len = sizeof(ss);
                assert_int_equal(getsockname(fd, (struct sockaddr *) &ss, &len), 0);
                c->client_port = ntohs(c->family == AF_INET ? ((struct sockaddr_in *) &ss)->sin_port
                                                            : ((struct sockaddr_in6 *) &ss)->sin6_port);
                write_all(fd, c->up);
                assert_int_equal(read_n(fd, c->down), c->down);
                assert_true(read_eof(fd));
                close(fd);
        }
        pthread_join(th, NULL);
        close(t->listen_fd[0]);
        close(t->listen_fd[1]);
}

static void match(const struct rec *r, void *ctx) {
        struct truth *t = ctx;
        const st_log_record *lr = r->lr;
        const char *ev = attr_str(lr, "event.name");
        if (strcmp(ev, "strata.gap") == 0) {
                t->gaps++;
                return;
        }
        if (strncmp(ev, "network.", 8) != 0 || attr_int(lr, "process.pid", -1) != t->pid)
                return;
        int64_t lport = attr_int(lr, "network.local.port", -1), pport = attr_int(lr, "network.peer.port", -1);
        const char *peer = attr_str(lr, "network.peer.address"), *local = attr_str(lr, "network.local.address");
        const char *type = attr_str(lr, "network.type"), *dir = attr_str(lr, "strata.network.direction");
        int64_t thread = attr_int(lr, "thread.id", -1);
        for (size_t i = 0; i < t->n; i++) {
                struct conn *c = &t->c[i];
                const char *lo = c->family == AF_INET ? "127.0.0.1" : "::1";
                const char *want_type = c->family == AF_INET ? "ipv4" : "ipv6";
                bool addrs = peer && local && strcmp(peer, lo) == 0 && strcmp(local, lo) == 0 && type &&
                             strcmp(type, want_type) == 0 && strcmp(attr_str(lr, "network.transport"), "tcp") == 0;
                bool client_side = lport == c->client_port && pport == c->server_port;
                bool server_side = lport == c->server_port && pport == c->client_port;
                if (!client_side && !server_side)
                        continue;
                if (strcmp(ev, "network.connect") == 0 && client_side) {
                        c->connects++;
                        c->connect_ok = addrs && thread == t->client_tid && strcmp(dir, "outbound") == 0;
                } else if (strcmp(ev, "network.accept") == 0 && server_side) {
                        c->accepts++;
                        c->accept_ok = addrs && thread == t->server_tid && strcmp(dir, "inbound") == 0;
                } else if (strcmp(ev, "network.close") == 0 && client_side) {
                        c->client_closes++;
                        c->client_close_ok = addrs && strcmp(dir, "outbound") == 0 &&
                                             attr_int(lr, "strata.network.bytes_sent", -1) == (int64_t) c->up &&
                                             attr_int(lr, "strata.network.bytes_received", -1) == (int64_t) c->down &&
                                             attr_int(lr, "strata.network.duration_ns", -1) > 0;
                        if (!c->client_close_ok)
                                print_message("client close %zu: sent %lld/%zu received %lld/%zu\n", i,
                                              (long long) attr_int(lr, "strata.network.bytes_sent", -1), c->up,
                                              (long long) attr_int(lr, "strata.network.bytes_received", -1), c->down);
                } else if (strcmp(ev, "network.close") == 0 && server_side) {
                        c->server_closes++;
                        c->server_close_ok = addrs && strcmp(dir, "inbound") == 0 &&
                                             attr_int(lr, "strata.network.bytes_sent", -1) == (int64_t) c->down &&
                                             attr_int(lr, "strata.network.bytes_received", -1) == (int64_t) c->up;
                        if (!c->server_close_ok)
                                print_message("server close %zu: sent %lld/%zu received %lld/%zu\n", i,
                                              (long long) attr_int(lr, "strata.network.bytes_sent", -1), c->down,
                                              (long long) attr_int(lr, "strata.network.bytes_received", -1), c->up);
                } else
                        fail_msg("%s on the wrong side of connection %zu", ev, i);
        }
}

static void check(struct truth *t) {
        for (size_t i = 0; i < t->n; i++) {
                struct conn *c = &t->c[i];
                if (c->connects != 1 || c->accepts != 1 || c->client_closes != 1 || c->server_closes != 1)
                        fail_msg("connection %zu (%s, port %d → %d): connects %d accepts %d client closes %d server closes %d", i,
                                 c->family == AF_INET ? "IPv4" : "IPv6", c->client_port, c->server_port, c->connects,
                                 c->accepts, c->client_closes, c->server_closes);
                assert_true(c->connect_ok);
                assert_true(c->accept_ok);
                assert_true(c->client_close_ok);
                assert_true(c->server_close_ok);
        }
        assert_int_equal(t->gaps, 0);
}

/* The aggregated metrics agree with the records: connections to each listener, and bytes. */
static void check_metrics(struct truth *t, struct capture *mc) {
        int64_t outbound[2] = { 0, 0 }, transmit = 0, want_tx = 0;
        assert_true(mc->n >= 1);
        /* cumulative: the last report has everything */
        const st_metrics_req *req = (const st_metrics_req *) st_batch_req(mc->v[mc->n - 1]);
        const st_scope_metrics *sm = req->resource_metrics[0]->scope_metrics[0];
        for (size_t i = 0; i < sm->n_metrics; i++) {
                const st_metric *m = sm->metrics[i];
                if (strcmp(m->name, "strata.network.connections") != 0 && strcmp(m->name, "strata.network.io") != 0)
                        continue;
                for (size_t j = 0; j < m->sum->n_data_points; j++) {
                        const st_number_point *p = m->sum->data_points[j];
                        const st_any_value *dir = attr_get(p->attributes, p->n_attributes, "strata.network.direction");
                        const st_any_value *port = attr_get(p->attributes, p->n_attributes, "network.peer.port");
                        const st_any_value *iodir = attr_get(p->attributes, p->n_attributes, "network.io.direction");
                        const st_any_value *peer = attr_get(p->attributes, p->n_attributes, "network.peer.address");
                        if (strcmp(m->name, "strata.network.connections") == 0 && port && strcmp(dir->string_value, "outbound") == 0)
                                for (int f = 0; f < 2; f++)
                                        if (port->int_value == t->ports[f])
                                                outbound[f] += p->as_int;
                        if (strcmp(m->name, "strata.network.io") == 0 && strcmp(dir->string_value, "outbound") == 0 &&
                            strcmp(iodir->string_value, "transmit") == 0 &&
                            (strcmp(peer->string_value, "127.0.0.1") == 0 || strcmp(peer->string_value, "::1") == 0))
                                transmit += p->as_int;
                }
        }
        for (size_t i = 0; i < t->n; i++)
                want_tx += (int64_t) t->c[i].up;
        assert_int_equal(outbound[0], M_PER_FAMILY);
        assert_int_equal(outbound[1], M_PER_FAMILY);
        assert_true(transmit >= want_tx); /* other loopback traffic of the host may add to it */
}

/* accept_prog: the program network.accept must have got */
static void run(const char *yaml, const char *accept_prog) {
        struct harness h;
        struct truth t = { 0 };
        struct capture mc;
        rx_start_metrics(&h, yaml, &mc);
        assert_int_equal(metric(&h, "ebpf_hooks_attached"), 2);
        if (!prog_loaded(accept_prog))
                fail_msg("network.accept is not %s", accept_prog);
        workload(&t);
        rx_stop(&h);
        each_record(&h, match, &t);
        check(&t);
        check_metrics(&t, &mc);
        assert_int_equal(metric(&h, "ebpf_lost_events_total"), 0);
        assert_int_equal(metric(&h, "ebpf_decode_errors_total"), 0);
        rx_free(&h);
        capture_free(&mc);
}

static void test_tcp_ground_truth(void **state) {
        REQUIRE_ROOT();
        /* tp+cast needs the bpf_rdonly_cast kfunc (6.2+): other kernels take tp, as the loader does */
        run("flush_interval: 50ms\nevents: [network]\n", kernel_has_func("bpf_rdonly_cast") ? "accept4_tp_cast" : "accept4_tp");
}

/* accept through the syscall tracepoint with probe reads, as kernels without bpf_rdonly_cast
 * load it: the same facts. */
static void test_tcp_accept_tp(void **state) {
        REQUIRE_ROOT();
        setenv("STRATA_TEST_EBPF_BREAK_PROGRAM", "accept_tp_cast,accept4_tp_cast", 1);
        run("flush_interval: 50ms\nevents: [network]\n", "accept4_tp");
        unsetenv("STRATA_TEST_EBPF_BREAK_PROGRAM");
}

/* raw_tp for the state changes, and accept through raw_tp/sys_exit instead of the syscall
 * tracepoint: the fallbacks give the same facts. */
static void test_tcp_fallbacks(void **state) {
        REQUIRE_ROOT();
        setenv("STRATA_TEST_EBPF_BREAK_PROGRAM", "accept_tp,accept4_tp", 1);
        run("flush_interval: 50ms\nevents: [network]\nprogram_kind: raw_tp\n", "accept_raw");
        unsetenv("STRATA_TEST_EBPF_BREAK_PROGRAM");
}

/* A connection reset instead of closed: the server closes with unread data (the kernel sends
 * a RST, no FIN). The byte counts must still be the payload, exactly. */
struct reset_truth {
        pid_t pid;
        int server_port, client_port;
        int64_t server_rx, server_tx, client_tx, client_rx;
        int closes;
};

static void reset_match(const struct rec *r, void *ctx) {
        struct reset_truth *t = ctx;
        if (strcmp(attr_str(r->lr, "event.name"), "network.close") != 0 || attr_int(r->lr, "process.pid", -1) != t->pid)
                return;
        int64_t lport = attr_int(r->lr, "network.local.port", -1), pport = attr_int(r->lr, "network.peer.port", -1);
        if (lport == t->server_port && pport == t->client_port) {
                t->server_rx = attr_int(r->lr, "strata.network.bytes_received", -1);
                t->server_tx = attr_int(r->lr, "strata.network.bytes_sent", -1);
                t->closes++;
        } else if (lport == t->client_port && pport == t->server_port) {
                t->client_rx = attr_int(r->lr, "strata.network.bytes_received", -1);
                t->client_tx = attr_int(r->lr, "strata.network.bytes_sent", -1);
                t->closes++;
        }
}

static void test_tcp_reset(void **state) {
        enum { UP = 5000 };
        struct harness h;
        struct reset_truth t = { .pid = getpid() };
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        char c;
        REQUIRE_ROOT();
        rx_start(&h, "flush_interval: 50ms\nevents: [network]\n");
        int lfd = listener(AF_INET, &t.server_port);
        int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        a.sin_port = htons((uint16_t) t.server_port);
        assert_int_equal(connect(cfd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(getsockname(cfd, (struct sockaddr *) &a, &len), 0);
        t.client_port = ntohs(a.sin_port);
        int sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(sfd >= 0);
        write_all(cfd, UP);
        usleep(50 * 1000);   /* delivered, unread */
        close(sfd);          /* unread data: RST */
        assert_true(read(cfd, &c, 1) < 0); /* ECONNRESET */
        close(cfd);
        close(lfd);
        usleep(50 * 1000);
        rx_stop(&h);
        each_record(&h, reset_match, &t);
        assert_int_equal(t.closes, 2);
        assert_int_equal(t.server_rx, UP);
        assert_int_equal(t.server_tx, 0);
        assert_int_equal(t.client_tx, UP);
        assert_int_equal(t.client_rx, 0);
        rx_free(&h);
}

/* Count of network records about this process. */
static void count_ours(const struct rec *r, void *ctx) {
        struct truth *t = ctx;
        const char *ev = attr_str(r->lr, "event.name");
        if (strncmp(ev, "network.", 8) == 0 && attr_int(r->lr, "process.pid", -1) == t->pid)
                t->gaps++; /* reused as a counter here */
}

/* The aggregation switch: network events feed the metrics, and no record is made of them. */
static void test_metrics_only(void **state) {
        struct harness h;
        struct truth t = { 0 };
        struct capture mc;
        REQUIRE_ROOT();
        rx_start_metrics(&h, "flush_interval: 50ms\nevents: [network]\nrecords: [process]\n", &mc);
        workload(&t);
        rx_stop(&h);
        each_record(&h, count_ours, &t);
        assert_int_equal(t.gaps, 0);
        check_metrics(&t, &mc);
        rx_free(&h);
        capture_free(&mc);
}

/* Sampling in the kernel: with 1 in a million connections followed, none of ours is. */
static void test_sampling(void **state) {
        struct harness h;
        struct truth t = { 0 };
        REQUIRE_ROOT();
        rx_start(&h, "flush_interval: 50ms\nevents: [network]\nnetwork_sample_every: 1000000\n");
        workload(&t);
        rx_stop(&h);
        each_record(&h, count_ours, &t);
        assert_int_equal(t.gaps, 0);
        rx_free(&h);
}


/* Sender attribution: a child process connects to a port strata announced, from IPv4 and IPv6;
 * the connection owner source the receiver provides names that child for the client's address
 * and port, at once (before any ring buffer read), even when the child is filtered out of the
 * events (here: a comm filter that matches nothing of ours). A port not announced is not
 * followed. */
static void attribution_case(int family) {
        struct harness h;
        int port, other_port, sync[2];
        int lfd = listener(family, &port), ofd = listener(family, &other_port), hold[2];

        rx_start(&h, "events: [network]\nfilters: { comms: [no-such-comm] }\n");
        st_conn_owner_watch_port((uint16_t) port, true);
        assert_int_equal(pipe(sync), 0);
        assert_int_equal(pipe(hold), 0);
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                int fds[2] = { -1, -1 }, ports[2] = { port, other_port };
                for (int i = 0; i < 2; i++) {
                        struct sockaddr_storage ss = { 0 };
                        socklen_t len;
                        fds[i] = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
                        if (family == AF_INET) {
                                struct sockaddr_in *a = (struct sockaddr_in *) &ss;
                                a->sin_family = AF_INET;
                                a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                                a->sin_port = htons((uint16_t) ports[i]);
                                len = sizeof(*a);
                        } else {
                                struct sockaddr_in6 *a = (struct sockaddr_in6 *) &ss;
                                a->sin6_family = AF_INET6;
                                a->sin6_addr = in6addr_loopback;
                                a->sin6_port = htons((uint16_t) ports[i]);
                                len = sizeof(*a);
                        }
                        if (connect(fds[i], (struct sockaddr *) &ss, len) < 0)
                                _exit(1);
                }
                if (write(sync[1], "x", 1) != 1)
                        _exit(2);
                char c;
                if (read(hold[0], &c, 1) < 0) /* hold the connections until the parent looked */
                        _exit(3);
                _exit(0);
        }
        char c;
        assert_int_equal(read(sync[0], &c, 1), 1);
        for (int i = 0; i < 2; i++) {
                int fd = accept(i == 0 ? lfd : ofd, NULL, NULL);
                assert_true(fd >= 0);
                struct sockaddr_storage ss;
                socklen_t len = sizeof(ss);
                assert_int_equal(getpeername(fd, (struct sockaddr *) &ss, &len), 0);
                struct st_conn_key k = { .family = (uint16_t) family, .server_port = (uint16_t) (i == 0 ? port : other_port) };
                if (family == AF_INET) {
                        k.client_port = ntohs(((struct sockaddr_in *) &ss)->sin_port);
                        memcpy(k.client_addr, &((struct sockaddr_in *) &ss)->sin_addr, 4);
                } else {
                        k.client_port = ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
                        memcpy(k.client_addr, &((struct sockaddr_in6 *) &ss)->sin6_addr, 16);
                }
                struct st_peer p;
                int r = st_peer_from_tcp(&k, &p);
                if (i == 0) {
                        assert_int_equal(r, 0);
                        assert_int_equal(p.method, ST_PEER_TCP);
                        assert_int_equal(p.pid, child);
                        assert_int_equal(p.uid, getuid());
                        assert_true(p.start_ns > 0);
                } else
                        assert_int_equal(r, -ENOENT); /* a port nobody announced */
                close(fd);
        }
        assert_int_equal(write(hold[1], "x", 1), 1);
        int st;
        assert_int_equal(waitpid(child, &st, 0), child);
        assert_int_equal(WEXITSTATUS(st), 0);
        st_conn_owner_watch_port((uint16_t) port, false);
        rx_stop(&h);
        /* no receiver, no source */
        struct st_peer p;
        struct st_conn_key k = { .family = AF_INET };
        assert_int_equal(st_peer_from_tcp(&k, &p), -ENODEV);
        rx_free(&h);
        close(sync[0]);
        close(sync[1]);
        close(hold[0]);
        close(hold[1]);
        close(lfd);
        close(ofd);
}

/* An IPv6 socket talking IPv4 (what Java and .NET clients do): the server sees an IPv4 client,
 * and the kernel's entry must say so too. */
static void attribution_mapped(void) {
        struct harness h;
        int port, lfd = listener(AF_INET, &port), sync[2];
        rx_start(&h, "events: [network]\n");
        st_conn_owner_watch_port((uint16_t) port, true);
        assert_int_equal(pipe(sync), 0);
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t) port) };
                int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (inet_pton(AF_INET6, "::ffff:127.0.0.1", &a.sin6_addr) != 1 ||
                    connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0)
                        _exit(1);
                char c;
                if (read(sync[0], &c, 1) < 0) /* hold the connection until the parent looked */
                        _exit(3);
                _exit(0);
        }
        int fd = accept(lfd, NULL, NULL);
        assert_true(fd >= 0);
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);
        assert_int_equal(getpeername(fd, (struct sockaddr *) &sa, &len), 0);
        assert_int_equal(sa.sin_family, AF_INET);
        struct st_conn_key k = { .family = AF_INET, .client_port = ntohs(sa.sin_port), .server_port = (uint16_t) port };
        memcpy(k.client_addr, &sa.sin_addr, 4);
        struct st_peer p;
        assert_int_equal(st_peer_from_tcp(&k, &p), 0);
        assert_int_equal(p.pid, child);
        assert_int_equal(write(sync[1], "x", 1), 1);
        int st;
        assert_int_equal(waitpid(child, &st, 0), child);
        assert_int_equal(WEXITSTATUS(st), 0);
        st_conn_owner_watch_port((uint16_t) port, false);
        rx_stop(&h);
        rx_free(&h);
        close(fd);
        close(lfd);
        close(sync[0]);
        close(sync[1]);
}

static void test_sender_attribution(void **state) {
        REQUIRE_ROOT();
        attribution_case(AF_INET);
        attribution_case(AF_INET6);
        attribution_mapped();
}


/* DNS queries (UDP to port 53), each way resolvers send them: sendto, send on a connected
 * socket, sendmsg, sendmmsg with the A and AAAA queries at once, and over IPv6. A datagram to
 * port 53 that is no DNS query, and a query to another port, are not reported. Nothing needs
 * to listen: the datagrams leave all the same. */
static size_t dns_query(uint8_t *out, const char *name, uint16_t type, uint16_t id) {
        size_t n = 0;
        uint8_t h[12] = { (uint8_t) (id >> 8), (uint8_t) id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
        memcpy(out, h, 12);
        n = 12;
        for (const char *l = name; *l;) {
                const char *dot = strchr(l, '.');
                size_t len = dot ? (size_t) (dot - l) : strlen(l);
                out[n++] = (uint8_t) len;
                memcpy(out + n, l, len);
                n += len;
                l += len + (dot ? 1 : 0);
        }
        out[n++] = 0;
        out[n++] = (uint8_t) (type >> 8);
        out[n++] = (uint8_t) type;
        out[n++] = 0;
        out[n++] = 1;
        return n;
}

struct dns_seen {
        pid_t pid;
        char names[16][64], types[16][8];
        int n;
};

static void collect_dns(const struct rec *r, void *ctx) {
        struct dns_seen *d = ctx;
        const char *ev = attr_str(r->lr, "event.name");
        if (!ev || strcmp(ev, "dns.query") != 0 || attr_int(r->lr, "process.pid", -1) != d->pid || d->n == 16)
                return;
        assert_int_equal(attr_int(r->lr, "network.peer.port", -1), 53);
        assert_string_equal(attr_str(r->lr, "network.transport"), "udp");
        snprintf(d->names[d->n], sizeof(d->names[0]), "%s", attr_str(r->lr, "dns.question.name"));
        snprintf(d->types[d->n++], sizeof(d->types[0]), "%s", attr_str(r->lr, "strata.dns.question.type"));
}

static bool dns_has(const struct dns_seen *d, const char *name, const char *type) {
        for (int i = 0; i < d->n; i++)
                if (strcmp(d->names[i], name) == 0 && strcmp(d->types[i], type) == 0)
                        return true;
        return false;
}

/* want_prog: the variant dns.query must have got */
static void dns_workload(const char *want_prog) {
        struct harness h;
        uint8_t q[2][300];
        size_t n;
        struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(53), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        struct sockaddr_in6 to6 = { .sin6_family = AF_INET6, .sin6_port = htons(53), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
        /* something listening on 53, so that no ICMP "port unreachable" fails the next send (a
         * local resolver there already does as well) */
        int sink = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), sink6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int on = 1;
        setsockopt(sink6, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
        if (bind(sink, (struct sockaddr *) &to, sizeof(to)) < 0)
                assert_int_equal(errno, EADDRINUSE);
        if (bind(sink6, (struct sockaddr *) &to6, sizeof(to6)) < 0)
                assert_true(errno == EADDRINUSE || errno == EADDRNOTAVAIL);
        rx_start(&h, "events: [dns]\nflush_interval: 50ms\n");
        if (!prog_loaded(want_prog))
                fail_msg("dns.query is not %s", want_prog);
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), s6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(s >= 0 && s6 >= 0 && c >= 0);
        n = dns_query(q[0], "sendto.strata.test", 1, 1);
        assert_int_equal(sendto(s, q[0], n, 0, (struct sockaddr *) &to, sizeof(to)), (ssize_t) n);
        assert_int_equal(connect(c, (struct sockaddr *) &to, sizeof(to)), 0);
        n = dns_query(q[0], "send.strata.test", 28, 2);
        assert_int_equal(send(c, q[0], n, 0), (ssize_t) n);
        n = dns_query(q[0], "sendmsg.strata.test", 16, 3);
        struct iovec iov = { q[0], n };
        struct msghdr mh = { .msg_name = &to, .msg_namelen = sizeof(to), .msg_iov = &iov, .msg_iovlen = 1 };
        assert_int_equal(sendmsg(s, &mh, 0), (ssize_t) n);
        struct iovec iov2[2];
        struct mmsghdr mm[2];
        memset(mm, 0, sizeof(mm));
        size_t n0 = dns_query(q[0], "sendmmsg.strata.test", 1, 4), n1 = dns_query(q[1], "sendmmsg.strata.test", 28, 5);
        iov2[0] = (struct iovec) { q[0], n0 };
        iov2[1] = (struct iovec) { q[1], n1 };
        for (int i = 0; i < 2; i++)
                mm[i].msg_hdr = (struct msghdr) { .msg_iov = &iov2[i], .msg_iovlen = 1 };
        /* a fresh connected socket: the first one has the ICMP "port unreachable" of its query
         * pending (nothing listens on 53), which the next send would report */
        int c2 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_int_equal(connect(c2, (struct sockaddr *) &to, sizeof(to)), 0);
        assert_int_equal(sendmmsg(c2, mm, 2, 0), 2); /* glibc's resolver: A and AAAA at once, connected */
        close(c2);
        n = dns_query(q[0], "v6.strata.test", 65, 6);
        assert_int_equal(sendto(s6, q[0], n, 0, (struct sockaddr *) &to6, sizeof(to6)), (ssize_t) n);
        /* not DNS queries: garbage to port 53, a response (QR set), a query to port 5353 */
        assert_int_equal(sendto(s, "not a dns query at all", 22, 0, (struct sockaddr *) &to, sizeof(to)), 22);
        n = dns_query(q[0], "response.strata.test", 1, 7);
        q[0][2] |= 0x80;
        assert_int_equal(sendto(s, q[0], n, 0, (struct sockaddr *) &to, sizeof(to)), (ssize_t) n);
        struct sockaddr_in mdns = to;
        mdns.sin_port = htons(5353);
        n = dns_query(q[0], "mdns.strata.test", 1, 8);
        assert_int_equal(sendto(s, q[0], n, 0, (struct sockaddr *) &mdns, sizeof(mdns)), (ssize_t) n);
        usleep(300000);
        rx_stop(&h);
        struct dns_seen d = { .pid = getpid() };
        each_record(&h, collect_dns, &d);
        assert_true(dns_has(&d, "sendto.strata.test", "A"));
        assert_true(dns_has(&d, "send.strata.test", "AAAA"));
        assert_true(dns_has(&d, "sendmsg.strata.test", "TXT"));
        assert_true(dns_has(&d, "sendmmsg.strata.test", "A"));
        assert_true(dns_has(&d, "sendmmsg.strata.test", "AAAA"));
        assert_true(dns_has(&d, "v6.strata.test", "HTTPS"));
        assert_int_equal(d.n, 6); /* and nothing else */
        close(s);
        close(s6);
        close(c);
        close(sink);
        close(sink6);
        rx_free(&h);
}

/* Every send call, through the BTF-typed task, then through probe reads (kernels without it). */
static void test_dns(void **state) {
        REQUIRE_ROOT();
        dns_workload("sendto_tp_btf");
        setenv("STRATA_TEST_EBPF_BREAK_PROGRAM", "sendto_tp_btf,sendmsg_tp_btf,sendmmsg_tp_btf", 1);
        dns_workload("sendto_tp");
        unsetenv("STRATA_TEST_EBPF_BREAK_PROGRAM");
}

int main(void) {
        st_log_setup(ST_LOG_INFO, ST_LOG_TEXT);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tcp_ground_truth),
                cmocka_unit_test(test_tcp_accept_tp),
                cmocka_unit_test(test_tcp_fallbacks),
                cmocka_unit_test(test_tcp_reset),
                cmocka_unit_test(test_metrics_only),
                cmocka_unit_test(test_sampling),
                cmocka_unit_test(test_sender_attribution),
                cmocka_unit_test(test_dns),
        };
        announce_skips("test_ebpf_network");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
