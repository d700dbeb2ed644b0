//! The command line: every command, its arguments and their parsing.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Berth from a terminal or a script: environments, requests, plans, approvals, runs and
/// history over Berth's API (`/api/v1`).
///
/// Credentials: `berth login`, or the BERTH_URL and BERTH_TOKEN environment variables (which
/// win over the stored ones).
#[derive(Debug, Parser)]
#[command(name = "berth", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store Berth's URL and an API token (checked first) for later commands.
    Login(Login),
    /// Forget the stored URL and token.
    Logout,
    /// Who the token speaks for: name, roles, the token's scopes and expiry.
    Whoami(Out),
    /// Environments: list and show.
    #[command(subcommand, name = "env")]
    Env(EnvCommand),
    /// Requests: create, change, decommission; show, plan, approve, reject, withdraw.
    #[command(subcommand)]
    Request(RequestCommand),
    /// Provisioning runs: show, retry, cancel.
    #[command(subcommand)]
    Run(RunCommand),
    /// An environment's timeline (pages), or its export (`berth history export`).
    History(History),
    /// Print a shell completion script (e.g. `berth completions bash > /etc/bash_completion.d/berth`).
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Args)]
pub struct Login {
    /// Berth's URL, e.g. https://berth.example.com (asked for when not given).
    #[arg(long)]
    pub url: Option<String>,
    /// Read the token from standard input without asking (for scripts).
    #[arg(long)]
    pub token_stdin: bool,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Human-readable tables.
    #[default]
    Table,
    /// The API's JSON, for scripts.
    Json,
}

#[derive(Debug, Clone, Copy, Args)]
pub struct Out {
    /// `table` for people, `json` for scripts (the API's JSON).
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// List environments, most recently changed first.
    List {
        /// Only environments in this status.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(ENVIRONMENT_STATUSES))]
        status: Option<String>,
        /// Part of a name or short name.
        #[arg(long)]
        search: Option<String>,
        /// Follow the `next` cursors to the last page.
        #[arg(long)]
        all: bool,
        /// Environments per page (1 to 100).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
        limit: Option<u8>,
        /// Start after this `next` cursor (printed under a page that has more).
        #[arg(long, conflicts_with = "all")]
        after: Option<String>,
        #[command(flatten)]
        out: Out,
    },
    /// Show one environment with its spec.
    Show {
        id: String,
        #[command(flatten)]
        out: Out,
    },
}

pub const ENVIRONMENT_STATUSES: [&str; 10] = [
    "submitted",
    "approved",
    "rejected",
    "withdrawn",
    "provisioning",
    "ready",
    "failed",
    "changing",
    "decommissioning",
    "decommissioned",
];

pub const SIZES: [&str; 3] = ["small", "medium", "large"];

/// Following a request until it ends.
#[derive(Debug, Clone, Copy, Args)]
pub struct Wait {
    /// Follow the request until it is ready (exit 0), or failed, rejected or withdrawn (exit 3),
    /// printing each step's progress to standard error.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this long (exit 4): `90s`, `30m`, `2h`.
    #[arg(long, value_parser = parse_duration, default_value = "30m", requires = "wait")]
    pub timeout: Duration,
    /// How often to ask Berth while waiting.
    #[arg(long, value_parser = parse_duration, default_value = "2s", requires = "wait")]
    pub interval: Duration,
}

#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Ask for a new business unit (an admin approves its plan before anything is built).
    Create {
        /// The unit's name as people read it ("California charging stations").
        #[arg(long)]
        name: String,
        /// Its short name: lowercase letters, digits and dashes.
        #[arg(long)]
        slug: String,
        /// Who answers for the unit (an email address).
        #[arg(long)]
        owner: String,
        /// A blueprint the company publishes (e.g. `insight`).
        #[arg(long)]
        blueprint: String,
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(SIZES))]
        size: String,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        wait: Wait,
        #[command(flatten)]
        out: Out,
    },
    /// Ask for a change to a ready (or failed) environment; what is not given stays.
    Change {
        /// The environment's id.
        env_id: String,
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(SIZES))]
        size: Option<String>,
        /// An application setting the blueprint lets change, `app.key=value` (repeatable);
        /// `app.key=` returns it to the blueprint's default.
        #[arg(long = "set", value_name = "APP.KEY=VALUE", value_parser = parse_setting)]
        set: Vec<(String, String)>,
        /// A newer published version of the environment's blueprint.
        #[arg(long)]
        blueprint_version: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// A new owner contact (an email address).
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        wait: Wait,
        #[command(flatten)]
        out: Out,
    },
    /// Ask for an environment to be removed (another admin approves).
    Decommission {
        /// The environment's id.
        env_id: String,
        /// The environment's name, typed again.
        #[arg(long)]
        confirm: String,
        #[command(flatten)]
        wait: Wait,
        #[command(flatten)]
        out: Out,
    },
    /// Show a request (with --wait: and follow it until it ends).
    Show {
        id: String,
        #[command(flatten)]
        wait: Wait,
        #[command(flatten)]
        out: Out,
    },
    /// Show a request's current plan: status, hash and what it would do.
    Plan {
        id: String,
        #[command(flatten)]
        out: Out,
    },
    /// Approve a request's plan (admins; never one's own request).
    Approve {
        id: String,
        /// The hash of the plan reviewed; without it, the current plan is shown (on standard
        /// error) and its hash approved.
        #[arg(long)]
        plan_hash: Option<String>,
        #[arg(long)]
        note: Option<String>,
        /// Approve although the plan exceeds the cluster's capacity (needs --override-reason).
        #[arg(long, requires = "override_reason")]
        override_capacity: bool,
        #[arg(long, requires = "override_capacity")]
        override_reason: Option<String>,
        #[command(flatten)]
        wait: Wait,
        #[command(flatten)]
        out: Out,
    },
    /// Reject a request, with the reason the requester reads.
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        out: Out,
    },
    /// Withdraw one's own request while it awaits a decision.
    Withdraw {
        id: String,
        #[command(flatten)]
        out: Out,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Show a run and its steps.
    Show {
        run_id: String,
        #[command(flatten)]
        out: Out,
    },
    /// Retry a failed or cancelled run from where it stopped (operators).
    Retry {
        run_id: String,
        /// Why (recorded on the timeline).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        out: Out,
    },
    /// Cancel a run in progress (operators).
    Cancel {
        run_id: String,
        /// Why (recorded on the timeline).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        out: Out,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct History {
    #[command(subcommand)]
    pub export: Option<HistoryCommand>,
    /// The environment's id.
    #[arg(required = true)]
    pub env_id: Option<String>,
    #[command(flatten)]
    pub filter: HistoryFilter,
    /// Follow the `next` cursors to the last page.
    #[arg(long)]
    pub all: bool,
    /// Start after this event id (printed under a page that has more).
    #[arg(long, conflicts_with = "all")]
    pub after: Option<i64>,
    #[command(flatten)]
    pub out: Out,
}

#[derive(Debug, Clone, Args)]
pub struct HistoryFilter {
    /// A group (`requests`, `runs`, `steps`, `errors`), a prefix ending in `.`, or one kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// From this day (`YYYY-MM-DD`) or time (RFC 3339), inclusive.
    #[arg(long)]
    pub from: Option<String>,
    /// To this day (included) or time (RFC 3339, excluded).
    #[arg(long)]
    pub to: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Download an environment's whole (filtered) history as CSV or JSON (auditors, admins).
    Export {
        /// The environment's id.
        env_id: String,
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<std::path::PathBuf>,
        #[command(flatten)]
        filter: HistoryFilter,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
        }
    }
}

/// `500ms`, `90s`, `30m`, `2h`, or a number of seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like 90s, 30m or 2h"))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("{raw:?} is not a duration like 90s, 30m or 2h")),
    };
    if d.is_zero() {
        return Err("a duration must be more than zero".into());
    }
    Ok(d)
}

/// `app.key=value` into (`app.key`, `value`).
pub fn parse_setting(raw: &str) -> Result<(String, String), String> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| format!("{raw:?}: give a setting as app.key=value"))?;
    let key = key.trim();
    match key.split_once('.') {
        Some((app, name)) if !app.is_empty() && !name.is_empty() => {
            Ok((key.to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "{key:?}: a setting is named app.key (the app, a dot, the key)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn settings() {
        assert_eq!(
            parse_setting("dsm.replicas=3"),
            Ok(("dsm.replicas".into(), "3".into()))
        );
        assert_eq!(
            parse_setting("dsm.banner=a=b"),
            Ok(("dsm.banner".into(), "a=b".into()))
        );
        assert_eq!(
            parse_setting("dsm.replicas="),
            Ok(("dsm.replicas".into(), "".into()))
        );
        assert!(parse_setting("replicas=3").is_err());
        assert!(parse_setting("dsm.replicas").is_err());
        assert!(parse_setting(".x=1").is_err());
    }

    #[test]
    fn create_with_wait() {
        let cli = parse(&[
            "request",
            "create",
            "--name",
            "Trucking",
            "--slug",
            "trucking",
            "--owner",
            "ops@example.com",
            "--blueprint",
            "insight",
            "--size",
            "small",
            "--wait",
            "--timeout",
            "10m",
            "-o",
            "json",
        ])
        .unwrap();
        let Command::Request(RequestCommand::Create {
            name,
            size,
            wait,
            out,
            description,
            ..
        }) = cli.command
        else {
            panic!("not a create: {cli:?}");
        };
        assert_eq!(name, "Trucking");
        assert_eq!(size, "small");
        assert_eq!(description, None);
        assert!(wait.wait);
        assert_eq!(wait.timeout, Duration::from_secs(600));
        assert_eq!(wait.interval, Duration::from_secs(2));
        assert_eq!(out.output, Format::Json);
    }

    #[test]
    fn refusals() {
        // A size Berth does not offer, a status that does not exist, --timeout without --wait.
        let base = [
            "request",
            "create",
            "--name",
            "T",
            "--slug",
            "t",
            "--owner",
            "o@e.com",
            "--blueprint",
            "insight",
        ];
        let mut huge = base.to_vec();
        huge.extend(["--size", "huge"]);
        assert!(parse(&huge).is_err());
        let mut no_wait = base.to_vec();
        no_wait.extend(["--size", "small", "--timeout", "5m"]);
        assert!(parse(&no_wait).is_err());
        assert!(parse(&["env", "list", "--status", "sleeping"]).is_err());
        assert!(parse(&["env", "list", "--limit", "0"]).is_err());
        assert!(parse(&["request", "reject", "R"]).is_err(), "a reason");
        assert!(
            parse(&["request", "decommission", "E"]).is_err(),
            "--confirm"
        );
        assert!(parse(&["request", "approve", "R", "--override-capacity"]).is_err());
        assert!(parse(&["history"]).is_err(), "an environment");
        assert!(parse(&["completions", "tcsh"]).is_err());
    }

    #[test]
    fn change_settings_repeat() {
        let cli = parse(&[
            "request",
            "change",
            "E",
            "--set",
            "dsm.replicas=3",
            "--set",
            "influxdb.retention=30d",
            "--size",
            "large",
        ])
        .unwrap();
        let Command::Request(RequestCommand::Change { set, size, .. }) = cli.command else {
            panic!("not a change");
        };
        assert_eq!(
            set,
            vec![
                ("dsm.replicas".to_owned(), "3".to_owned()),
                ("influxdb.retention".to_owned(), "30d".to_owned())
            ]
        );
        assert_eq!(size.as_deref(), Some("large"));
    }

    #[test]
    fn history_pages_and_export() {
        let cli = parse(&["history", "E", "--kind", "runs", "--all"]).unwrap();
        let Command::History(h) = cli.command else {
            panic!()
        };
        assert_eq!(h.env_id.as_deref(), Some("E"));
        assert!(h.export.is_none());
        assert_eq!(h.filter.kind.as_deref(), Some("runs"));
        assert!(h.all);

        let cli = parse(&[
            "history", "export", "E", "--format", "csv", "--output", "out.csv",
        ])
        .unwrap();
        let Command::History(h) = cli.command else {
            panic!()
        };
        let Some(HistoryCommand::Export {
            env_id,
            format,
            output,
            ..
        }) = h.export
        else {
            panic!("not an export")
        };
        assert_eq!(env_id, "E");
        assert_eq!(format, ExportFormat::Csv);
        assert_eq!(output, Some("out.csv".into()));
        assert!(parse(&["history", "export", "E"]).is_err(), "a format");
    }
}
