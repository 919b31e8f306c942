# medium-etl as a container: one static `etl` binary, CA roots for TLS and the bundled sample,
# in an image with nothing else (no shell, no package manager), run as a non-root user, data in
# the /data volume.
#
#   docker build -t medium-etl .                      # builds etl in the official Rust image
#   docker run --rm -v etl-data:/data medium-etl run --source /sample
#
# Two stages produce the same runtime image from the same layout (scripts/container_rootfs.sh:
# `rootfs/` with /etl, /sample, /etc/ssl/certs/ca-certificates.crt, /etc/passwd; `owned/` with
# /data and /tmp, owned by the user):
# - `prebuilt` copies a tree prepared on the host (scripts/check_container.sh builds the static
#   binary with cargo and lays it out): what CI builds, since no base image can be pulled there;
# - `runtime` (the default, last) builds the binary in rust:1.95 and lays out the same tree.
# `config` and `prebuilt` come first so that building them never needs the Rust image. BuildKit (Docker's
# builder since 23.0, and podman's) builds only the stages the target needs; the legacy builder
# (DOCKER_BUILDKIT=0) would build `prebuilt` too and fail for want of rootfs/.

# what both images run with, in one place (a stage inherits its base's user, environment and
# entry point; the volume and the working directory are declared after the files are copied,
# so that /data is the copied, user-owned directory)
FROM scratch AS config
USER 10001:10001
ENV ETL_LOG_FORMAT=json ETL_OUT=/data
ENTRYPOINT ["/etl"]
CMD ["--help"]

FROM config AS prebuilt
COPY rootfs/ /
# the output root and /tmp belong to the user the image runs as
COPY --chown=10001:10001 owned/ /
VOLUME ["/data"]
WORKDIR /data

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# the host's own gnu target (x86_64 or aarch64), linked statically; the registry and the build
# are cached between builds (a cold release build of polars takes a quarter of an hour)
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(rustc -vV | sed -n 's/^host: //p')" \
 && RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --locked --target "$target" --bin etl \
 && scripts/container_rootfs.sh "target/$target/release/etl" /image

FROM config AS runtime
COPY --from=build /image/rootfs/ /
COPY --from=build --chown=10001:10001 /image/owned/ /
VOLUME ["/data"]
WORKDIR /data
