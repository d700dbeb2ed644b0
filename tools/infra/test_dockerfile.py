"""Consistency checks on the Dockerfile that checkov cannot make (no docker engine here to build
it): the toolchain pins match the workspace, the image carries what the server needs at run time,
and the run-time settings agree with the Kubernetes manifests."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def locked_version(crate: str) -> str:
    lock = (ROOT / "Cargo.lock").read_text()
    match = re.search(rf'\[\[package\]\]\nname = "{re.escape(crate)}"\nversion = "([^"]+)"', lock)
    assert match, f"{crate} not in Cargo.lock"
    return match.group(1)


def test_wasm_bindgen_cli_matches_the_lock():
    version = locked_version("wasm-bindgen")
    assert f"cargo install wasm-bindgen-cli --version {version}" in DOCKERFILE
    assert f'grep -q \'^version = "{version}"$\'' in DOCKERFILE


def test_toolchain_pins():
    # The site is built by the same script as in CI and development, without cargo-leptos.
    assert "tools/build-site.sh --release --server" in DOCKERFILE
    assert "cargo-leptos" not in DOCKERFILE.replace("same steps cargo-leptos runs", "")
    assert "rustup target add wasm32-unknown-unknown" in DOCKERFILE
    # The lazy routes' splitter, from the workspace's pinned tool (tools/lib.sh checks its version).
    assert "cargo install --locked --path /opt/wasm-split --root /usr/local" in DOCKERFILE
    assert "binaryen@132.0.0" in DOCKERFILE
    # npm's wasm-opt must come before any other on PATH, and is checked before the build.
    assert "ENV PATH=/opt/binaryen/bin:${PATH}" in DOCKERFILE
    assert "wasm-opt --version | grep -q 'version 132'" in DOCKERFILE
    assert "apt-get install" not in DOCKERFILE.split("FROM debian")[0], "no Debian binaryen in the build"
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", DOCKERFILE, flags=re.M))
    for image in re.findall(r"^FROM (\S+)", DOCKERFILE, flags=re.M):
        if image in stages:
            continue
        assert ":" in image and not image.endswith(":latest"), image


def test_runtime_image_contents_and_user():
    runtime = DOCKERFILE.split("AS runtime", 1)[1]
    for path in ("/app/server", "/app/site", "/app/templates"):
        assert re.search(rf"^COPY --from=builder .* {re.escape(path)}$", runtime, flags=re.M), path
    assert re.search(r"^USER 10001:10001$", runtime, flags=re.M), "numeric non-root user"
    assert 'ENTRYPOINT ["/app/server"]' in runtime
    assert "HEALTHCHECK" in runtime and "/healthz" in runtime
    assert "EXPOSE 3000" in runtime


def test_runtime_settings_match_the_manifests():
    kustomization = (ROOT / "deploy" / "base" / "kustomization.yaml").read_text()
    for key, value in re.findall(r"^\s+- (LEPTOS_[A-Z_]+)=(\S+)$", kustomization, flags=re.M):
        assert re.search(rf"\b{key}={re.escape(value)}\b", DOCKERFILE), f"{key}={value} differs"
    deployment = (ROOT / "deploy" / "base" / "deployment.yaml").read_text()
    assert "runAsUser: 10001" in deployment and "containerPort: 3000" in deployment
    assert '["/app/server", "migrate"]' in deployment


def test_templates_dir_exists_to_be_copied():
    assert (ROOT / "templates").is_dir()
