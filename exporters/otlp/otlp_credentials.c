/* Channel credentials from the exporter's tls settings. */
#include <errno.h>
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "otlp_exporter.h"

#define PEM_MAX (16u << 20)

/* Where distributions keep the system's trusted roots; gRPC's own default is its bundled
 * roots.pem, which misses CAs that an operator added to the system store. */
static const char *const system_roots[] = {
        "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Alpine */
        "/etc/pki/tls/certs/ca-bundle.crt",   /* Fedora, RHEL */
        "/etc/ssl/ca-bundle.pem",             /* SUSE */
        "/etc/ssl/cert.pem",                  /* Alpine (LibreSSL), macOS */
        NULL,
};

static int read_pem(const char *path, char **ret) {
        FILE *f = fopen(path, "re");
        struct stat st;
        char *buf;
        int r = 0;

        if (!f)
                return -errno;
        if (fstat(fileno(f), &st) < 0) {
                r = -errno;
                goto out;
        }
        if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t) st.st_size > PEM_MAX) {
                r = -EINVAL;
                goto out;
        }
        buf = malloc((size_t) st.st_size + 1);
        if (!buf) {
                r = -ENOMEM;
                goto out;
        }
        if (fread(buf, 1, (size_t) st.st_size, f) != (size_t) st.st_size) {
                free(buf);
                r = -EIO;
                goto out;
        }
        buf[st.st_size] = 0;
        *ret = buf;
out:
        fclose(f);
        return r;
}

static char *system_root_pem(void) {
        const char *env = getenv("SSL_CERT_FILE");
        char *pem = NULL;
        if (env && *env && read_pem(env, &pem) == 0)
                return pem;
        for (size_t i = 0; system_roots[i]; i++)
                if (read_pem(system_roots[i], &pem) == 0)
                        return pem;
        return NULL; /* gRPC falls back to its own roots */
}

/* TLS that trusts any server certificate (insecure_skip_verify). The SSL credentials API
 * cannot turn verification off; the TLS credentials API can. */
static grpc_channel_credentials *skip_verify_credentials(const char *cert, const char *key) {
        grpc_tls_credentials_options *o = grpc_tls_credentials_options_create();
        grpc_tls_certificate_verifier *v = grpc_tls_certificate_verifier_no_op_create();

        grpc_tls_credentials_options_set_verify_server_cert(o, 0);
        grpc_tls_credentials_options_set_check_call_host(o, 0);
        grpc_tls_credentials_options_set_certificate_verifier(o, v);
        grpc_tls_certificate_verifier_release(v);
        if (cert && key) {
                grpc_tls_identity_pairs *pairs = grpc_tls_identity_pairs_create();
                grpc_tls_identity_pairs_add_pair(pairs, key, cert);
                grpc_tls_certificate_provider *p = grpc_tls_certificate_provider_static_data_create(NULL, pairs);
                grpc_tls_credentials_options_set_certificate_provider(o, p);
                grpc_tls_credentials_options_watch_identity_key_cert_pairs(o);
                grpc_tls_certificate_provider_release(p);
        }
        return grpc_tls_credentials_create(o); /* takes o */
}

int otlp_channel_credentials(const struct otlp_tls_config *tls, bool use_tls, grpc_channel_credentials **ret,
                             char *errbuf, size_t errlen) {
        char *ca = NULL, *cert = NULL, *key = NULL;
        grpc_channel_credentials *c;
        int r = 0;

        if (!use_tls) {
                c = grpc_insecure_credentials_create();
                goto done;
        }
#define LOAD(field, var)                                                                                       \
        if (tls->field && (r = read_pem(tls->field, &var)) < 0) {                                              \
                snprintf(errbuf, errlen, "cannot read tls." #field " '%s': %s", tls->field, strerror(-r));     \
                goto fail;                                                                                     \
        }
        LOAD(ca_file, ca)
        LOAD(cert_file, cert)
        LOAD(key_file, key)
#undef LOAD

        if (tls->insecure_skip_verify)
                c = skip_verify_credentials(cert, key);
        else {
                grpc_ssl_pem_key_cert_pair pair = { .private_key = key, .cert_chain = cert };
                if (!ca)
                        ca = system_root_pem();
                c = grpc_ssl_credentials_create_ex(ca, cert && key ? &pair : NULL, NULL, NULL);
        }
done:
        if (!c) {
                snprintf(errbuf, errlen, "cannot create %s channel credentials", use_tls ? "TLS" : "plaintext");
                r = -EINVAL;
                goto fail;
        }
        *ret = c;
fail:
        free(ca);
        free(cert);
        if (key) {
                explicit_bzero(key, strlen(key)); /* private key material */
                free(key);
        }
        return r;
}
