//! `rancher-sim --addr 127.0.0.1:8444 [--seed insight] [--token KEY] [--cluster NAME=ID]... [--fast | --speed N] [--legacy]
//!  [--cluster-cpu 64] [--cluster-memory 256Gi]`
//!
//! Runs the Rancher simulator for the local dev stack. Logs go to stderr (`RUST_LOG` filters).

use std::net::SocketAddr;
use std::process::ExitCode;

use berth_rancher_sim::{is_quantity, ClusterResources, SimConfig, Timings};
use clap::{Parser, ValueEnum};

/// The Rancher API simulator for Berth's local dev stack.
#[derive(Debug, Parser)]
#[command(name = "rancher-sim", version)]
struct Args {
    /// Listen address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8444")]
    addr: SocketAddr,
    /// `insight` loads the insight charts (foundation, certs, influxdb 4.3.2, dsm) into a `stable`
    /// cluster repo on every cluster; `none` starts empty.
    #[arg(long, value_enum, default_value_t = Seed::Insight)]
    seed: Seed,
    /// The admin API key to accept.
    #[arg(long, env = "RANCHER_SIM_TOKEN", hide_env_values = true,
          default_value = "token-berth:simulatorsecret",
          value_parser = non_empty)]
    token: String,
    /// A downstream cluster besides `local`, as NAME=ID; repeatable (default berth=c-m-berth001).
    #[arg(long = "cluster", value_name = "NAME=ID", value_parser = name_and_id)]
    clusters: Vec<(String, String)>,
    /// Test timings (milliseconds) instead of realistic seconds-long rollouts.
    #[arg(long)]
    fast: bool,
    /// Realistic rollouts N times faster (the end-to-end run: still seen waiting and running).
    #[arg(long, default_value_t = 1, conflicts_with = "fast",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    speed: u32,
    /// Also serve the legacy v3 apps API (catalog:// apps, /v3/templates).
    #[arg(long)]
    legacy: bool,
    /// Every cluster's CPU capacity and allocatable, a Kubernetes quantity (`64`, `15500m`).
    #[arg(long, env = "RANCHER_SIM_CLUSTER_CPU", default_value = "64", value_parser = quantity)]
    cluster_cpu: String,
    /// Every cluster's memory capacity and allocatable, a Kubernetes quantity (`256Gi`, `64G`).
    #[arg(long, env = "RANCHER_SIM_CLUSTER_MEMORY", default_value = "256Gi", value_parser = quantity)]
    cluster_memory: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Seed {
    Insight,
    None,
}

fn non_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("the token must not be empty".into())
    } else {
        Ok(s.to_owned())
    }
}

fn quantity(s: &str) -> Result<String, String> {
    if is_quantity(s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a Kubernetes quantity (e.g. 64, 15500m, 256Gi, 64G)"
        ))
    }
}

fn name_and_id(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(name, id)| (name.to_owned(), id.to_owned()))
        .ok_or_else(|| format!("{s}: expected NAME=ID"))
}

impl Args {
    fn into_config(self) -> (SocketAddr, SimConfig) {
        let defaults = SimConfig::default();
        let config = SimConfig {
            token: self.token,
            clusters: if self.clusters.is_empty() {
                defaults.clusters
            } else {
                self.clusters
            },
            seed_insight: self.seed == Seed::Insight,
            timings: if self.fast {
                Timings::fast()
            } else {
                Timings::realistic().faster(self.speed)
            },
            legacy_apps: self.legacy,
            cluster_resources: ClusterResources::new(&self.cluster_cpu, &self.cluster_memory),
        };
        (self.addr, config)
    }
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
    let (addr, config) = Args::parse().into_config();
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
    let allocatable = |name: &str| {
        config
            .cluster_resources
            .allocatable
            .get(name)
            .cloned()
            .unwrap_or_default()
    };
    tracing::info!(
        url = %format!("http://{local}"),
        clusters = %clusters.join(","),
        seeded = config.seed_insight,
        cpu = %allocatable("cpu"),
        memory = %allocatable("memory"),
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

    fn parse(args: &[&str]) -> Result<(SocketAddr, SimConfig), clap::Error> {
        Args::try_parse_from(std::iter::once("rancher-sim").chain(args.iter().copied()))
            .map(Args::into_config)
    }

    #[test]
    fn parses_flags() {
        let (addr, c) = parse(&[
            "--addr",
            "127.0.0.1:0",
            "--seed=none",
            "--cluster",
            "a=c-1",
            "--fast",
            "--legacy",
            "--cluster-cpu",
            "15500m",
            "--cluster-memory=64G",
        ])
        .unwrap();
        assert_eq!(addr.port(), 0);
        assert!(!c.seed_insight);
        assert_eq!(c.clusters, vec![("a".to_string(), "c-1".to_string())]);
        assert_eq!(c.timings, Timings::fast());
        assert!(c.legacy_apps);
        assert_eq!(c.cluster_resources, ClusterResources::new("15500m", "64G"));
    }

    #[test]
    fn defaults_match_the_dev_stack() {
        let (addr, c) = parse(&[]).unwrap();
        assert_eq!(addr, "127.0.0.1:8444".parse().unwrap());
        assert!(c.seed_insight);
        assert_eq!(c.clusters, SimConfig::default().clusters);
        assert_eq!(c.timings, Timings::realistic());
        assert!(!c.legacy_apps);
        assert_eq!(c.cluster_resources, ClusterResources::new("64", "256Gi"));
    }

    #[test]
    fn speed_shortens_realistic_rollouts() {
        let (_, c) = parse(&["--speed", "4"]).unwrap();
        let realistic = Timings::realistic();
        assert_eq!(c.timings.operation_run, realistic.operation_run / 4);
        assert_eq!(c.timings.helm_ready, realistic.helm_ready / 4);
        assert_eq!(c.timings.operation_gc_ttl, realistic.operation_gc_ttl);
        assert!(parse(&["--speed", "0"]).is_err());
        assert!(parse(&["--speed", "2", "--fast"]).is_err());
    }

    #[test]
    fn rejects_unknown() {
        assert!(parse(&["--nope"]).is_err());
        assert!(parse(&["--addr"]).is_err());
        assert!(parse(&["--seed", "other"]).is_err());
        assert!(parse(&["--cluster", "no-equals"]).is_err());
        assert!(parse(&["--token", " "]).is_err());
        assert!(parse(&["--cluster-cpu", "lots"]).is_err());
        assert!(parse(&["--cluster-memory", "256GB"]).is_err());
    }
}
