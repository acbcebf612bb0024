# Backend image. Three build stages so a source change rebuilds only the workspace's
# own crates: `planner` reduces the workspace to a dependency recipe (cargo-chef),
# `build` compiles the dependencies from that recipe in a layer of their own and then
# the sources. The runtime stage is a slim Debian running as a non-root user.
#
# Every workspace member (Cargo.toml `members`) must be copied in both stages, and the
# patched crates (`vendor/`, `[patch.crates-io]`) before the recipe is cooked too:
# cargo-chef's recipe does not carry them. The `scripts/ops-check.sh` check rebuilds
# this COPY set in a temporary directory and runs `cargo metadata --locked` and
# `cargo check --locked --offline` on it.
FROM rust:1.95-bookworm AS chef
# libheif-dev: HEIC decoding (the backend links Debian's libheif through pkg-config).
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libheif-dev \
    && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY Cargo.toml Cargo.lock ./
COPY backend backend
COPY migrations migrations
COPY bench bench
COPY vendor vendor
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
COPY vendor vendor
RUN cargo chef cook --release --locked -p backend --recipe-path recipe.json
COPY Cargo.toml Cargo.lock ./
COPY backend backend
COPY migrations migrations
COPY bench bench
RUN cargo build --release --locked -p backend

FROM debian:bookworm-slim
# libheif1: the HEIC decoder the backend is linked against (with its HEVC codecs).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libheif1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /home/app app \
    && mkdir -p /home/app/data && chown app /home/app/data
COPY --from=build /src/target/release/backend /usr/local/bin/backend
USER app
WORKDIR /home/app
ENV BIND_ADDR=0.0.0.0:8080 LOG_FORMAT=json DATA_DIR=/home/app/data
EXPOSE 8080
# `backend healthcheck` GETs /health/ready on BIND_ADDR's port (no curl in the image).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["backend", "healthcheck"]
ENTRYPOINT ["backend"]
CMD ["serve"]
