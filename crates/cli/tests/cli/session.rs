//! Signing in and out, a rate-limited read, and shell completions.

use std::process::Stdio;

use berth_db::PgPool;
use berth_domain::Role;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::support::*;

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
