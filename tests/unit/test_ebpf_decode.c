/* The ebpf receiver's decoding of ring-buffer records (bpf/events.h), on synthetic bytes:
 * every kind, and short, inconsistent, unknown and misaligned records. No BPF involved. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "ebpf_decode.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"

/* 8-byte aligned, as ring-buffer records are */
static _Alignas(8) unsigned char buf[sizeof(struct st_ev_exec) + ST_PATH_MAX + ST_ARGS_MAX + 64];

static size_t make_exec(const char *path, const char *args, size_t args_len) {
        struct st_ev_exec *e = (struct st_ev_exec *) buf;
        size_t pl = strlen(path);
        memset(buf, 0, sizeof(buf));
        e->h.type = ST_EV_EXEC;
        e->h.pid = 42;
        e->h.tid = 42;
        e->ppid = 1;
        e->old_pid = 42;
        e->path_len = (__u16) pl;
        e->args_len = (__u16) args_len;
        memcpy(buf + sizeof(*e), path, pl);
        memcpy(buf + sizeof(*e) + pl, args, args_len);
        e->h.size = (__u16) (sizeof(*e) + pl + args_len);
        return e->h.size;
}

static void test_exec(void **state) {
        static const char args[] = "ls\0-l\0/tmp"; /* sizeof includes the final NUL */
        size_t n = make_exec("/usr/bin/ls", args, sizeof(args));
        struct kevent ev;
        assert_int_equal(kevent_decode(buf, n, &ev), 0);
        assert_int_equal(ev.type, ST_EV_EXEC);
        assert_int_equal(ev.h->pid, 42);
        assert_int_equal(ev.exec->ppid, 1);
        assert_int_equal(ev.path_len, strlen("/usr/bin/ls"));
        assert_memory_equal(ev.path, "/usr/bin/ls", ev.path_len);
        assert_int_equal(ev.args_len, sizeof(args));

        char line[64];
        assert_int_equal(kevent_command_line(ev.args, ev.args_len, line, sizeof(line)), strlen("ls -l /tmp"));
        assert_string_equal(line, "ls -l /tmp");

        /* the record may be followed by padding in the ring buffer: len > size is fine */
        assert_int_equal(kevent_decode(buf, n + 8, &ev), 0);
}

static void test_exec_cut_args(void **state) {
        /* args cut by max_args_bytes: the last argument has no NUL */
        static const char args[] = { 'a', 0, 'b', 'c' };
        size_t n = make_exec("/x", args, sizeof(args));
        struct kevent ev;
        char line[16];
        assert_int_equal(kevent_decode(buf, n, &ev), 0);
        kevent_command_line(ev.args, ev.args_len, line, sizeof(line));
        assert_string_equal(line, "a bc");
        /* a small output buffer cuts, and stays NUL-terminated */
        assert_int_equal(kevent_command_line(ev.args, ev.args_len, line, 3), 2);
        assert_string_equal(line, "a ");
}

static void test_exec_inconsistent(void **state) {
        struct kevent ev;
        size_t n = make_exec("/bin/true", "true", 5);
        struct st_ev_exec *e = (struct st_ev_exec *) buf;

        e->args_len = 6; /* lengths no longer add up to the size */
        assert_int_equal(kevent_decode(buf, n, &ev), -EBADMSG);
        e->args_len = 5;
        e->path_len = ST_PATH_MAX + 1;
        e->h.size = (__u16) (sizeof(*e) + ST_PATH_MAX + 1 + 5);
        assert_int_equal(kevent_decode(buf, e->h.size, &ev), -EBADMSG);
        /* size larger than what the ring buffer gave */
        n = make_exec("/bin/true", "true", 5);
        assert_int_equal(kevent_decode(buf, n - 1, &ev), -EBADMSG);
}

static void test_fork_exit(void **state) {
        struct kevent ev;
        struct st_ev_fork *f = (struct st_ev_fork *) buf;
        memset(buf, 0, sizeof(buf));
        f->h.type = ST_EV_FORK;
        f->h.size = sizeof(*f);
        f->h.pid = 10;
        f->child_pid = 11;
        assert_int_equal(kevent_decode(buf, sizeof(*f), &ev), 0);
        assert_int_equal(ev.type, ST_EV_FORK);
        assert_int_equal(ev.fork->child_pid, 11);
        assert_null(ev.path);

        struct st_ev_exit *x = (struct st_ev_exit *) buf;
        memset(buf, 0, sizeof(buf));
        x->h.type = ST_EV_EXIT;
        x->h.size = sizeof(*x);
        x->exit_code = 3 << 8;
        assert_int_equal(kevent_decode(buf, sizeof(*x), &ev), 0);
        assert_int_equal(ev.exit->exit_code, 3 << 8);
        /* a fork record claiming to be smaller than a fork */
        f->h.type = ST_EV_FORK;
        f->h.size = sizeof(*f) - 1;
        assert_int_equal(kevent_decode(buf, sizeof(*f), &ev), -EBADMSG);
}

static void test_malformed(void **state) {
        struct kevent ev;
        struct st_ev_header *h = (struct st_ev_header *) buf;
        memset(buf, 0, sizeof(buf));

        assert_int_equal(kevent_decode(NULL, 100, &ev), -EBADMSG);
        for (size_t n = 0; n < sizeof(*h); n++) /* every short length */
                assert_int_equal(kevent_decode(buf, n, &ev), -EBADMSG);
        h->type = 0;
        h->size = sizeof(*h);
        assert_int_equal(kevent_decode(buf, sizeof(*h), &ev), -EBADMSG);
        h->type = ST_EV_TYPE_MAX;
        assert_int_equal(kevent_decode(buf, sizeof(*h), &ev), -EBADMSG);
        h->type = 0xffff;
        assert_int_equal(kevent_decode(buf, sizeof(*h), &ev), -EBADMSG);
        /* misaligned */
        h->type = ST_EV_EXIT;
        h->size = sizeof(struct st_ev_exit);
        assert_int_equal(kevent_decode(buf + 1, sizeof(struct st_ev_exit), &ev), -EBADMSG);
        /* every truncation of a valid exec */
        size_t n = make_exec("/usr/bin/env", "env\0A=1", 8);
        for (size_t k = 0; k < n; k++)
                assert_int_equal(kevent_decode(buf, k, &ev), -EBADMSG);
}

static void test_conn(void **state) {
        struct kevent ev;
        struct st_ev_conn *c = (struct st_ev_conn *) buf;
        char a[64];
        memset(buf, 0, sizeof(buf));
        c->h.type = ST_EV_CLOSE;
        c->h.size = sizeof(*c);
        c->family = AF_INET6;
        c->direction = ST_CONN_INBOUND;
        c->local_addr[15] = 1;
        c->bytes_sent = 5;
        assert_int_equal(kevent_decode(buf, sizeof(*c), &ev), 0);
        assert_int_equal(ev.conn->bytes_sent, 5);
        assert_string_equal(kevent_addr(ev.conn->family, ev.conn->local_addr, a, sizeof(a)), "::1");
        static const __u8 mapped[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 9 };
        assert_string_equal(kevent_addr(AF_INET6, mapped, a, sizeof(a)), "192.168.1.9");
        c->family = AF_INET;
        static const __u8 v4[16] = { 10, 1, 2, 3 };
        assert_string_equal(kevent_addr(AF_INET, v4, a, sizeof(a)), "10.1.2.3");
        static const __u8 v4b[16] = { 255, 0, 100, 9 }, v4c[16] = { 0, 10, 199, 250 };
        assert_string_equal(kevent_addr(AF_INET, v4b, a, sizeof(a)), "255.0.100.9");
        assert_string_equal(kevent_addr(AF_INET, v4c, a, sizeof(a)), "0.10.199.250");
        c->family = 1; /* AF_UNIX: not a connection we report */
        assert_int_equal(kevent_decode(buf, sizeof(*c), &ev), -EBADMSG);
        c->family = AF_INET;
        c->direction = 3;
        assert_int_equal(kevent_decode(buf, sizeof(*c), &ev), -EBADMSG);
        c->direction = ST_CONN_OUTBOUND;
        c->h.type = ST_EV_CONNECT;
        assert_int_equal(kevent_decode(buf, sizeof(*c), &ev), 0);
        assert_int_equal(kevent_decode(buf, sizeof(*c) - 1, &ev), -EBADMSG);
}

static void test_code(void **state) {
        struct kevent ev;
        struct st_ev_code *c = (struct st_ev_code *) buf;
        static const char comps[] = "libssl.so.3\0x86_64-linux-gnu\0lib\0usr"; /* leaf first */
        char path[128];
        memset(buf, 0, sizeof(buf));
        c->h.type = ST_EV_CODE;
        c->kind = ST_CODE_MMAP_EXEC;
        c->path_len = sizeof(comps);
        memcpy(buf + sizeof(*c), comps, sizeof(comps));
        c->h.size = (__u16) (sizeof(*c) + sizeof(comps));
        assert_int_equal(kevent_decode(buf, c->h.size, &ev), 0);
        assert_int_equal(kevent_code_path(ev.path, ev.path_len, path, sizeof(path)), strlen("/usr/lib/x86_64-linux-gnu/libssl.so.3"));
        assert_string_equal(path, "/usr/lib/x86_64-linux-gnu/libssl.so.3");
        /* cut output stays terminated */
        assert_int_equal(kevent_code_path(ev.path, ev.path_len, path, 8), 7);
        assert_string_equal(path, "/usr/li");
        /* a last component cut without its NUL */
        assert_int_equal(kevent_code_path("b\0a", 3, path, sizeof(path)), 4);
        assert_string_equal(path, "/a/b");
        assert_int_equal(kevent_code_path("", 0, path, sizeof(path)), 0);
        assert_string_equal(path, "");
        /* inconsistent lengths, bad kind */
        c->path_len++;
        assert_int_equal(kevent_decode(buf, c->h.size, &ev), -EBADMSG);
        c->path_len--;
        c->kind = 9;
        assert_int_equal(kevent_decode(buf, c->h.size, &ev), -EBADMSG);
}


static void test_dns_question(void **state) {
        (void) state;
        /* id 0x1234, RD, one question: example.com AAAA IN */
        static const uint8_t q[] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 28, 0, 1 };
        char name[256], type[16];
        uint16_t id;
        assert_int_equal(kevent_dns_question(q, sizeof(q), name, sizeof(name), type, sizeof(type), &id), 0);
        assert_string_equal(name, "example.com");
        assert_string_equal(type, "AAAA");
        assert_int_equal(id, 0x1234);
        uint8_t b[sizeof(q)];
        memcpy(b, q, sizeof(q));
        b[2] |= 0x80; /* a response */
        assert_int_equal(kevent_dns_question(b, sizeof(b), name, sizeof(name), type, sizeof(type), &id), -EBADMSG);
        memcpy(b, q, sizeof(q));
        b[12] = 0xc0; /* a compression pointer in a question */
        assert_int_equal(kevent_dns_question(b, sizeof(b), name, sizeof(name), type, sizeof(type), &id), -EBADMSG);
        assert_int_equal(kevent_dns_question(q, sizeof(q) - 3, name, sizeof(name), type, sizeof(type), &id), -EBADMSG); /* cut */
        assert_int_equal(kevent_dns_question(q, 11, name, sizeof(name), type, sizeof(type), &id), -EBADMSG);
        memcpy(b, q, sizeof(q));
        b[26] = 99; /* an unnamed type */
        assert_int_equal(kevent_dns_question(b, sizeof(b), name, sizeof(name), type, sizeof(type), &id), 0);
        assert_string_equal(type, "TYPE99");
        assert_int_equal(kevent_dns_question(q, sizeof(q), name, 8, type, sizeof(type), &id), -EBADMSG); /* no room */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_exec),
                cmocka_unit_test(test_exec_cut_args),
                cmocka_unit_test(test_exec_inconsistent),
                cmocka_unit_test(test_fork_exit),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_conn),
                cmocka_unit_test(test_code),
                cmocka_unit_test(test_dns_question),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
