//! `berth-wasm-split INPUT.wasm PKG_DIR OUT_NAME MAIN_OUT.wasm`
//!
//! What `cargo leptos build --split` does between cargo and wasm-bindgen (its
//! `wasm_split_tools`): split INPUT (linked with `--emit-relocs`) at the `#[lazy]` points into
//! MAIN_OUT (for wasm-bindgen) and one `.wasm` per lazily loaded part in PKG_DIR, with the
//! loader `__wasm_split.______________________.js` and `__wasm_split_manifest.json`, the two
//! names Leptos's `HydrationScripts` looks for on the server. Prints the parts' paths, one a line.

use std::{collections::BTreeMap, fmt::Write as _, path::Path, process::ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--version") {
        println!("berth-wasm-split {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let [input, pkg_dir, out_name, main_out] = args.as_slice() else {
        eprintln!("usage: berth-wasm-split INPUT.wasm PKG_DIR OUT_NAME MAIN_OUT.wasm");
        return ExitCode::from(2);
    };
    match run(
        input.as_ref(),
        pkg_dir.as_ref(),
        out_name,
        main_out.as_ref(),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-wasm-split: {e:?}");
            ExitCode::FAILURE
        }
    }
}

fn run(input: &Path, pkg_dir: &Path, out_name: &str, main_out: &Path) -> eyre_result::Result {
    let wasm = std::fs::read(input)?;
    let main_module = format!("./{out_name}.js");
    let split = wasm_split_cli_support::transform({
        let mut opts = wasm_split_cli_support::Options::new(&wasm);
        opts.output_dir = pkg_dir;
        opts.main_out_path = main_out;
        opts.main_module = &main_module;
        opts.link_name = "./__wasm_split.______________________.js";
        opts
    })?;
    // split name -> the files to fetch for it, sorted so the file is the same every build.
    let manifest: BTreeMap<_, _> = split.prefetch_map.into_iter().collect();
    let mut json = String::from("{");
    for (i, (name, files)) in manifest.iter().enumerate() {
        let files: Vec<String> = files.iter().map(|f| quote(f)).collect();
        let sep = if i == 0 { "" } else { "," };
        write!(json, "{sep}\n  {}: [{}]", quote(name), files.join(", "))?;
    }
    json.push_str("\n}\n");
    std::fs::write(pkg_dir.join("__wasm_split_manifest.json"), json)?;
    for path in split.split_modules {
        println!("{}", path.display());
    }
    Ok(())
}

/// A JSON string (names here are identifiers and file stems; escaped anyway).
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

mod eyre_result {
    pub type Result = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;
}
