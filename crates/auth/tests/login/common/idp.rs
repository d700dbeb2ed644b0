//! The local provider: `node tools/test-idp/provider.mjs` on a free port, one per test.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use berth_auth::OidcSettings;

use super::{CLIENT_ID, CLIENT_SECRET, POST_LOGOUT_URI, REDIRECT_URI, ROLE_MAP};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn idp_dir() -> PathBuf {
    repo_root().join("tools/test-idp")
}

/// Node and the provider's packages, installed once per test run. `Err` means "skip" locally;
/// with `CI=true` a missing tool fails the test instead.
fn prerequisites() -> Result<(), String> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            for tool in ["node", "npm"] {
                let found = Command::new(tool)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !found {
                    return Err(format!(
                        "`{tool}` is not installed (Debian: apt-get install nodejs npm)"
                    ));
                }
            }
            if !idp_dir().join("node_modules/oidc-provider").is_dir() {
                let out = Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                    .current_dir(idp_dir())
                    .output()
                    .map_err(|e| format!("cannot run npm ci: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "npm ci in tools/test-idp failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
            Ok(())
        })
        .clone()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "berth-auth-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Clone, Debug)]
pub struct IdpOptions {
    pub port: Option<u16>,
    pub key_file: Option<PathBuf>,
    pub groups_in_id_token: bool,
    /// Serve these users instead of tools/test-idp/users.json (the provider reads the file
    /// again when it changes).
    pub users_file: Option<PathBuf>,
    /// Issue refresh tokens (the provider's default).
    pub refresh_tokens: bool,
}

impl Default for IdpOptions {
    fn default() -> Self {
        Self {
            port: None,
            key_file: None,
            groups_in_id_token: true,
            users_file: None,
            refresh_tokens: true,
        }
    }
}

/// A provider that has not answered discovery after this long is killed and started again, up
/// to three starts in all: in full test runs one sometimes stopped before creating its signing
/// key (sleeping in a futex, says `process_state`) and never answered. Why is not known yet.
const START_WITHIN: Duration = Duration::from_secs(20);
const START_ATTEMPTS: u32 = 3;

/// A running `node tools/test-idp/provider.mjs`, killed on drop.
pub struct TestIdp {
    child: Option<Child>,
    pub port: u16,
    pub issuer: String,
    pub key_file: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

impl TestIdp {
    /// Starts a provider and waits for its discovery document. `None` when node/npm are
    /// missing outside CI (a notice is printed); panics when they are missing under `CI=true`.
    pub async fn start(opts: IdpOptions) -> Option<Self> {
        if let Err(why) = prerequisites() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("the local OpenID provider cannot run: {why}");
            }
            // Written to stderr directly: the harness captures eprintln! of passing tests.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: the local OpenID provider cannot run here: {why}"
            );
            return None;
        }
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let dir = TempDir::new();
            let port = opts.port.unwrap_or_else(free_port);
            let issuer = format!("http://127.0.0.1:{port}");
            let key_file = opts
                .key_file
                .clone()
                .unwrap_or_else(|| dir.0.join("jwks.json"));
            let log = dir.0.join("provider.log");
            let mut command = Command::new("node");
            if let Some(users) = &opts.users_file {
                command.env("IDP_USERS_FILE", users);
            }
            let child = command
                .arg(idp_dir().join("provider.mjs"))
                .env("IDP_PORT", port.to_string())
                .env("IDP_ISSUER", &issuer)
                .env("IDP_CLIENT_ID", CLIENT_ID)
                .env("IDP_CLIENT_SECRET", CLIENT_SECRET)
                .env("IDP_REDIRECT_URIS", REDIRECT_URI)
                .env("IDP_POST_LOGOUT_REDIRECT_URIS", POST_LOGOUT_URI)
                .env("IDP_KEY_FILE", &key_file)
                .env(
                    "IDP_ID_TOKEN_GROUPS",
                    if opts.groups_in_id_token { "1" } else { "0" },
                )
                .env(
                    "IDP_REFRESH_TOKENS",
                    if opts.refresh_tokens { "1" } else { "0" },
                )
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).expect("log file"))
                .stderr(std::fs::File::create(dir.0.join("provider.err")).expect("log file"))
                .spawn()
                .expect("spawn node tools/test-idp/provider.mjs");
            let mut idp = TestIdp {
                child: Some(child),
                port,
                issuer,
                key_file,
                log,
                _dir: dir,
            };
            match idp.wait_ready(START_WITHIN).await {
                Ok(()) => return Some(idp),
                // Dropped: killed and its scratch directory removed; a fresh one starts.
                Err(why) => failures.push(why),
            }
        }
        panic!(
            "the provider never answered in {START_ATTEMPTS} starts:\n{}",
            failures.join("\n---\n")
        );
    }

    /// Polls discovery every 50 ms for up to `within`; `Err` with the provider's process state
    /// and log when it never answers; panics when it exits.
    async fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let http = reqwest::Client::new();
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer);
        let pid = self.child.as_ref().map(Child::id).unwrap_or_default();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "the provider exited during start-up ({status}):\n{}",
                    read_logs(&self.log)
                );
            }
            let answer = http
                .get(&discovery)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "no answer at {discovery} within {within:?} ({}):\n{}",
                    process_state(pid),
                    read_logs(&self.log)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn logs(&self) -> String {
        read_logs(&self.log)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Settings for Berth's client at this provider.
    pub fn settings(&self) -> OidcSettings {
        self.settings_with(&[])
    }

    pub fn settings_with(&self, overrides: &[(&str, &str)]) -> OidcSettings {
        use berth_auth::settings::env;
        let mut values = vec![
            (env::ISSUER, self.issuer.clone()),
            (env::CLIENT_ID, CLIENT_ID.to_owned()),
            (env::CLIENT_SECRET, CLIENT_SECRET.to_owned()),
            (env::REDIRECT_URL, REDIRECT_URI.to_owned()),
            (env::SCOPES, "openid profile email groups".to_owned()),
            (env::ROLE_MAP, ROLE_MAP.to_owned()),
            (env::POST_LOGOUT_REDIRECT_URL, POST_LOGOUT_URI.to_owned()),
        ];
        for (k, v) in overrides {
            values.retain(|(name, _)| name != k);
            values.push((*k, (*v).to_owned()));
        }
        OidcSettings::from_lookup(|name| {
            values
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
        .expect("valid test settings")
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The provider's stdout log and its stderr next to it.
/// What the kernel says process `pid` is doing (its state and the call it waits in), for a
/// provider that neither answers nor exits.
fn process_state(pid: u32) -> String {
    let read = |f: &str| std::fs::read_to_string(format!("/proc/{pid}/{f}")).unwrap_or_default();
    let state = read("status")
        .lines()
        .find(|l| l.starts_with("State:"))
        .unwrap_or("State: unknown")
        .to_owned();
    format!("pid {pid}, {state}, waiting in {:?}", read("wchan"))
}

fn read_logs(log: &Path) -> String {
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    format!("{}{}", read(log), read(&log.with_file_name("provider.err")))
}
