# syntax=docker/dockerfile:1.7@sha256:a57df69d0ea827fb7266491f2813635de6f17269be881f696fbfdf2d83dda33e
# Berth's production image: `server` (axum + Leptos SSR), the hydrate bundle under site/ and the
# blueprint/values templates under templates/.
#   docker build -t berth:$(git rev-parse --short HEAD) .
# The site is built by tools/build-site.sh, the same steps cargo-leptos runs: cargo, the lazy
# routes' splitter (tools/wasm-split), the wasm-bindgen CLI equal to the wasm-bindgen in
# Cargo.lock, and wasm-opt from npm binaryen 132 (never Debian's binaryen 108, whose output does
# not hydrate).

# Base images are Debian 12 (bookworm) throughout, so the binary's glibc matches the runtime.
# Every base image (and the syntax frontend above) is pinned by the digest of the multi-platform
# index its tag named when pinned (`docker buildx imagetools inspect <tag>` shows it); the tag
# stays for the reader. To move to a newer build, change tag and digest together.
# Tools: cargo installs run --locked against a committed Cargo.lock; binaryen's npm tarball is
# checked against the registry's sha512 integrity before it is installed, without its scripts.
# ---- wasm-opt from npm -----------------------------------------------------------------------
FROM node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0 AS wasm-opt
# sha512 of binaryen-132.0.0.tgz: `npm view binaryen@132.0.0 dist.integrity`, base64 → hex.
WORKDIR /tmp/binaryen
RUN npm pack --silent binaryen@132.0.0 \
 && echo 'e14b20ef212fc0edc532ca373a8bfaaa438e1d2a1dd4812ff9ba0a921efb91396333e78d068baa0936ea5acc06cdb1bebc334efdbfefd82e207c48755a007d2e  binaryen-132.0.0.tgz' \
    | sha512sum --check --strict - \
 && npm install --global --no-fund --no-audit --ignore-scripts ./binaryen-132.0.0.tgz \
 && rm binaryen-132.0.0.tgz \
 && /usr/local/lib/node_modules/binaryen/bin/wasm-opt --version | grep -q 'version 132'

# ---- build tools (cached independently of the source) ------------------------------------------
FROM rust:1.95.0-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS tools
RUN rustup target add wasm32-unknown-unknown
# With every dependency pinned by tools/wasm-bindgen-cli/Cargo.lock (its own lock pins a
# yanked crate, which `cargo install --locked wasm-bindgen-cli` refuses; see its README).
COPY tools/wasm-bindgen-cli /opt/wasm-bindgen-cli
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    /opt/wasm-bindgen-cli/install.sh 0.2.130
# The lazy routes' splitter (tools/lib.sh `ensure_wasm_split` finds this version on PATH).
COPY tools/wasm-split /opt/wasm-split
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo install --locked --path /opt/wasm-split --root /usr/local
COPY --from=wasm-opt /usr/local/bin/node /usr/local/bin/node
COPY --from=wasm-opt /usr/local/lib/node_modules/binaryen /opt/binaryen
# npm's wasm-opt first on PATH.
ENV PATH=/opt/binaryen/bin:${PATH}

# ---- build -------------------------------------------------------------------------------------
FROM tools AS builder
WORKDIR /src
COPY . .
# Compile-time checked queries use the committed .sqlx metadata; no database at build time.
ENV SQLX_OFFLINE=true
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=berth-target \
    grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | grep -q '^version = "0.2.130"$' \
 && wasm-opt --version | grep -q 'version 132' \
 && tools/build-site.sh --release --server \
 && mkdir -p /out \
 && cp target/release/server /out/server \
 && cp -r target/site /out/site

# ---- runtime -----------------------------------------------------------------------------------
FROM debian:12-slim@sha256:88200866dfff7ea7f5cbcb6ec7c8a701889efe6fe859fe64d6990e4b07ea4171 AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 berth \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin berth
WORKDIR /app
COPY --from=builder --chown=root:root --chmod=0755 /out/server /app/server
COPY --from=builder --chown=root:root /out/site /app/site
# Blueprints and Helm values templates are read from disk at run time (crates/blueprint),
# relative to the working directory: /app/templates.
COPY --from=builder --chown=root:root /src/templates /app/templates

ENV LEPTOS_SITE_ROOT=site \
    LEPTOS_SITE_ADDR=0.0.0.0:3000 \
    LEPTOS_OUTPUT_NAME=berth \
    LEPTOS_ENV=PROD \
    RUST_LOG=info

# Numeric ids so Kubernetes' runAsNonRoot can verify them.
USER 10001:10001
EXPOSE 3000

# The image has no curl: bash's /dev/tcp asks /healthz (process up) and wants a 200.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/3000 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["/app/server"]
