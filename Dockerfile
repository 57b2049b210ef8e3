# syntax=docker/dockerfile:1
# Burrow server image: burrow-server, burrow-cli and burrow-bench on
# Debian bookworm-slim, run as an unprivileged user, data in the /data volume.
#
#   docker build -t burrow .
#   head -c 32 /dev/urandom | base64 > auth.secret && chmod 600 auth.secret && sudo chown 10001 auth.secret
#   docker run -d -p 127.0.0.1:7440:7440 -v burrow-data:/data \
#     -v "$PWD/auth.secret:/run/secrets/burrow_auth:ro" burrow
#
# A container listens on 0.0.0.0, so protected mode (README, Security)
# wants a client secret: the default config (deploy/docker/burrow.toml)
# names /run/secrets/burrow_auth, and the server refuses to start until a
# secret is mounted there. To run without one on a network you trust, say
# so explicitly in place of the default command:
#   docker run burrow --bind 0.0.0.0 --data-dir /data --protected-mode no

ARG RUST_VERSION=1.89

FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /src
# No debug info in the image's binaries (the release profile keeps some for
# profiling on a workstation).
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo

# Dependency layer: the manifests and empty targets only, so this layer and
# the dependencies it compiles are reused until Cargo.toml or Cargo.lock
# change.
COPY Cargo.toml Cargo.lock ./
COPY crates/burrow-proto/Cargo.toml crates/burrow-proto/
COPY crates/burrow-client/Cargo.toml crates/burrow-client/
COPY crates/burrow-server/Cargo.toml crates/burrow-server/
COPY crates/burrow-cli/Cargo.toml crates/burrow-cli/
COPY crates/burrow-bench/Cargo.toml crates/burrow-bench/
RUN mkdir -p src/bin \
    && for b in burrow-server burrow-cli burrow-bench; do echo 'fn main() {}' > "src/bin/$b.rs"; done \
    && for c in proto client server cli bench; do mkdir -p "crates/burrow-$c/src" && touch "crates/burrow-$c/src/lib.rs"; done \
    && cargo build --release --locked --bins \
    && rm -rf src crates/*/src

# The sources: only Burrow's own crates are compiled again.
COPY src src
COPY crates crates
RUN touch src/bin/*.rs crates/*/src/lib.rs \
    && cargo build --release --locked --bins \
    && mkdir /out \
    && cp target/release/burrow-server target/release/burrow-cli target/release/burrow-bench /out/

FROM debian:bookworm-slim
# A fixed uid, so a mounted secret can be given to it (chown 10001).
RUN groupadd --system --gid 10001 burrow \
    && useradd --system --uid 10001 --gid burrow --home-dir /data --no-create-home --shell /usr/sbin/nologin burrow \
    && mkdir /data \
    && chown burrow:burrow /data
COPY --from=builder /out/ /usr/local/bin/
COPY deploy/docker/burrow.toml /etc/burrow/burrow.toml
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 7440
# PING needs no authentication, so the check works with a client secret
# too. A container started with another --port needs its own check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["burrow-cli", "--port", "7440", "PING"]
# SIGTERM (docker stop) makes the server finish what it has read, write a
# final snapshot and exit 0; give it time with `docker stop -t 60`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["burrow-server"]
CMD ["--config", "/etc/burrow/burrow.toml"]
