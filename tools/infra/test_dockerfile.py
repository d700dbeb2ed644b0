"""Consistency checks on the Dockerfile that checkov cannot make (no docker engine here to build
it): the toolchain pins match the workspace, the image carries what the server needs at run time,
the run-time settings agree with the Kubernetes manifests, and the supply chain is pinned (issue
15, point 8): every base image and the syntax frontend by digest, cargo installs --locked, npm
packages by version and checked hash. The supply-chain checks are functions returning problems,
each with negative tests on bad snippets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
DIGEST = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[\w.-]+)?@sha256:[0-9a-f]{64}$")


def instructions(text: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def unpinned_images(text: str) -> list[str]:
    """Base images (and the `# syntax=` frontend) not pinned by digest; earlier stages are fine."""
    problems = []
    syntax = re.match(r"# syntax=(\S+)", text)
    if syntax and not DIGEST.match(syntax.group(1)):
        problems.append(f"syntax frontend {syntax.group(1)} is not pinned by digest")
    stages = set()
    for line in instructions(text):
        match = re.match(r"FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", line, flags=re.I)
        if not match:
            continue
        image, stage = match.groups()
        if image not in stages and not DIGEST.match(image):
            problems.append(f"FROM {image} is not pinned by digest")
        if stage:
            stages.add(stage)
    return problems


def unlocked_installs(text: str) -> list[str]:
    """Tool installs that resolve their dependencies afresh: cargo without --locked, npm from the
    registry by range or without a checked hash, pip without --require-hashes."""
    problems = []
    for line in instructions(text):
        for cmd in re.split(r"&&|;|\|", line):
            cmd = cmd.strip().removeprefix("RUN ").strip()
            cmd = re.sub(r"^--mount=\S+\s+", "", cmd)
            while cmd.startswith("--mount="):
                cmd = re.sub(r"^--mount=\S+\s+", "", cmd)
            words = cmd.split()
            if words[:2] == ["cargo", "install"] and "--locked" not in words:
                problems.append(f"{cmd}: cargo install without --locked")
            if words[:1] == ["npm"] and len(words) > 1 and words[1] in ("install", "i", "add"):
                packages = [w for w in words[2:] if not w.startswith("-")]
                if not packages or any(not w.endswith(".tgz") for w in packages):
                    problems.append(f"{cmd}: npm installs from the registry (pack, check the hash, install the .tgz)")
                elif "--ignore-scripts" not in words:
                    problems.append(f"{cmd}: npm runs the package's install scripts")
            if words[:1] == ["npm"] and len(words) > 1 and words[1] == "pack":
                packages = [w for w in words[2:] if not w.startswith("-")]
                if any(not re.fullmatch(r"[@\w./-]+@\d+\.\d+\.\d+", w) for w in packages):
                    problems.append(f"{cmd}: npm package without an exact version")
            if words[:2] in (["pip", "install"], ["pip3", "install"]) or words[1:4] == ["-m", "pip", "install"]:
                if "--require-hashes" not in words:
                    problems.append(f"{cmd}: pip install without --require-hashes")
    joined = " ".join(instructions(text))
    for tarball in re.findall(r"npm install .*?(\S+\.tgz)", joined):
        name = re.escape(tarball.removeprefix("./"))
        if not re.search(rf"[0-9a-f]{{128}}\s+{name}'?\s*\|\s*sha512sum --check", joined):
            problems.append(f"{tarball} is installed without a sha512 check")
    return problems


def locked_version(crate: str) -> str:
    lock = (ROOT / "Cargo.lock").read_text()
    match = re.search(rf'\[\[package\]\]\nname = "{re.escape(crate)}"\nversion = "([^"]+)"', lock)
    assert match, f"{crate} not in Cargo.lock"
    return match.group(1)


def test_wasm_bindgen_cli_matches_the_lock():
    version = locked_version("wasm-bindgen")
    # Installed --locked from the committed lock of that very CLI version (see its README).
    assert f"/opt/wasm-bindgen-cli/install.sh {version}" in DOCKERFILE
    assert "COPY tools/wasm-bindgen-cli /opt/wasm-bindgen-cli" in DOCKERFILE
    cli_lock = (ROOT / "tools" / "wasm-bindgen-cli" / "Cargo.lock").read_text()
    assert f'name = "wasm-bindgen-cli"\nversion = "{version}"' in cli_lock
    assert f'name = "wasm-bindgen"\nversion = "{version}"' in cli_lock
    installer = (ROOT / "tools" / "wasm-bindgen-cli" / "install.sh").read_text()
    assert "cargo install --locked" in installer
    assert f'grep -q \'^version = "{version}"$\'' in DOCKERFILE


def test_toolchain_pins():
    # The site is built by the same script as in CI and development, without cargo-leptos.
    assert "tools/build-site.sh --release --server" in DOCKERFILE
    assert "cargo-leptos" not in DOCKERFILE.replace("same steps cargo-leptos runs", "")
    assert "rustup target add wasm32-unknown-unknown" in DOCKERFILE
    # The lazy routes' splitter, from the workspace's pinned tool (tools/lib.sh checks its version).
    assert "cargo install --locked --path /opt/wasm-split --root /usr/local" in DOCKERFILE
    assert "npm pack --silent binaryen@132.0.0" in DOCKERFILE
    # npm's wasm-opt must come before any other on PATH, and is checked before the build.
    assert "ENV PATH=/opt/binaryen/bin:${PATH}" in DOCKERFILE
    assert "wasm-opt --version | grep -q 'version 132'" in DOCKERFILE
    assert "apt-get install" not in DOCKERFILE.split("FROM debian")[0], "no Debian binaryen in the build"
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", DOCKERFILE, flags=re.M))
    for image in re.findall(r"^FROM (\S+)", DOCKERFILE, flags=re.M):
        if image in stages:
            continue
        # The tag stays beside the digest, for the reader (and Debian 12 throughout).
        assert re.match(r"^[a-z0-9./-]+:[\w.-]+@", image) and ":latest@" not in image, image
        assert "bookworm" in image or image.startswith("debian:12"), image


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


def test_base_images_are_pinned_by_digest():
    assert unpinned_images(DOCKERFILE) == []


def test_tools_are_installed_locked_and_checked():
    assert unlocked_installs(DOCKERFILE) == []


PINNED = "@sha256:" + "0" * 64


@pytest.mark.parametrize(
    "snippet, expected",
    [
        ("FROM debian:12-slim AS runtime\n", "FROM debian:12-slim is not pinned by digest"),
        ("FROM rust:1.95.0-slim-bookworm AS tools\nFROM tools AS builder\n", "FROM rust:1.95.0-slim-bookworm is not"),
        ("FROM --platform=$BUILDPLATFORM node:20-bookworm-slim\n", "FROM node:20-bookworm-slim is not"),
        ("from debian:latest\n", "FROM debian:latest is not"),
        ("FROM debian:12-slim@sha256:abc\n", "FROM debian:12-slim@sha256:abc is not"),
        ("# syntax=docker/dockerfile:1.7\nFROM debian:12-slim" + PINNED + "\n", "syntax frontend docker/dockerfile:1.7 is not"),
    ],
)
def test_unpinned_image_is_caught(snippet, expected):
    assert any(p.startswith(expected) for p in unpinned_images(snippet)), unpinned_images(snippet)


def test_pinned_images_and_stages_pass():
    snippet = (
        "# syntax=docker/dockerfile:1.7" + PINNED + "\n"
        "FROM rust:1.95.0-slim-bookworm" + PINNED + " AS tools\nFROM tools AS builder\n"
        "FROM debian:12-slim" + PINNED + " AS runtime\n"
    )
    assert unpinned_images(snippet) == []


SHA512 = "e" * 128


@pytest.mark.parametrize(
    "snippet, expected",
    [
        (
            "RUN --mount=type=cache,target=/usr/local/cargo/registry \\\n    cargo install wasm-bindgen-cli --version 0.2.130\n",
            "cargo install without --locked",
        ),
        ("RUN rustup target add x && cargo install cargo-leptos\n", "cargo install without --locked"),
        ("RUN npm install --global --no-fund --no-audit binaryen@132.0.0 \\\n && wasm-opt --version\n", "npm installs from the registry"),
        ("RUN npm i -g binaryen\n", "npm installs from the registry"),
        ("RUN npm pack binaryen@^132.0.0\n", "without an exact version"),
        (
            "RUN npm pack binaryen@132.0.0 && echo '" + SHA512 + "  binaryen-132.0.0.tgz' | sha512sum --check - \\\n"
            " && npm install --global ./binaryen-132.0.0.tgz\n",
            "npm runs the package's install scripts",
        ),
        ("RUN npm pack binaryen@132.0.0 && npm install --global --ignore-scripts ./binaryen-132.0.0.tgz\n", "without a sha512 check"),
        ("RUN pip install checkov==3.2.0\n", "pip install without --require-hashes"),
        ("RUN python3 -m pip install -r requirements.txt\n", "pip install without --require-hashes"),
    ],
)
def test_unlocked_install_is_caught(snippet, expected):
    assert any(expected in p for p in unlocked_installs(snippet)), unlocked_installs(snippet)


def test_locked_installs_pass():
    snippet = (
        "RUN --mount=type=cache,target=/usr/local/cargo/registry \\\n    cargo install --locked wasm-bindgen-cli --version 0.2.130\n"
        "RUN npm pack --silent binaryen@132.0.0 \\\n && echo '" + SHA512 + "  binaryen-132.0.0.tgz' \\\n    | sha512sum --check --strict - \\\n"
        " && npm install --global --no-fund --ignore-scripts ./binaryen-132.0.0.tgz\n"
        "RUN pip install --require-hashes -r requirements.txt\n"
    )
    assert unlocked_installs(snippet) == []
