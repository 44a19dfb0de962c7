#include "cgroup.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static bool has_option(const char *opts, const char *opt) {
        size_t n = strlen(opt);
        for (const char *p = opts; p; p = strchr(p, ',')) {
                if (*p == ',')
                        p++;
                if (strncmp(p, opt, n) == 0 && (p[n] == ',' || p[n] == '\0'))
                        return true;
        }
        return false;
}

/* The first mount point in mounts_path of file system type, with option among its mount
 * options (NULL: any), into buf. */
static int find_mount(const char *mounts_path, const char *type, const char *option, char *buf, size_t cap) {
        FILE *f = fopen(mounts_path, "re");
        char line[4096];
        int r = -ENOENT;
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                char dev[256], dir[1024], t[64], opts[1024];
                if (sscanf(line, "%255s %1023s %63s %1023s", dev, dir, t, opts) != 4 || strcmp(t, type) != 0 ||
                    (option && !has_option(opts, option)))
                        continue;
                /* mounts escapes spaces as \040; cgroup mount points have none in practice */
                if (strlen(dir) >= cap) {
                        r = -ENAMETOOLONG;
                        break;
                }
                strcpy(buf, dir);
                r = 0;
                break;
        }
        fclose(f);
        return r;
}

int st_cgroup2_mount(const char *mounts_path, char *buf, size_t cap) {
        return find_mount(mounts_path, "cgroup2", NULL, buf, cap);
}

int st_cgroup_v1_mount(const char *mounts_path, const char *controller, char *buf, size_t cap) {
        return find_mount(mounts_path, "cgroup", controller, buf, cap);
}

int st_cgroup2_path_of(const char *proc_root, uint32_t pid, char *buf, size_t cap) {
        char path[256], line[4096];
        int r = -ENOENT;
        snprintf(path, sizeof(path), "%s/%u/cgroup", proc_root, pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                if (strncmp(line, "0::", 3) != 0)
                        continue;
                line[strcspn(line, "\n")] = '\0';
                if (strlen(line + 3) >= cap) {
                        r = -ENAMETOOLONG;
                        break;
                }
                strcpy(buf, line + 3);
                r = 0;
                break;
        }
        fclose(f);
        return r;
}

uint64_t st_cgroup2_id(const char *mount, const char *path) {
        char full[4096];
        struct stat st;
        if ((size_t) snprintf(full, sizeof(full), "%s%s", mount, path) >= sizeof(full) || stat(full, &st) < 0)
                return 0;
        return (uint64_t) st.st_ino;
}

int st_cgroup2_path_of_id(const char *mount, uint64_t id, char *buf, size_t cap) {
        /* kernfs hands out its node id as an 8-byte handle of type FILEID_KERNFS */
        struct {
                struct file_handle fh;
                uint64_t id;
        } h = { .fh = { .handle_bytes = sizeof(uint64_t), .handle_type = 0xfe } };
        char link[64], full[4096];
        int r;

        memcpy(h.fh.f_handle, &id, sizeof(id));
        int mfd = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (mfd < 0)
                return -errno;
        int fd = open_by_handle_at(mfd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        r = fd < 0 ? -errno : 0;
        close(mfd);
        if (r < 0)
                return r;
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, full, sizeof(full) - 1);
        r = n < 0 ? -errno : 0;
        close(fd);
        if (r < 0)
                return r;
        full[n] = '\0';
        size_t ml = strlen(mount);
        while (ml > 1 && mount[ml - 1] == '/')
                ml--;
        /* A cgroup outside the mount's root (strata in a cgroup namespace of its own) reads
         * back as "/" or another path not under the mount: its path cannot be known here. */
        const char *rel = full;
        if (ml == 1 && strcmp(full, "/") == 0)
                return -EXDEV; /* the root, or a cgroup outside our namespace: cannot tell */
        if (ml > 1) {
                if (strncmp(full, mount, ml) != 0 || (full[ml] != '\0' && full[ml] != '/'))
                        return -EXDEV;
                rel = full + ml;
        }
        if (!*rel)
                rel = "/";
        if (strlen(rel) >= cap)
                return -ENAMETOOLONG;
        strcpy(buf, rel);
        return 0;
}
