//! A running Berth with its workers, and the CLI run against it as a subprocess.

use std::{collections::HashMap, process::Stdio, time::Duration};

use berth_db::PgPool;
use berth_domain::{
    token::{NewToken, TokenKind},
    Role,
};
use berth_runs::{
    testing::{config, plan_worker, TestExecutor, TestPlanner},
    Engine,
};
use leptos::prelude::LeptosOptions;
use serde_json::Value;
use server::{config::Settings, startup::Application};
use tokio::{io::AsyncBufReadExt, sync::mpsc};

/// A running Berth, and a home folder for the CLI's credentials.
pub struct Berth {
    pub base: String,
    pub pool: PgPool,
    pub home: tempfile::TempDir,
}

/// Starts Berth as `server/tests/http/helpers.rs` does (demo users seeded, worker off).
pub async fn spawn(pool: PgPool, tweak: impl FnOnce(&mut Settings)) -> Berth {
    let vars: HashMap<&str, String> = HashMap::from([
        (
            "DATABASE_URL",
            "postgres://unused@127.0.0.1/unused".to_string(),
        ),
        ("BERTH_DEV_LOGIN", "true".to_string()),
        ("BERTH_SEED_DEMO", "true".to_string()),
        // The test runs the plan worker and the engine itself.
        ("BERTH_WORKER", "false".to_string()),
        (
            "BERTH_TEMPLATES",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../templates").to_string(),
        ),
    ]);
    let addr = "127.0.0.1:0".parse().unwrap();
    let mut settings = Settings::from_lookup(addr, |k| vars.get(k).cloned()).unwrap();
    tweak(&mut settings);
    let options = LeptosOptions::builder()
        .output_name("berth")
        .site_root(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../server/tests/http/site"
        ))
        .site_addr(addr)
        .build();
    let app = Application::build_with_pool(settings, options, pool.clone())
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    Berth {
        base,
        pool,
        home: tempfile::tempdir().unwrap(),
    }
}

impl Berth {
    /// A service account with `roles`, made by the admin ada, and its token `ci` with `scopes`.
    pub async fn service_account(&self, name: &str, roles: &[Role], scopes: &[&str]) -> String {
        use secrecy::ExposeSecret;
        let ada: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE subject = 'ada'")
            .fetch_one(&self.pool)
            .await
            .unwrap();
        let account = berth_db::tokens::create_service_account(&self.pool, name, roles, ada)
            .await
            .unwrap();
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let new = NewToken::parse("ci", "30", &scopes, roles, 90).unwrap();
        berth_db::tokens::issue(&self.pool, account.id, ada, TokenKind::ServiceAccount, &new)
            .await
            .unwrap()
            .secret
            .expose_secret()
            .to_owned()
    }

    /// The tokens of a manager's service account (read, request) and an admin's (read,
    /// decide, operate).
    pub async fn requester_and_approver(&self) -> (String, String) {
        let requester = self
            .service_account("Requester", &[Role::Manager], &["read", "request"])
            .await;
        let approver = self
            .service_account("Approver", &[Role::Admin], &["read", "decide", "operate"])
            .await;
        (requester, approver)
    }

    /// The CLI with `token` (none: whatever `berth login` stored) and its own config folder.
    pub fn berth(&self, token: Option<&str>, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.args(args)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env_remove("BERTH_URL")
            .env_remove("BERTH_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(t) = token {
            cmd.env("BERTH_URL", &self.base).env("BERTH_TOKEN", t);
        }
        cmd
    }

    /// Runs the CLI to its end.
    pub async fn run(&self, token: Option<&str>, args: &[&str]) -> Done {
        let out = tokio::time::timeout(Duration::from_secs(60), self.berth(token, args).output())
            .await
            .unwrap_or_else(|_| panic!("berth {args:?} did not end"))
            .unwrap();
        Done {
            code: out.status.code().expect("exited"),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Runs the CLI and expects success.
    pub async fn ok(&self, token: Option<&str>, args: &[&str]) -> Done {
        let done = self.run(token, args).await;
        assert_eq!(done.code, 0, "berth {args:?}:\n{done}");
        done
    }

    /// Runs the CLI and reads its JSON output.
    pub async fn json(&self, token: &str, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        let done = self.ok(Some(token), &args).await;
        serde_json::from_str(&done.stdout).unwrap_or_else(|e| panic!("{e}: {done}"))
    }

    /// Starts the CLI and reads its standard error line by line while it runs.
    pub fn start(&self, token: &str, args: &[&str]) -> Running {
        let mut child = self.berth(Some(token), args).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Runs the plan worker and an engine with `executor` until the returned guard is dropped.
    pub fn workers(&self, executor: TestExecutor) -> Workers {
        let pool = self.pool.clone();
        Workers(tokio::spawn(async move {
            let planner = plan_worker(&pool, TestPlanner::default());
            let engine = Engine::with_config(pool.clone(), executor, config());
            loop {
                planner.drain().await.unwrap();
                engine.drain().await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }))
    }
}

pub struct Workers(pub tokio::task::JoinHandle<()>);

impl Drop for Workers {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub struct Done {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub struct Running {
    pub child: tokio::process::Child,
    pub lines: mpsc::UnboundedReceiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    /// The next line of standard error containing `needle` (waits up to 30 s).
    pub async fn line_with(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("no {needle:?} in time; so far:\n{}", self.seen.join("\n"))
                })
                .unwrap_or_else(|| panic!("ended without {needle:?}:\n{}", self.seen.join("\n")));
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Waits for the end (up to 60 s).
    pub async fn finish(mut self) -> Done {
        let out = tokio::time::timeout(Duration::from_secs(60), self.child.wait_with_output())
            .await
            .expect("the CLI ends")
            .unwrap();
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
        }
        Done {
            code: out.status.code().expect("exited"),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: self.seen.join("\n") + "\n",
        }
    }
}

/// The second word of a line ("Request <id> is …", "Run <id> is …").
pub fn id_in(line: &str) -> String {
    line.split_whitespace().nth(1).unwrap().to_owned()
}

pub const CREATE: [&str; 12] = [
    "request",
    "create",
    "--name",
    "Trucking",
    "--slug",
    "trucking",
    "--owner",
    "ops@seaview.example",
    "--blueprint",
    "insight",
    "--size",
    "small",
];

/// `create --wait` as the requester; the request's id once it awaits approval.
pub async fn create_and_wait(app: &Berth, requester: &str) -> (Running, String) {
    let mut args = CREATE.to_vec();
    args.extend(["--wait", "--interval", "100ms", "--timeout", "60s"]);
    let mut waiting = app.start(requester, &args);
    let line = waiting.line_with("an admin must approve").await;
    (waiting, id_in(&line))
}

/// Reads the request's plan until it is computed (the workers run beside).
pub async fn ready_plan(app: &Berth, approver: &str, id: &str) -> Value {
    for _ in 0..100 {
        let plan = app.json(approver, &["request", "plan", id]).await;
        if plan["status"] == "ready" {
            return plan;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the plan of {id} was never computed");
}
