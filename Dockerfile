# strata container image: Debian 12, two stages.
#
#   docker build -t strata .
#   docker run --rm -p 4317:4317 -p 4318:4318 -p 8888:8888 strata
#   docker run --rm -v "$PWD/my.yaml:/etc/strata/config.yaml:ro" -p 4317:4317 strata
#
# The build stage compiles the BPF programs against the BTF of the kernel it builds on
# (/sys/kernel/btf/vmlinux, visible in `docker build`); CO-RE relocates them to the kernel that
# runs them. Without BTF there, pass --build-arg CMAKE_ARGS=-DSTRATA_VMLINUX_H=... or
# -DSTRATA_RECEIVER_EBPF=OFF.
# The build stage installs its toolchain with scripts/install-deps.sh, the same script CI runs,
# so the image and CI build against the same Debian packages. The runtime stage holds the
# binary, the shared libraries it links and a config; it runs as an unprivileged user.

# ---------------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS build

# The image needs the C toolchain and libraries only: no Node.js, no `npm ci` of the
# integration tests: install-deps.sh honours STRATA_SKIP_NPM=1.
ENV STRATA_SKIP_NPM=1 \
    DEBIAN_FRONTEND=noninteractive

WORKDIR /src
# The scripts alone first: this layer (the slow apt step, and libmicrohttpd built without
# HTTPS into /src/.deps) is rebuilt only when they change.
COPY scripts/install-deps.sh scripts/build-mhd.sh scripts/
RUN ./scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*

COPY . .
ARG CMAKE_ARGS=""
# A developer's own build directories are kept out of the context by .dockerignore (their
# CMakeCache.txt names another source path and would make cmake refuse to configure), and so is
# their .deps/, which would replace the one built above. Build directories are removed here
# too, for builders that ignore .dockerignore.
RUN rm -rf build build-asan \
 && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSTRATA_TESTS=OFF $CMAKE_ARGS \
 && cmake --build build --parallel "$(nproc)" \
 && strip build/strata

# ---------------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# Runtime libraries only (their own dependencies come with them). libmicrohttpd12 (and GnuTLS
# under it) is only for a build that fell back to the system library (scripts/build-mhd.sh
# failed); the ldd check below tells. gRPC core,
# abseil, re2, libstdc++ and OpenSSL are linked into the binary (cmake/grpc_static.cmake);
# c-ares stays shared. libssl3 is for libcurl4, the HTTP clients' library (Kubernetes, ECS and
# CloudWatch receivers, AWS credentials), which they load when they first need it
# (agent/curl_loader.c); ca-certificates for TLS to backends.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libc-ares2 libssl3 libprotobuf-c1 libmicrohttpd12 libyaml-0-2 libjson-c5 zlib1g libcurl4 libbpf1 libelf1 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 strata \
 && useradd --system --uid 10001 --gid strata --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin strata

COPY --from=build /src/build/strata /usr/local/bin/strata
# The image's config is the embedded default (OTLP in, debug exporter out); the environment
# below makes it listen on every interface instead of loopback, as a container must.
# Mount your own file over /etc/strata/config.yaml, or pass --config.
COPY --from=build /src/config/default.yaml /etc/strata/config.yaml
ENV STRATA_OTLP_GRPC_ENDPOINT=0.0.0.0:4317 \
    STRATA_OTLP_HTTP_ENDPOINT=0.0.0.0:4318 \
    STRATA_METRICS_ADDRESS=0.0.0.0:8888 \
    STRATA_OTLP_UNIX_SOCKET=/tmp/strata-otlp.sock

# Fail the image build, not the first `docker run`, if a shared library is missing or the
# shipped config does not match the compiled-in components.
RUN if ldd /usr/local/bin/strata | grep 'not found'; then exit 1; fi \
 && /usr/local/bin/strata version \
 && /usr/local/bin/strata validate --config /etc/strata/config.yaml

# Numeric, so that Kubernetes' runAsNonRoot can check it. (The ebpf receiver needs root or
# CAP_BPF/CAP_PERFMON: run that deployment with --user 0 and the capabilities it needs; without
# them it reports kernel collection off and the rest runs.)
USER 10001:10001

# 4317 OTLP/gRPC, 4318 OTLP/HTTP, 8888 self-telemetry (/metrics, /healthz).
EXPOSE 4317 4318 8888

# No HEALTHCHECK: the image has no HTTP client (curl/wget) to probe /healthz with, and adding
# one only for that would grow the image. Orchestrators probe http://<container>:8888/healthz
# from outside instead (Kubernetes httpGet probes, or a compose healthcheck run from another
# container); see deploy/README.md.

# strata takes SIGTERM as PID 1 (it blocks the signal and sigwait()s for it), drains, and exits.
ENTRYPOINT ["/usr/local/bin/strata"]
CMD ["run", "--config", "/etc/strata/config.yaml"]
