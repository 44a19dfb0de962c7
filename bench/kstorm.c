/* A syscall-heavy workload for the kernel receiver's benchmark (bench/kernel.sh): every
 * operation is one the ebpf receiver reports, done as fast as possible or at a set rate.
 *
 *   kstorm exec    [--duration S] [--rate N]   fork + exec /bin/true, wait       (fork, exec, exit)
 *   kstorm connect [--duration S] [--rate N]   loopback TCP connect, accept, close (connect, accept, 2 closes)
 *   kstorm send    [--duration S] [--rate N] [--port P]   UDP sendto of 64 bytes to 127.0.0.1:P (default: a
 *                  port of ours, not DNS: what the dns hooks cost every send of the host; 53: DNS queries)
 *   kstorm open    [--duration S] [--rate N] [--files N] [--match]
 *                  open + close of N distinct files in a temporary directory, cycling; with
 *                  --match they are named *.so (reported once per process and file), without
 *                  *.txt (filtered out in the kernel: the cost every other open pays)
 *
 * Prints one machine-readable line: "kstorm mode=M ops=N seconds=X rate=Y". */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void die(const char *what) {
        fprintf(stderr, "kstorm: %s: %s\n", what, strerror(errno));
        exit(2);
}

static void op_exec(void) {
        pid_t pid = fork();
        if (pid < 0)
                die("fork");
        if (pid == 0) {
                execl("/bin/true", "true", "kstorm", (char *) NULL);
                _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) < 0)
                die("waitpid");
}

static int lfd = -1;
static struct sockaddr_in laddr;

static void op_connect(void) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0 || connect(c, (struct sockaddr *) &laddr, sizeof(laddr)) < 0)
                die("connect");
        int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (s < 0)
                die("accept");
        close(c);
        close(s);
}

static int ufd = -1;
static long send_port;

/* A DNS-shaped datagram (a query for kstorm.invalid, type A): the same bytes either way. */
static void op_send(void) {
        static const unsigned char q[64] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 6, 'k', 's', 't', 'o', 'r', 'm',
                                              7, 'i', 'n', 'v', 'a', 'l', 'i', 'd', 0, 0, 1, 0, 1 };
        if (sendto(ufd, q, sizeof(q), 0, (struct sockaddr *) &laddr, sizeof(laddr)) != (ssize_t) sizeof(q))
                die("sendto");
        char buf[64];
        (void) !recv(lfd, buf, sizeof(buf), MSG_DONTWAIT); /* keep the sink's queue short */
}

static char dir[] = "/tmp/kstorm-XXXXXX";
static long n_files = 1000;
static bool match;
static long next_file;

static void file_name(long i, char *out, size_t cap) { snprintf(out, cap, "%s/f%ld.%s", dir, i, match ? "so" : "txt"); }

static void op_open(void) {
        char p[128];
        file_name(next_file, p, sizeof(p));
        next_file = (next_file + 1) % n_files;
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                die("open");
        close(fd);
}

int main(int argc, char **argv) {
        double duration = 5, rate = 0;
        static const struct option opts[] = {
                { "duration", required_argument, NULL, 'd' }, { "rate", required_argument, NULL, 'r' },
                { "files", required_argument, NULL, 'f' },    { "match", no_argument, NULL, 'm' },
                { "port", required_argument, NULL, 'p' },     { NULL, 0, NULL, 0 },
        };
        int o;
        while ((o = getopt_long(argc, argv, "d:r:f:mp:", opts, NULL)) != -1) {
                switch (o) {
                case 'd': duration = atof(optarg); break;
                case 'r': rate = atof(optarg); break;
                case 'f': n_files = atol(optarg); break;
                case 'm': match = true; break;
                case 'p': send_port = atol(optarg); break;
                default: return 2;
                }
        }
        if (optind >= argc || n_files <= 0) {
                fprintf(stderr, "usage: kstorm exec|connect|send|open [--duration S] [--rate N] [--files N] [--match] [--port P]\n");
                return 2;
        }
        const char *mode = argv[optind];
        void (*op)(void);
        if (strcmp(mode, "exec") == 0) {
                op = op_exec;
        } else if (strcmp(mode, "connect") == 0) {
                socklen_t len = sizeof(laddr);
                laddr.sin_family = AF_INET;
                laddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (lfd < 0 || bind(lfd, (struct sockaddr *) &laddr, sizeof(laddr)) < 0 || listen(lfd, 128) < 0 ||
                    getsockname(lfd, (struct sockaddr *) &laddr, &len) < 0)
                        die("listen");
                op = op_connect;
        } else if (strcmp(mode, "send") == 0) {
                /* a sink on the port (53 needs root), so that no ICMP error fails the sends */
                socklen_t len = sizeof(laddr);
                laddr.sin_family = AF_INET;
                laddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                laddr.sin_port = htons((uint16_t) send_port);
                lfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (lfd < 0 || bind(lfd, (struct sockaddr *) &laddr, sizeof(laddr)) < 0 ||
                    getsockname(lfd, (struct sockaddr *) &laddr, &len) < 0)
                        die("bind the sink");
                ufd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                int big = 1 << 24;
                setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
                op = op_send;
        } else if (strcmp(mode, "open") == 0) {
                char p[128];
                if (!mkdtemp(dir))
                        die("mkdtemp");
                /* created under a name nobody reports, then renamed: the storm is the opens */
                char tmp[160];
                snprintf(tmp, sizeof(tmp), "%s/new", dir);
                for (long i = 0; i < n_files; i++) {
                        file_name(i, p, sizeof(p));
                        int fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                        if (fd < 0 || rename(tmp, p) < 0)
                                die("create");
                        close(fd);
                }
                op = op_open;
        } else {
                fprintf(stderr, "kstorm: unknown mode %s\n", mode);
                return 2;
        }

        /* TIME_WAIT sockets pile up in a connect storm; they are the kernel's, not ours */
        double start = now_s(), end = start + duration, t;
        uint64_t ops = 0;
        while ((t = now_s()) < end) {
                if (rate > 0) {
                        double due = start + (double) ops / rate;
                        if (t < due) {
                                double wait = due - t;
                                if (wait > 0.0002) {
                                        struct timespec ts = { 0, (long) (wait * 1e9) };
                                        nanosleep(&ts, NULL);
                                }
                                continue;
                        }
                }
                for (int i = 0; i < 16; i++)
                        op();
                ops += 16;
        }
        double secs = now_s() - start;
        printf("kstorm mode=%s ops=%llu seconds=%.3f rate=%.0f\n", mode, (unsigned long long) ops, secs, (double) ops / secs);
        if (strcmp(mode, "open") == 0) {
                char cmd[64];
                snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
                if (system(cmd) != 0)
                        fprintf(stderr, "kstorm: could not remove %s\n", dir);
        }
        return 0;
}
