# Multi-stage build: compile in the official Rust image, run on a small Debian base as a
# non-root user. Mount the config at /etc/sluice/sluice.toml and certificates where the
# config points (e.g. /etc/sluice/tls).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY config ./config
COPY benches ./benches
RUN cargo build --release --locked --bin sluice

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /nonexistent --shell /usr/sbin/nologin sluice
COPY --from=build /src/target/release/sluice /usr/local/bin/sluice
COPY config/sluice.toml /etc/sluice/sluice.example.toml
USER 10001
# MySQL protocol, then the admin HTTP listener (/metrics, /healthz, /readyz).
EXPOSE 3306 9104
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["--config", "/etc/sluice/sluice.toml"]
