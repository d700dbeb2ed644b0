//! Test harness: the real local provider (tools/test-idp) on a free port, and a small
//! cookie-keeping HTTP "browser" that fills its login form.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use berth_auth::{CallbackParams, OidcSettings, Url};

pub const CLIENT_ID: &str = "berth-test";
pub const CLIENT_SECRET: &str = "berth-test-secret";
/// Nothing listens there: the tests read the redirect instead of following it.
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/auth/callback";
pub const POST_LOGOUT_URI: &str = "http://127.0.0.1:9/";
pub const ROLE_MAP: &str = "berth-managers=manager;berth-admins=admin;berth-auditors=auditor";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn idp_dir() -> PathBuf {
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
}

impl Default for IdpOptions {
    fn default() -> Self {
        Self {
            port: None,
            key_file: None,
            groups_in_id_token: true,
        }
    }
}

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
        let dir = TempDir::new();
        let port = opts.port.unwrap_or_else(free_port);
        let issuer = format!("http://127.0.0.1:{port}");
        let key_file = opts
            .key_file
            .clone()
            .unwrap_or_else(|| dir.0.join("jwks.json"));
        let log = dir.0.join("provider.log");
        let child = Command::new("node")
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
        idp.wait_ready().await;
        Some(idp)
    }

    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer);
        for _ in 0..300 {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "the provider exited during start-up ({status}):\n{}",
                        self.logs()
                    );
                }
            }
            if http
                .get(&discovery)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the provider did not answer discovery within 15 s:\n{}",
            self.logs()
        );
    }

    pub fn logs(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "{}{}",
            read(&self.log),
            read(&self.log.with_file_name("provider.err"))
        )
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

/// A browser without JavaScript: keeps cookies, follows nothing by itself.
pub struct Browser {
    http: reqwest::Client,
}

/// Where a trip through the provider ended.
#[derive(Debug)]
pub enum Outcome {
    /// The provider redirected to Berth's callback with these parameters.
    Callback(CallbackParams),
    /// The provider showed its login form again (status, page).
    LoginRejected(u16, String),
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("browser client"),
        }
    }

    /// GET `url` and follow redirects until Berth's callback or a page (status, final URL, body).
    pub async fn navigate(&self, url: Url) -> Result<(u16, Url, String), CallbackParams> {
        self.follow(self.http.get(url.clone()).send().await.expect("GET"), url)
            .await
    }

    async fn follow(
        &self,
        mut resp: reqwest::Response,
        mut url: Url,
    ) -> Result<(u16, Url, String), CallbackParams> {
        for _ in 0..10 {
            if !resp.status().is_redirection() {
                let status = resp.status().as_u16();
                return Ok((status, url, resp.text().await.expect("body")));
            }
            let location = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .expect("redirect with Location");
            url = url.join(location).expect("valid Location");
            if url.as_str().starts_with(REDIRECT_URI) {
                return Err(callback_params(&url));
            }
            resp = self.http.get(url.clone()).send().await.expect("GET");
        }
        panic!("too many redirects, last at {url}");
    }

    /// Opens the authorization URL, expects the provider's login form, and submits it.
    pub async fn sign_in(&self, authorize_url: &Url, username: &str, password: &str) -> Outcome {
        let (status, page_url, html) = match self.navigate(authorize_url.clone()).await {
            Ok(page) => page,
            Err(params) => return Outcome::Callback(params),
        };
        assert_eq!(status, 200, "login page expected at {page_url}:\n{html}");
        for text in [
            "<label for=\"username\">Username</label>",
            "<label for=\"password\">Password</label>",
            ">Sign in</button>",
        ] {
            assert!(html.contains(text), "login form lacks {text}:\n{html}");
        }
        self.submit_login(&page_url, username, password).await
    }

    /// Posts the login form of the interaction page at `page_url`.
    pub async fn submit_login(&self, page_url: &Url, username: &str, password: &str) -> Outcome {
        let action = page_url
            .join(&format!("{}/login", page_url.path()))
            .expect("action URL");
        let resp = self
            .http
            .post(action.clone())
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .expect("POST login");
        match self.follow(resp, action).await {
            Err(params) => Outcome::Callback(params),
            Ok((status, _, html)) => Outcome::LoginRejected(status, html),
        }
    }

    /// Presses "Cancel" on the login page at `page_url`.
    pub async fn cancel(&self, page_url: &Url) -> CallbackParams {
        let action = page_url
            .join(&format!("{}/abort", page_url.path()))
            .expect("action URL");
        let resp = self
            .http
            .post(action.clone())
            .send()
            .await
            .expect("POST abort");
        self.follow(resp, action)
            .await
            .expect_err("redirect to the callback")
    }

    /// Posts a form of a page (the provider's logout confirmation).
    pub async fn post_form(&self, url: Url, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(url).form(fields).send().await.expect("POST")
    }
}

pub fn callback_params(url: &Url) -> CallbackParams {
    let get = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    CallbackParams {
        code: get("code"),
        state: get("state"),
        iss: get("iss"),
        error: get("error"),
        error_description: get("error_description"),
    }
}

pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The demo users of tools/test-idp/users.json.
pub const PASSWORDS: &[(&str, &str)] = &[
    ("maria", "maria-demo"),
    ("mark", "mark-demo"),
    ("ada", "ada-demo"),
    ("alan", "alan-demo"),
    ("audrey", "audrey-demo"),
    ("sam", "sam-demo"),
    ("nora", "nora-demo"),
];

pub fn password(user: &str) -> &'static str {
    PASSWORDS
        .iter()
        .find(|(u, _)| *u == user)
        .map(|(_, p)| *p)
        .expect("demo user")
}
