#include "doctor.h"

#include "curl_loader.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "aws_credentials.h"
#include "component.h"

#define API_TIMEOUT_MS 700

void st_doctor_line(st_buf *out, const char *what, int ok, const char *fmt, ...) {
        va_list ap;
        st_buf_printf(out, "  %-26s %s: ", what, ok ? "yes" : "no");
        va_start(ap, fmt);
        st_buf_vprintf(out, fmt, ap);
        va_end(ap);
        st_buf_puts(out, "\n");
}

static size_t discard(char *p, size_t size, size_t n, void *ud) { return size * n; }

/* An HTTP request with a short timeout: 0 and the status, or -1 and curl's reason in why. */
static int probe(const char *method, const char *url, const char *header, long *ret_status, char *why, size_t cap) {
        CURL *c = st_curl_easy_init();
        if (!c) {
                st_curl_init_error(why, cap);
                return -1;
        }
        struct curl_slist *h = header ? st_curl_slist_append(NULL, header) : NULL;
        st_curl_easy_setopt(c, CURLOPT_URL, url);
        st_curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        st_curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) API_TIMEOUT_MS);
        st_curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        st_curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        st_curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L); /* reachability only; receivers verify */
        if (h)
                st_curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        CURLcode r = st_curl_easy_perform(c);
        if (r == CURLE_OK)
                st_curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, ret_status);
        else
                snprintf(why, cap, "%s", st_curl_easy_strerror(r));
        st_curl_slist_free_all(h);
        st_curl_easy_cleanup(c);
        return r == CURLE_OK ? 0 : -1;
}

static void api_section(st_buf *out) {
        char why[256], url[512];
        long status = 0;
        const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");

        st_buf_puts(out, "\nAPI\n");
        if (!host || !*host) {
                st_doctor_line(out, "kubernetes API", 0, "KUBERNETES_SERVICE_HOST is not set (not in a pod)");
        } else {
                bool token = access("/var/run/secrets/kubernetes.io/serviceaccount/token", R_OK) == 0;
                snprintf(url, sizeof(url), "https://%s%s%s:%s/version", strchr(host, ':') ? "[" : "", host,
                         strchr(host, ':') ? "]" : "", port && *port ? port : "443");
                if (probe("GET", url, NULL, &status, why, sizeof(why)) == 0)
                        st_doctor_line(out, "kubernetes API", 1, "%s answers HTTP %ld; service-account token %s", url, status,
                                       token ? "readable" : "missing");
                else
                        st_doctor_line(out, "kubernetes API", 0, "%s: %s", url, why);
        }
        const char *ecs = getenv("ECS_CONTAINER_METADATA_URI_V4");
        if (!ecs || !*ecs) {
                st_doctor_line(out, "ECS task metadata v4", 0, "ECS_CONTAINER_METADATA_URI_V4 is not set (not in an ECS task)");
        } else {
                snprintf(url, sizeof(url), "%s/task", ecs);
                if (probe("GET", url, NULL, &status, why, sizeof(why)) == 0)
                        st_doctor_line(out, "ECS task metadata v4", status == 200, "%s answers HTTP %ld", url, status);
                else
                        st_doctor_line(out, "ECS task metadata v4", 0, "%s: %s", url, why);
        }
        /* IMDSv2: a token first, as the SDKs do */
        bool imds = false;
        if (probe("PUT", "http://169.254.169.254/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 60", &status, why,
                  sizeof(why)) == 0) {
                imds = status == 200;
                st_doctor_line(out, "EC2 instance metadata", imds, "IMDSv2 token request answered HTTP %ld", status);
        } else
                st_doctor_line(out, "EC2 instance metadata", 0, "169.254.169.254: %s (not on EC2, or IMDS blocked)", why);
        /* the whole credentials chain, as the cloudwatch receiver walks it (never a secret) */
        if (!imds)
                setenv("AWS_EC2_METADATA_DISABLED", "true", 0); /* known unreachable: no second wait */
        char region[64], reasons[2048];
        struct st_aws_provider *p = NULL;
        struct st_aws_creds c;
        st_aws_region(region, sizeof(region));
        if (st_aws_provider_new(&p) == 0 && st_aws_credentials(p, &c, reasons, sizeof(reasons)) == 0)
                st_doctor_line(out, "AWS credentials", 1, "from %s (%s)%s; region %s", c.source,
                               c.session_token[0] ? "temporary" : "long-term", c.expires_unix ? ", refreshed before they expire" : "",
                               *region ? region : "not set");
        else
                st_doctor_line(out, "AWS credentials", 0, "none: %s; region %s", reasons, *region ? region : "not set");
        explicit_bzero(&c, sizeof(c));
        st_aws_provider_free(p);
}

int st_doctor(st_buf *out) {
        struct utsname u;
        uname(&u);
        st_buf_printf(out, "strata %s doctor: what this host lets strata collect (kernel %s, %s, uid %u)\n", STRATA_VERSION,
                      u.release, u.machine, (unsigned) geteuid());
        for (const struct st_factory *const *f = st_factories; *f; f++) {
                if (!(*f)->doctor)
                        continue;
                st_buf_printf(out, "\n%s %s (%s)\n", st_kind_name((*f)->kind), (*f)->type, (*f)->description);
                (*f)->doctor(out);
        }
        api_section(out);
        return 0;
}
