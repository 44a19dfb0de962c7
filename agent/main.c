/* strata: the command line. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/grpc.h>
#include <grpc/support/log.h>

#include "absl_mutex.h"
#include "grpc_glue.h"

#include "clock.h"
#include "component.h"
#include "doctor.h"
#include "init_text.h"
#include "log.h"
#include "malloc_tune.h"
#include "service.h"

extern const char st_default_config[];
extern const size_t st_default_config_len;
extern const char st_default_ecs_config[];
extern const size_t st_default_ecs_config_len;

/* In an ECS task (Fargate included) the default is the ECS one: task identity and metrics,
 * the kernel receiver only where the host allows it. */
static bool in_ecs(void) {
        const char *u = getenv("ECS_CONTAINER_METADATA_URI_V4");
        return u && *u;
}
static const char *default_name(void) { return in_ecs() ? "<embedded ECS default>" : "<embedded default>"; }

static void usage(FILE *f) {
        fprintf(f, "usage: strata run [--config FILE]      run the agent (embedded default config without --config)\n"
                   "       strata validate --config FILE   check a config; prints file:line:col: message per problem\n"
                   "       strata components [-v]          list receivers, processors and exporters (-v: their settings)\n"
                   "       strata default-config           print the embedded default config\n"
                   "       strata doctor                   what this host lets strata collect, and why not\n"
                   "       strata version\n");
}

static int load(const char *config, struct st_service **ret) {
        struct st_diag d = { 0 };
        int r = config ? st_service_load(config, NULL, 0, &d, ret)
                : in_ecs() ? st_service_load(default_name(), st_default_ecs_config, st_default_ecs_config_len, &d, ret)
                           : st_service_load(default_name(), st_default_config, st_default_config_len, &d, ret);
        if (d.errors)
                fputs(st_buf_cstr(&d.text), stderr);
        st_diag_free(&d);
        return r;
}

static int cmd_validate(const char *config) {
        struct st_service *s = NULL;
        int r = load(config, &s);
        if (r < 0) {
                fprintf(stderr, "%s: invalid config\n", config ? config : default_name());
                return 1;
        }
        st_buf out = { 0 };
        st_service_describe(s, &out);
        printf("%s: valid\n%s", config ? config : default_name(), st_buf_cstr(&out));
        st_buf_free(&out);
        st_service_free(s);
        return 0;
}

static int cmd_components(bool verbose) {
        for (enum st_kind k = ST_RECEIVER; k <= ST_EXPORTER; k++) {
                printf("%ss:\n", st_kind_name(k));
                for (size_t i = 0; st_factories[i]; i++) {
                        const struct st_factory *f = st_factories[i];
                        if (f->kind != k)
                                continue;
                        printf("  %-16s", f->type);
                        for (int s = 0; s < ST_SIGNAL_COUNT; s++)
                                if (f->signals & ST_SIG_BIT(s))
                                        printf(" %s", st_signal_name(s));
                        printf("%s%s\n", f->description ? "  — " : "", f->description ? f->description : "");
                        if (verbose && f->config) {
                                st_buf out = { 0 };
                                st_cfg_describe(f->config, "", &out);
                                fputs(st_buf_cstr(&out), stdout);
                                st_buf_free(&out);
                        }
                }
        }
        return 0;
}

/* How often the idle main thread gives free heap memory back to the kernel. */
#define MALLOC_RELEASE_PERIOD_S 5
/* After this long, start-up is over (the exporters have connected): its code is unmapped. */
#define SETTLE_S 1

static int cmd_run(const char *config) {
        struct st_service *s = NULL;
        sigset_t set;
        int sig = 0, r;

        /* Every thread inherits this mask; the main thread alone takes the signals. */
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);

        st_malloc_configure();
        if (load(config, &s) < 0) {
                fprintf(stderr, "strata: not starting: invalid config\n");
                return 1;
        }
        const struct st_service_telemetry *tel = st_service_telemetry(s);
        st_log_setup(tel->log_level, tel->log_encoding ? ST_LOG_JSON : ST_LOG_TEXT);

        st_buf desc = { 0 };
        st_service_describe(s, &desc);
        st_info(NULL, "strata %s starting with %s", STRATA_VERSION,
                config ? config : in_ecs() ? "the embedded ECS default config (ECS_CONTAINER_METADATA_URI_V4 is set)"
                                           : "the embedded default config");
        for (char *line = strtok(desc.data, "\n"); line; line = strtok(NULL, "\n"))
                st_info(NULL, "pipeline %s", line);
        st_buf_free(&desc);

        st_grpc_route_logs(); /* gRPC core would print to stderr on its own */
        st_absl_mutex_setup();
        gpr_set_log_verbosity(tel->log_level == ST_LOG_DEBUG ? GPR_LOG_SEVERITY_DEBUG : GPR_LOG_SEVERITY_ERROR);
        grpc_init();
        if (tel->metrics_address && *tel->metrics_address) {
                r = st_tel_server_start(tel->metrics_address);
                if (r < 0) {
                        st_error(NULL, "cannot serve self-telemetry on %s: %s", tel->metrics_address, strerror(-r));
                        goto fail;
                }
                st_info(NULL, "self-telemetry on http://%s/metrics and /healthz", tel->metrics_address);
        }
        r = st_service_start(s);
        if (r < 0) {
                st_error(NULL, "start-up failed: %s", strerror(-r));
                goto fail;
        }
        st_tel_set_healthy(true);
        st_info(NULL, "running; SIGTERM or SIGINT stops");

        /* The main thread has nothing else to do: between signals it returns free memory and
         * the start-up code, first after SETTLE_S, when the exporters have connected. */
        for (bool settled = false;;) {
                struct timespec period = { .tv_sec = settled ? MALLOC_RELEASE_PERIOD_S : SETTLE_S };
                sig = sigtimedwait(&set, NULL, &period);
                if (sig > 0)
                        break;
                if (errno != EAGAIN)
                        continue;
                st_malloc_release();
                /* Every period, not once: what a reconnect or a rebuilt channel faulted back in
                 * goes again (a few page faults if it is still in use). */
                size_t init_bytes = 0;
                r = st_init_text_release(&init_bytes);
                if (!settled && r < 0)
                        st_debug(NULL, "cannot unmap the start-up code: %s, ignoring", strerror(-r));
                else if (!settled && init_bytes > 0)
                        st_debug(NULL, "unmapped %zu KiB of start-up code", init_bytes / 1024);
                settled = true;
        }
        st_tel_set_healthy(false);
        st_info(NULL, "%s: stopping, draining for up to %.1fs", strsignal(sig),
                (double) st_service_shutdown_timeout(s) / 1e9);
        r = st_service_shutdown(s);
        if (r < 0)
                st_warn(NULL, "shutdown deadline passed; what was left is counted as dropped");
        st_tel_server_stop();
        st_service_free(s);
        st_tel_reset();
        grpc_shutdown();
        st_info(NULL, "stopped");
        return 0;
fail:
        st_tel_server_stop();
        st_service_free(s);
        st_tel_reset();
        grpc_shutdown();
        return 1;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        const char *config = NULL;
        bool verbose = false;
        int c;

        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        const char *cmd = argv[1];
        optind = 2;
        while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
                switch (c) {
                case 'c': config = optarg; break;
                case 'v': verbose = true; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "strata: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (strcmp(cmd, "run") == 0)
                return cmd_run(config);
        if (strcmp(cmd, "validate") == 0) {
                if (!config) {
                        fprintf(stderr, "strata validate: --config FILE is required\n");
                        return 2;
                }
                return cmd_validate(config);
        }
        if (strcmp(cmd, "components") == 0)
                return cmd_components(verbose);
        if (strcmp(cmd, "doctor") == 0) {
                st_buf out = { 0 };
                int r = st_doctor(&out);
                fputs(st_buf_cstr(&out), stdout);
                st_buf_free(&out);
                return r < 0 ? 1 : 0;
        }
        if (strcmp(cmd, "default-config") == 0) {
                if (in_ecs())
                        fwrite(st_default_ecs_config, 1, st_default_ecs_config_len, stdout);
                else
                        fwrite(st_default_config, 1, st_default_config_len, stdout);
                return 0;
        }
        if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
                printf("strata %s\n", STRATA_VERSION);
                return 0;
        }
        if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
                usage(stdout);
                return 0;
        }
        fprintf(stderr, "strata: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
}
