/* The file exporter (the Collector's fileexporter, JSON format): one OTLP/JSON line per batch,
 * each line a whole Export*ServiceRequest (the same JSON shape as TracesData, MetricsData,
 * LogsData), appended to `path`, optionally rotated by size: path → path.1 → … → path.N.
 *
 * Batches go through the exporter helper (queue, retry). Each line is encoded outside the
 * lock and written with one write(2) under it, so lines never interleave; a failed write is
 * cut off again (ftruncate) so that a retry never leaves half a line behind. No fsync: the
 * page cache is as durable as the Collector's file exporter is. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "component.h"
#include "exporter_helper.h"
#include "exporter_helper_validate.h"
#include "log.h"
#include "otlp_json.h"

#define MIB (UINT64_C(1) << 20)

struct file_rotation_cfg {
        int64_t max_megabytes;
        int64_t max_backups;
};

static const char *const format_names[] = { "json", NULL };

struct file_cfg {
        char *path;
        bool has_rotation;
        struct file_rotation_cfg rotation;
        int format;
        struct st_queue_config sending_queue;
        struct st_retry_config retry_on_failure;
};

static const struct st_cfg_field rotation_fields[] = {
        { .name = "max_megabytes", .type = ST_CFG_INT, .offset = offsetof(struct file_rotation_cfg, max_megabytes),
          .def = "100", .min = 1, .max = INT64_C(1) << 30, .desc = "start a new file when the current one would pass this size (MiB)" },
        { .name = "max_backups", .type = ST_CFG_INT, .offset = offsetof(struct file_rotation_cfg, max_backups),
          .def = "5", .min = 0, .max = 100000, .desc = "rotated files kept (path.1 is the newest); 0 keeps none" },
        ST_CFG_END
};

static const struct st_cfg_field file_fields[] = {
        { .name = "path", .type = ST_CFG_STRING, .offset = offsetof(struct file_cfg, path), .required = true,
          .desc = "file the OTLP/JSON lines are appended to" },
        { .name = "rotation", .type = ST_CFG_SECTION, .offset = offsetof(struct file_cfg, rotation), .sub = rotation_fields,
          .present = ST_CFG_PRESENT(struct file_cfg, has_rotation), .desc = "rotate by size (off unless given)" },
        { .name = "format", .type = ST_CFG_ENUM, .offset = offsetof(struct file_cfg, format), .def = "json",
          .enums = format_names, .desc = "line format: json (OTLP/JSON)" },
        { .name = "sending_queue", .type = ST_CFG_SECTION, .offset = offsetof(struct file_cfg, sending_queue),
          .sub = st_queue_config_fields, .desc = "queue between the pipeline and the writer" },
        { .name = "retry_on_failure", .type = ST_CFG_SECTION, .offset = offsetof(struct file_cfg, retry_on_failure),
          .sub = st_retry_config_fields, .desc = "retry failed writes (a full disk)" },
        ST_CFG_END
};

struct file_exp {
        char *log_name;
        char *path;
        bool rotate;
        uint64_t max_bytes;
        unsigned max_backups;
        struct st_exporter_helper *helper;

        pthread_mutex_t lock; /* the fields below */
        int fd;
        uint64_t size;       /* bytes in the current file */
        uint64_t rotate_at;  /* rotate before a write would take size past this */
};

static int open_file(struct file_exp *e) {
        int fd = open(e->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        e->fd = fd;
        e->size = (uint64_t) st.st_size;
        e->rotate_at = e->max_bytes;
        return 0;
}

/* path → path.1 → … → path.N (the oldest falls off), then a fresh path. */
static int rotate(struct file_exp *e) {
        size_t n = strlen(e->path) + 16;
        char *from = malloc(n), *to = malloc(n);
        int r = 0;
        if (!from || !to) {
                r = -ENOMEM;
                goto out;
        }
        close(e->fd);
        e->fd = -1;
        if (e->max_backups == 0) {
                if (unlink(e->path) < 0 && errno != ENOENT)
                        r = -errno;
        } else {
                for (unsigned i = e->max_backups - 1; i >= 1; i--) {
                        snprintf(from, n, "%s.%u", e->path, i);
                        snprintf(to, n, "%s.%u", e->path, i + 1);
                        if (rename(from, to) < 0 && errno != ENOENT)
                                st_warn(e->log_name, "cannot rename %s to %s: %s, ignoring", from, to, strerror(errno));
                }
                snprintf(to, n, "%s.1", e->path);
                if (rename(e->path, to) < 0 && errno != ENOENT)
                        r = -errno;
        }
        if (r < 0)
                st_warn(e->log_name, "cannot rotate %s: %s, writing on in the same file", e->path, strerror(-r));
        int q = open_file(e);
        if (q < 0) {
                st_error(e->log_name, "cannot reopen %s after rotating: %s", e->path, strerror(-q));
                r = q;
                goto out;
        }
        if (r < 0) {
                e->rotate_at = e->size + e->max_bytes; /* try again one max_megabytes later, not at each line */
                r = 0;
        }
out:
        free(from);
        free(to);
        return r;
}

static int write_all(int fd, const char *p, size_t n) {
        while (n) {
                ssize_t w = write(fd, p, n);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += w;
                n -= (size_t) w;
        }
        return 0;
}

/* Called with e->lock held. */
static int write_line(struct file_exp *e, const char *line, size_t len) {
        int r;
        if (e->fd < 0 && (r = open_file(e)) < 0) /* a reopen failed earlier: try again */
                return r;
        if (e->rotate && e->size > 0 && e->size + len > e->rotate_at && (r = rotate(e)) < 0)
                return r;
        r = write_all(e->fd, line, len);
        if (r < 0) {
                if (ftruncate(e->fd, (off_t) e->size) < 0)
                        st_warn(e->log_name, "cannot cut a partial line off %s: %s, ignoring", e->path, strerror(errno));
                return r;
        }
        e->size += len;
        return 0;
}

static void file_send(void *self, st_batch *b, int64_t deadline_ns, struct st_send_result *res) {
        struct file_exp *e = self;
        st_buf line = { 0 };
        const ProtobufCMessage *req = st_batch_req(b);
        int r = req ? st_otlp_json_encode(req, &line, false) : -ENOMEM;
        if (r == -EBADMSG) {
                res->status = ST_SEND_PERMANENT;
                snprintf(res->message, sizeof(res->message), "cannot encode as OTLP/JSON (nested too deep)");
                goto out;
        }
        if (r >= 0)
                r = st_buf_putc(&line, '\n');
        if (r >= 0) {
                pthread_mutex_lock(&e->lock);
                r = write_line(e, line.data, line.len);
                pthread_mutex_unlock(&e->lock);
        }
        if (r < 0) {
                res->status = ST_SEND_RETRY;
                snprintf(res->message, sizeof(res->message), "cannot write %s: %s", e->path, strerror(-r));
        } else
                res->status = ST_SEND_OK;
out:
        st_buf_free(&line);
}

static int file_validate(const void *cfg, struct st_cfg_ctx *ctx) {
        const struct file_cfg *c = cfg;
        int r = st_exporter_helper_validate(&c->retry_on_failure, &c->sending_queue, ctx);
        if (!c->path || !*c->path) {
                st_cfg_errorf(ctx, "path", "must name a file");
                r = -EINVAL;
        }
        return r;
}

static void file_destroy(void *self);

static int file_create(const struct st_component_settings *set, const void *cfg, void **ret) {
        const struct file_cfg *c = cfg;
        struct file_exp *e = calloc(1, sizeof(*e));
        int r;
        if (!e)
                return -ENOMEM;
        pthread_mutex_init(&e->lock, NULL);
        e->fd = -1;
        e->rotate = c->has_rotation;
        e->max_bytes = c->has_rotation ? (uint64_t) c->rotation.max_megabytes * MIB : UINT64_MAX;
        e->max_backups = (unsigned) c->rotation.max_backups;
        e->log_name = strdup(set->log_name ? set->log_name : "exporter/file");
        e->path = strdup(c->path ? c->path : "");
        if (!e->log_name || !e->path) {
                r = -ENOMEM;
                goto fail;
        }
        r = st_exporter_helper_new(set, &c->retry_on_failure, &c->sending_queue, 0, file_send, e, &e->helper);
        if (r < 0)
                goto fail;
        *ret = e;
        return 0;
fail:
        file_destroy(e);
        return r;
}

static int file_start(void *self) {
        struct file_exp *e = self;
        pthread_mutex_lock(&e->lock);
        int r = e->fd >= 0 ? 0 : open_file(e);
        pthread_mutex_unlock(&e->lock);
        if (r < 0) {
                st_error(e->log_name, "cannot open %s: %s", e->path, strerror(-r));
                return r;
        }
        r = st_exporter_helper_start(e->helper);
        if (r < 0)
                st_error(e->log_name, "cannot start the sending queue: %s", strerror(-r));
        return r;
}

static int file_consume(void *self, st_batch *b) {
        struct file_exp *e = self;
        return st_exporter_helper_consume(e->helper, b);
}

static int file_shutdown(void *self, int64_t deadline_ns) {
        struct file_exp *e = self;
        int r = st_exporter_helper_shutdown(e->helper, deadline_ns);
        pthread_mutex_lock(&e->lock);
        if (e->fd >= 0 && close(e->fd) < 0)
                st_warn(e->log_name, "closing %s: %s, ignoring", e->path, strerror(errno));
        e->fd = -1;
        pthread_mutex_unlock(&e->lock);
        return r;
}

static void file_destroy(void *self) {
        struct file_exp *e = self;
        if (!e)
                return;
        st_exporter_helper_free(e->helper); /* drains nothing more: counts what shutdown missed */
        if (e->fd >= 0)
                close(e->fd);
        pthread_mutex_destroy(&e->lock);
        free(e->log_name);
        free(e->path);
        free(e);
}

const struct st_factory st_exporter_file = {
        .type = "file",
        .kind = ST_EXPORTER,
        .signals = ST_SIG_ALL,
        .description = "appends one OTLP/JSON line per batch to a file, rotated by size",
        .config_size = sizeof(struct file_cfg),
        .config = file_fields,
        .validate = file_validate,
        .create = file_create,
        .start = file_start,
        .consume = file_consume,
        .shutdown = file_shutdown,
        .destroy = file_destroy,
};
