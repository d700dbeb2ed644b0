//! The browser's WASM is linked with its relocations kept (`--emit-relocs`): the split step in
//! tools/lib.sh (`berth-wasm-split`, what `cargo leptos --split` runs) needs them to move each
//! lazy route's code into its own part. Here rather than in RUSTFLAGS so every way of building
//! the frontend gets it, cargo-leptos's included.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--emit-relocs");
    }
}
