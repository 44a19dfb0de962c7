#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "unix_socket.h"

static int unix_addr(const char *path, struct sockaddr_un *ret) {
        size_t n = strlen(path);
        if (n == 0 || n >= sizeof(ret->sun_path))
                return -ENAMETOOLONG;
        *ret = (struct sockaddr_un) { .sun_family = AF_UNIX };
        memcpy(ret->sun_path, path, n + 1);
        return 0;
}

int st_unix_remove_stale(const char *path) {
        struct sockaddr_un sa;
        struct stat st;
        int fd, r;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;
        r = unix_addr(path, &sa);
        if (r < 0)
                return r;
        /* A socket that accepts a connection belongs to a running process: leave it alone. */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        r = connect(fd, (struct sockaddr *) &sa, sizeof(sa));
        close(fd);
        if (r == 0)
                return -EADDRINUSE;
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int st_unix_listen(const char *path, mode_t mode, int *ret_fd) {
        struct sockaddr_un sa;
        int fd, r;

        r = unix_addr(path, &sa);
        if (r < 0)
                return r;
        r = st_unix_remove_stale(path);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                goto fail;
        /* chmod after bind (not umask, which is process-wide); the socket does not accept
         * before listen() anyway. */
        if (chmod(path, mode) < 0 || listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                unlink(path);
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
fail:
        r = -errno;
        close(fd);
        return r;
}

int st_parse_mode(const char *s, mode_t *ret) {
        size_t n = s ? strlen(s) : 0;
        mode_t m = 0;
        if (n < 1 || n > 4)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '7')
                        return -EINVAL;
                m = m * 8 + (mode_t) (s[i] - '0');
        }
        *ret = m;
        return 0;
}
