//! `rancher-sim --addr 127.0.0.1:8444 [--seed insight] [--token KEY] [--cluster NAME=ID]... [--fast] [--legacy]`
//!
//! Runs the Rancher simulator for the local dev stack. Logs go to stderr (`RUST_LOG` filters).

use std::net::SocketAddr;
use std::process::ExitCode;

use berth_rancher_sim::{SimConfig, Timings};

const USAGE: &str =
    "usage: rancher-sim [--addr 127.0.0.1:8444] [--seed insight|none] [--token KEY] \
[--cluster NAME=ID]... [--fast]

  --addr ADDR        listen address (default 127.0.0.1:8444; port 0 picks a free port)
  --seed insight     load the insight charts (foundation, certs, influxdb 4.3.2, dsm) into a
                     `stable` cluster repo on every cluster (default); `none` starts empty
  --token KEY        the admin API key to accept (default token-berth:simulatorsecret,
                     or $RANCHER_SIM_TOKEN)
  --cluster NAME=ID  a downstream cluster besides `local` (default berth=c-m-berth001)
  --fast             test timings (milliseconds) instead of realistic seconds-long rollouts
  --legacy           also serve the legacy v3 apps API (catalog:// apps, /v3/templates)";

fn parse(args: impl Iterator<Item = String>) -> Result<(SocketAddr, SimConfig), String> {
    let mut addr: SocketAddr = "127.0.0.1:8444".parse().expect("valid default");
    let mut config = SimConfig {
        timings: Timings::realistic(),
        ..SimConfig::default()
    };
    if let Ok(t) = std::env::var("RANCHER_SIM_TOKEN") {
        config.token = t;
    }
    let mut clusters = Vec::new();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--addr" => {
                let v = value("--addr")?;
                addr = v.parse().map_err(|e| format!("--addr {v}: {e}"))?;
            }
            "--seed" => match value("--seed")?.as_str() {
                "insight" => config.seed_insight = true,
                "none" => config.seed_insight = false,
                other => return Err(format!("unknown seed {other:?} (insight or none)")),
            },
            "--token" => config.token = value("--token")?,
            "--cluster" => {
                let v = value("--cluster")?;
                let (name, id) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--cluster {v}: expected NAME=ID"))?;
                clusters.push((name.to_owned(), id.to_owned()));
            }
            "--fast" => config.timings = Timings::fast(),
            "--legacy" => config.legacy_apps = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !clusters.is_empty() {
        config.clusters = clusters;
    }
    if config.token.trim().is_empty() {
        return Err("the token must not be empty".into());
    }
    Ok((addr, config))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let (addr, config) = match parse(std::env::args().skip(1)) {
        Ok(v) => v,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("rancher-sim: {msg}");
            }
            eprintln!("{USAGE}");
            return if msg.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let clusters: Vec<String> = config
        .clusters
        .iter()
        .map(|(n, i)| format!("{n}={i}"))
        .collect();
    tracing::info!(
        url = %format!("http://{local}"),
        clusters = %clusters.join(","),
        seeded = config.seed_insight,
        "rancher simulator listening (token: see --token / RANCHER_SIM_TOKEN)"
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match berth_rancher_sim::serve(listener, config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> impl Iterator<Item = String> {
        a.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn parses_flags() {
        let (addr, c) = parse(args(&[
            "--addr",
            "127.0.0.1:0",
            "--seed=none",
            "--cluster",
            "a=c-1",
            "--fast",
            "--legacy",
        ]))
        .unwrap();
        assert_eq!(addr.port(), 0);
        assert!(!c.seed_insight);
        assert_eq!(c.clusters, vec![("a".to_string(), "c-1".to_string())]);
        assert_eq!(c.timings, Timings::fast());
        assert!(c.legacy_apps);
    }

    #[test]
    fn rejects_unknown() {
        assert!(parse(args(&["--nope"])).is_err());
        assert!(parse(args(&["--addr"])).is_err());
        assert!(parse(args(&["--seed", "other"])).is_err());
    }
}
