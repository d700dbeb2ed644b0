//! `berth`: Berth's API (`/api/v1`) from a terminal or a script. See docs/cli.md.
//!
//! Exit codes: 0 success; 1 an error (Berth refused the call, could not be reached, bad
//! credentials); 2 a usage error; with `--wait`, 3 when the request failed, was rejected or
//! withdrawn, and 4 when the wait timed out.

mod api;
mod cli;
mod commands;
mod config;
mod output;
mod wait;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(commands::run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
