//! Requests from the command line: create, plan, approve and wait, and how a wait ends.

use berth_db::PgPool;
use berth_domain::Role;
use berth_runs::{testing::TestExecutor, StepError};
use serde_json::Value;

use super::support::*;

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn two_service_accounts_create_plan_approve_and_see_it_ready(pool: PgPool) {
    let app = spawn(pool, |_| {}).await;
    let (requester, approver) = app.requester_and_approver().await;
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
    let (requester, approver) = app.requester_and_approver().await;
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
