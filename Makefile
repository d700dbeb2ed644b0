# The index of Berth's day-to-day commands (`make` lists them). Each target only calls a script
# in tools/ or cargo, so the scripts stay the one place where things are done. (A Makefile
# rather than a justfile: make is on every Debian machine; just is not in Debian 12.)
.DEFAULT_GOAL := help
.PHONY: help run test e2e site site-release lint fmt queries watch bench bench-cold bench-history bench-engine

help: ## list the commands
	@awk -F ':.*## ' '/^[a-z0-9-]+:.*## / { printf "  make %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

run: ## install what is missing and run the whole local stack with demo users (tools/run.sh)
	tools/run.sh

test: ## every test, as CI runs it (tools/test.sh)
	tools/test.sh

e2e: ## only the end-to-end browser tests (tools/test.sh --e2e)
	tools/test.sh --e2e

site: ## build target/site with a dev WASM, and the dev server
	tools/build-site.sh --server

site-release: ## build target/site with the release WASM, and the release server
	tools/build-site.sh --release --server

lint: ## clippy on each side alone (server side, then the WASM side), -D warnings
	SQLX_OFFLINE=true cargo clippy --workspace --exclude frontend --all-targets -- -D warnings
	SQLX_OFFLINE=true cargo clippy -p frontend -p app --target wasm32-unknown-unknown -- -D warnings

fmt: ## format every crate
	cargo fmt --all

queries: ## regenerate the offline query metadata in .sqlx/ (tools/query-metadata.sh)
	tools/query-metadata.sh

watch: ## the Leptos developer loop with live reload (needs `cargo install cargo-leptos`; --split for the lazy routes)
	cargo leptos watch --split

bench: ## WASM size and idle memory (tools/bench.sh)
	tools/bench.sh

bench-cold: ## the same plus a cold release build (tools/bench.sh --cold)
	tools/bench.sh --cold

bench-history: ## 10,000 environments, 1,000,000 events over HTTP (tools/bench-history.sh)
	tools/bench-history.sh

bench-engine: ## 50 environments provisioned at once (tools/bench-engine.sh)
	tools/bench-engine.sh
