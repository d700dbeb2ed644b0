//! The `berth` binary against the real Berth: the app on port 0 over a fresh database (its
//! worker off), the plan worker and a scripted engine running in this process, and the CLI as a
//! subprocess with service accounts' tokens.

use std::{collections::HashMap, process::Stdio, time::Duration};

use berth_db::PgPool;
use berth_domain::{
    token::{NewToken, TokenKind},
    Role,
};
use berth_runs::{
    testing::{config, plan_worker, TestExecutor, TestPlanner},
    Engine, StepError,
};
use leptos::prelude::LeptosOptions;
use serde_json::Value;
use server::{config::Settings, startup::Application};
use tokio::{io::AsyncBufReadExt, io::AsyncWriteExt, sync::mpsc};

/// A running Berth, and a home folder for the CLI's credentials.
struct Berth {
    base: String,
    pool: PgPool,
    home: tempfile::TempDir,
}

/// Starts Berth as `server/tests/http/helpers.rs` does (demo users seeded, worker off).
async fn spawn(pool: PgPool, tweak: impl FnOnce(&mut Settings)) -> Berth {
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
    async fn service_account(&self, name: &str, roles: &[Role], scopes: &[&str]) -> String {
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

    /// The CLI with `token` (none: whatever `berth login` stored) and its own config folder.
    fn berth(&self, token: Option<&str>, args: &[&str]) -> tokio::process::Command {
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
    async fn run(&self, token: Option<&str>, args: &[&str]) -> Done {
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
    async fn ok(&self, token: Option<&str>, args: &[&str]) -> Done {
        let done = self.run(token, args).await;
        assert_eq!(done.code, 0, "berth {args:?}:\n{done}");
        done
    }

    /// Runs the CLI and reads its JSON output.
    async fn json(&self, token: &str, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        let done = self.ok(Some(token), &args).await;
        serde_json::from_str(&done.stdout).unwrap_or_else(|e| panic!("{e}: {done}"))
    }

    /// Starts the CLI and reads its standard error line by line while it runs.
    fn start(&self, token: &str, args: &[&str]) -> Running {
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
    fn workers(&self, executor: TestExecutor) -> Workers {
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

struct Workers(tokio::task::JoinHandle<()>);

impl Drop for Workers {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Done {
    code: i32,
    stdout: String,
    stderr: String,
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

struct Running {
    child: tokio::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// The next line of standard error containing `needle` (waits up to 30 s).
    async fn line_with(&mut self, needle: &str) -> String {
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
    async fn finish(mut self) -> Done {
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
fn id_in(line: &str) -> String {
    line.split_whitespace().nth(1).unwrap().to_owned()
}

const CREATE: [&str; 12] = [
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
async fn create_and_wait(app: &Berth, requester: &str) -> (Running, String) {
    let mut args = CREATE.to_vec();
    args.extend(["--wait", "--interval", "100ms", "--timeout", "60s"]);
    let mut waiting = app.start(requester, &args);
    let line = waiting.line_with("an admin must approve").await;
    (waiting, id_in(&line))
}

/// Reads the request's plan until it is computed (the workers run beside).
async fn ready_plan(app: &Berth, approver: &str, id: &str) -> Value {
    for _ in 0..100 {
        let plan = app.json(approver, &["request", "plan", id]).await;
        if plan["status"] == "ready" {
            return plan;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the plan of {id} was never computed");
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn two_service_accounts_create_plan_approve_and_see_it_ready(pool: PgPool) {
    let app = spawn(pool, |_| {}).await;
    let requester = app
        .service_account("Requester", &[Role::Manager], &["read", "request"])
        .await;
    let approver = app
        .service_account("Approver", &[Role::Admin], &["read", "decide", "operate"])
        .await;
    let _workers = app.workers(TestExecutor::new());

    let who = app.ok(Some(&requester), &["whoami"]).await;
    assert!(who.stdout.contains("Requester"), "{who}");
    assert!(who.stdout.contains("manager"), "{who}");
    assert!(who.stdout.contains("read, request"), "{who}");

    // Bad input is refused field by field, and nothing is created.
    let mut bad = CREATE.to_vec();
    bad[5] = "Not A Slug";
    let refused = app.run(Some(&requester), &bad).await;
    assert_eq!(refused.code, 1, "{refused}");
    assert!(refused.stderr.contains("422"), "{refused}");
    assert!(refused.stderr.contains("\n  slug: "), "{refused}");

    let (waiting, id) = create_and_wait(&app, &requester).await;

    // Separation of duties: the requester's token cannot decide.
    let own = app
        .run(Some(&requester), &["request", "approve", &id])
        .await;
    assert_eq!(own.code, 1, "{own}");
    assert!(own.stderr.contains("403"), "{own}");

    let plan = ready_plan(&app, &approver, &id).await;
    let hash = plan["hash"].as_str().unwrap().to_owned();
    let shown = app.ok(Some(&approver), &["request", "plan", &id]).await;
    assert!(shown.stdout.contains(&hash), "{shown}");
    assert!(
        shown.stdout.contains("Charts (1, in install order):"),
        "{shown}"
    );
    assert!(shown.stdout.contains("  dsm: stable/dsm 2.7.0"), "{shown}");

    // Approving without a hash shows the current plan and approves exactly it.
    let approved = app
        .ok(
            Some(&approver),
            &["request", "approve", &id, "--note", "looks right"],
        )
        .await;
    assert!(
        approved
            .stderr
            .contains(&format!("Approving the plan above ({hash}).")),
        "{approved}"
    );
    assert!(approved.stdout.contains("Approver"), "{approved}");
    assert!(approved.stdout.contains("looks right"), "{approved}");

    let done = waiting.finish().await;
    assert_eq!(done.code, 0, "{done}");
    assert!(
        done.stderr.contains(&format!("Request {id} is ready.")),
        "{done}"
    );
    assert!(done.stderr.contains("chart:dsm succeeded"), "{done}");
    assert!(done.stdout.contains("Trucking"), "{done}");
    let run = id_in(
        done.stderr
            .lines()
            .find(|l| l.starts_with("Run "))
            .expect("the run is named"),
    );

    // The environment, its run and its timeline, as the requester and the approver read them.
    let request = app.json(&requester, &["request", "show", &id]).await;
    assert_eq!(request["status"], "ready");
    assert_eq!(request["decided_by"], "Approver");
    let env = request["environment_id"].as_str().unwrap().to_owned();
    let list = app
        .json(&requester, &["env", "list", "--status", "ready"])
        .await;
    assert_eq!(list["items"][0]["id"], env.as_str(), "{list}");
    let none = app
        .ok(Some(&requester), &["env", "list", "--status", "submitted"])
        .await;
    assert!(!none.stdout.contains("Trucking"), "{none}");
    let shown = app.ok(Some(&requester), &["env", "show", &env]).await;
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.starts_with("Status:") && l.ends_with("ready")),
        "{shown}"
    );
    let run_view = app.json(&requester, &["run", "show", &run]).await;
    assert_eq!(run_view["status"], "succeeded");
    assert_eq!(run_view["request_id"], id.as_str());

    let history = app
        .ok(Some(&requester), &["history", &env, "--kind", "requests"])
        .await;
    let submitted = history
        .stdout
        .lines()
        .find(|l| l.contains("request.submitted"))
        .unwrap_or_else(|| panic!("{history}"));
    assert!(submitted.contains("Requester"), "{history}");
    assert!(submitted.contains(" ci "), "the token is named: {history}");
    assert!(history.stdout.contains("request.approved"), "{history}");
    assert!(!history.stdout.contains("step."), "filtered: {history}");

    // The export streams to a file (CSV) or standard output (JSON); auditors' and admins' only.
    let file = app.home.path().join("trucking.csv");
    let file_arg = file.to_str().unwrap();
    app.ok(
        Some(&approver),
        &[
            "history", "export", &env, "--format", "csv", "--output", file_arg,
        ],
    )
    .await;
    let csv = std::fs::read_to_string(&file).unwrap();
    assert!(csv.lines().count() > 5, "{csv}");
    assert!(csv.contains("request.approved"), "{csv}");
    let json = app
        .ok(
            Some(&approver),
            &["history", "export", &env, "--format", "json"],
        )
        .await;
    let events: Value = serde_json::from_str(&json.stdout).unwrap();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default())
        .collect();
    assert!(kinds.contains(&"request.ready"), "{kinds:?}");
    let refused = app
        .run(
            Some(&requester),
            &["history", "export", &env, "--format", "csv"],
        )
        .await;
    assert_eq!(refused.code, 1, "{refused}");
    assert!(refused.stderr.contains("403"), "{refused}");
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_failing_run_makes_wait_exit_non_zero(pool: PgPool) {
    let app = spawn(pool, |_| {}).await;
    let requester = app
        .service_account("Requester", &[Role::Manager], &["read", "request"])
        .await;
    let approver = app
        .service_account("Approver", &[Role::Admin], &["read", "decide", "operate"])
        .await;
    let _workers = app.workers(TestExecutor::new().script(
        "chart:influxdb",
        vec![Err(StepError::Permanent(
            "Error: INSTALLATION FAILED: chart not found".into(),
        ))],
    ));

    let (waiting, id) = create_and_wait(&app, &requester).await;
    let plan = ready_plan(&app, &approver, &id).await;
    let hash = plan["hash"].as_str().unwrap();
    app.ok(
        Some(&approver),
        &["request", "approve", &id, "--plan-hash", hash],
    )
    .await;

    let done = waiting.finish().await;
    assert_eq!(done.code, 3, "{done}");
    assert!(
        done.stderr
            .contains("chart:influxdb failed: Error: INSTALLATION FAILED: chart not found"),
        "{done}"
    );
    assert!(
        done.stderr.contains(&format!("Request {id} ended failed.")),
        "{done}"
    );
    let run = id_in(
        done.stderr
            .lines()
            .find(|l| l.starts_with("Run "))
            .expect("the run is named"),
    );
    assert_eq!(
        app.json(&approver, &["run", "show", &run]).await["status"],
        "failed"
    );

    // Only an operator retries; then following the request again ends ready.
    let refused = app
        .run(
            Some(&requester),
            &["run", "retry", &run, "--reason", "again"],
        )
        .await;
    assert_eq!(refused.code, 1, "{refused}");
    assert!(refused.stderr.contains("403"), "{refused}");
    app.ok(
        Some(&approver),
        &["run", "retry", &run, "--reason", "chart repository fixed"],
    )
    .await;
    let again = app
        .ok(
            Some(&requester),
            &[
                "request",
                "show",
                &id,
                "--wait",
                "--interval",
                "100ms",
                "--timeout",
                "60s",
            ],
        )
        .await;
    assert!(
        again.stderr.contains(&format!("Request {id} is ready.")),
        "{again}"
    );
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_request_nobody_approves_times_out_and_a_rejected_one_fails(pool: PgPool) {
    let app = spawn(pool, |_| {}).await;
    let requester = app
        .service_account("Requester", &[Role::Manager], &["read", "request"])
        .await;
    let approver = app
        .service_account("Approver", &[Role::Admin], &["read", "decide"])
        .await;
    let made = app.json(&requester, &CREATE).await;
    let id = made["id"].as_str().unwrap();
    assert_eq!(made["status"], "submitted");
    let timed_out = app
        .run(
            Some(&requester),
            &[
                "request",
                "show",
                id,
                "--wait",
                "--interval",
                "100ms",
                "--timeout",
                "1s",
            ],
        )
        .await;
    assert_eq!(timed_out.code, 4, "{timed_out}");
    assert!(
        timed_out.stderr.contains("an admin must approve"),
        "{timed_out}"
    );

    app.ok(
        Some(&approver),
        &["request", "reject", id, "--reason", "not this quarter"],
    )
    .await;
    let rejected = app
        .run(Some(&requester), &["request", "show", id, "--wait"])
        .await;
    assert_eq!(rejected.code, 3, "{rejected}");
    assert!(
        rejected
            .stderr
            .contains("was rejected by Approver: not this quarter"),
        "{rejected}"
    );
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn login_stores_the_token_privately_and_logout_forgets_it(pool: PgPool) {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn(pool, |_| {}).await;
    let token = app
        .service_account("Requester", &[Role::Manager], &["read"])
        .await;
    let login = |stdin: String| {
        let mut cmd = app.berth(
            None,
            &[
                "login",
                "--url",
                &format!("{}/api/v1/", app.base),
                "--token-stdin",
            ],
        );
        cmd.stdin(Stdio::piped());
        async move {
            let mut child = cmd.spawn().unwrap();
            let mut input = child.stdin.take().unwrap();
            input.write_all(stdin.as_bytes()).await.unwrap();
            drop(input);
            let out = child.wait_with_output().await.unwrap();
            Done {
                code: out.status.code().unwrap(),
                stdout: String::from_utf8(out.stdout).unwrap(),
                stderr: String::from_utf8(out.stderr).unwrap(),
            }
        }
    };

    let done = login(format!("{token}\n")).await;
    assert_eq!(done.code, 0, "{done}");
    let file = app.home.path().join("config/berth/credentials.json");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the credentials file is its owner's only");
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(stored["url"], app.base.as_str());
    assert_eq!(stored["token"], token.as_str());

    // Later commands use the file; BERTH_TOKEN wins over it.
    let who = app.ok(None, &["whoami"]).await;
    assert!(who.stdout.contains("Requester"), "{who}");
    let unknown = format!("berth_pat_{}", "0".repeat(64));
    let mut cmd = app.berth(None, &["whoami"]);
    cmd.env("BERTH_TOKEN", &unknown);
    let out = cmd.output().await.unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(stderr.contains("berth login"), "{stderr}");

    // A token Berth refuses is not stored; the one stored stays.
    let refused = login(format!("{unknown}\n")).await;
    assert_eq!(refused.code, 1, "{refused}");
    assert!(refused.stderr.contains("nothing was stored"), "{refused}");
    let refused = login("not-a-token\n".into()).await;
    assert_eq!(refused.code, 1, "{refused}");
    assert!(refused.stderr.contains("berth_pat_"), "{refused}");
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(stored["token"], token.as_str());

    app.ok(None, &["logout"]).await;
    assert!(!file.exists());
    let gone = app.run(None, &["whoami"]).await;
    assert_eq!(gone.code, 1, "{gone}");
    assert!(
        gone.stderr.contains("not logged in: run `berth login`"),
        "{gone}"
    );
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_rate_limited_read_waits_and_is_sent_again(pool: PgPool) {
    let app = spawn(pool, |s| {
        s.api_rate_per_minute = std::num::NonZeroU32::new(60).unwrap();
        s.api_burst = std::num::NonZeroU32::new(1).unwrap();
    })
    .await;
    let token = app
        .service_account("Requester", &[Role::Manager], &["read"])
        .await;
    app.ok(Some(&token), &["whoami"]).await;
    let second = app.ok(Some(&token), &["whoami"]).await;
    assert!(
        second
            .stderr
            .contains("Rate limited by Berth; retrying in 1 s."),
        "{second}"
    );
    assert!(second.stdout.contains("Requester"), "{second}");
}

#[tokio::test]
async fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["completions", shell])
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains("decommission"), "{shell}: {script}");
    }
}
