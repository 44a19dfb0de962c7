#include "cgroup.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int st_cgroup2_mount(const char *mounts_path, char *buf, size_t cap) {
        FILE *f = fopen(mounts_path, "re");
        char line[4096];
        int r = -ENOENT;
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                char dev[256], dir[1024], type[64];
                if (sscanf(line, "%255s %1023s %63s", dev, dir, type) != 3 || strcmp(type, "cgroup2") != 0)
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
