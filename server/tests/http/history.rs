//! The auditors' history: exports, and the timeline's filters and pages without JavaScript.

use berth_db::PgPool;
use reqwest::{Client, StatusCode};
use uuid::Uuid;

use crate::helpers::{browser, csv_rows, link, spawn};

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn history_exports_are_for_auditors_and_admins(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;
    let request = app.submit(&maria, "Trucking").await;
    let ada = app.signed_in("ada").await;
    let res = app
        .decide(&ada, request, "approve", "Approved for Q1.")
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let env = app.environment_of(request).await;
    let url =
        |ext: &str, query: &str| format!("{}/environments/{env}/history.{ext}{query}", app.base);
    let get = |c: &Client, u: String| {
        let c = c.clone();
        async move { c.get(u).send().await.unwrap() }
    };

    // Anonymous: 401; a manager and a person without a role: 403.
    assert_eq!(
        get(&browser(), url("csv", "")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&maria, url("csv", "")).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&maria, url("json", "")).await.status(),
        StatusCode::FORBIDDEN
    );
    let nora = app.signed_in("nora").await;
    assert_eq!(
        get(&nora, url("json", "")).await.status(),
        StatusCode::FORBIDDEN
    );

    // The auditor gets the whole history as a CSV attachment.
    let audrey = app.signed_in("audrey").await;
    let res = get(&audrey, url("csv", "")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"berth-trucking-history-")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let rows = csv_rows(&res.text().await.unwrap());
    assert_eq!(
        rows[0],
        ["id", "at", "kind", "actor", "request_id", "details"]
    );
    // Submitted, its plan queued and computed, approved (with exactly what was approved: the
    // plan's hash), and the run the approval enqueued.
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert_eq!(rows[1][2], "request.submitted");
    assert_eq!(rows[1][3], "Maria Manager");
    assert_eq!(rows[1][4], request.to_string());
    assert_eq!(rows[2][2], "plan.requested");
    assert_eq!(rows[3][2], "plan.ready");
    let ready: serde_json::Value = serde_json::from_str(&rows[3][5]).unwrap();
    assert_eq!(rows[4][2], "request.approved");
    assert_eq!(rows[4][3], "Ada Admin");
    let details: serde_json::Value = serde_json::from_str(&rows[4][5]).unwrap();
    assert_eq!(details["note"], "Approved for Q1.");
    assert_eq!(details["spec"]["slug"], "trucking");
    assert_eq!(details["plan_hash"], ready["hash"]);
    assert_eq!(rows[5][2], "run.enqueued");
    assert!(rows[1][0].parse::<i64>().unwrap() < rows[2][0].parse::<i64>().unwrap());
    time::OffsetDateTime::parse(&rows[1][1], &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 time");

    // JSON, filtered by type; admins may export too.
    let res = get(&ada, url("json", "?kind=request.approved")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    let events: Vec<serde_json::Value> = res.json().await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["kind"], "request.approved");
    assert_eq!(events[0]["actor"], "Ada Admin");
    assert_eq!(events[0]["details"]["note"], "Approved for Q1.");
    // A window that holds nothing is an empty, valid document.
    let res = get(&audrey, url("json", "?from=2000-01-01&to=2000-01-02")).await;
    assert_eq!(res.json::<Vec<serde_json::Value>>().await.unwrap().len(), 0);
    let res = get(&audrey, url("json", "?kind=requests&from=2000-01-01")).await;
    assert_eq!(res.json::<Vec<serde_json::Value>>().await.unwrap().len(), 2);

    // Bad filters are a clear 422; unknown environments a 404.
    let res = get(&audrey, url("csv", "?kind=run.%25")).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("not an event type"));
    let res = get(&audrey, url("csv", "?from=yesterday")).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = get(
        &audrey,
        format!("{}/environments/{}/history.csv", app.base, Uuid::nil()),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Every export is in the audit trail, and so is the refused one.
    use berth_db::audit::{recent, AuthEventKind};
    let exports = recent(&app.pool, AuthEventKind::HistoryExport, 20)
        .await
        .unwrap();
    let audrey_id = app.user_id("audrey").await;
    assert!(exports
        .iter()
        .any(|(user, _, reason)| *user == Some(audrey_id)
            && reason
                .as_deref()
                .is_some_and(|r| r.contains("history.csv of trucking"))));
    let denied = recent(&app.pool, AuthEventKind::AccessDenied, 20)
        .await
        .unwrap();
    let maria_id = app.user_id("maria").await;
    assert!(denied
        .iter()
        .any(|(user, _, reason)| *user == Some(maria_id)
            && reason
                .as_deref()
                .is_some_and(|r| r.contains("ExportHistory"))));

    // The auditors' list as CSV.
    let res = get(
        &audrey,
        format!("{}/audit/environments.csv?status=approved", app.base),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let rows = csv_rows(&res.text().await.unwrap());
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1][1], "Trucking");
    assert_eq!(rows[1][9], "Maria Manager");
    assert_eq!(rows[1][10], "Ada Admin");
    assert_eq!(
        rows[1][15], "5",
        "event count: submitted, plan requested and ready, approved, run.enqueued"
    );
    let res = get(&maria, format!("{}/audit/environments.csv", app.base)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_timeline_filters_and_pages_without_javascript(pool: PgPool) {
    let app = spawn(pool, true).await;
    let (maria, _, env) = app.maria_requests("Trucking").await;
    // 118 engine events after the submission and its plan request: 120 in all, three pages of
    // 50.
    sqlx::query(
        "INSERT INTO events (environment_id, kind, details)
         SELECT $1, CASE WHEN n % 10 = 0 THEN 'step.failed' ELSE 'step.started' END,
                jsonb_build_object('step', 'chart:influxdb', 'attempt', n)
         FROM generate_series(1, 118) n",
    )
    .bind(env)
    .execute(&app.pool)
    .await
    .unwrap();
    let page = |c: &Client, query: String| {
        let c = c.clone();
        let url = format!("{}/environments/{env}{query}", app.base);
        async move {
            let res = c.get(&url).send().await.unwrap();
            let status = res.status();
            let body = res.text().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{url}: {body}");
            body
        }
    };
    let count = |html: &str| html.matches("data-kind=\"").count();

    let first = page(&maria, String::new()).await;
    assert_eq!(count(&first), 50);
    assert!(first.contains("data-kind=\"request.submitted\""));
    assert!(link(&first, "prev").is_none());
    assert!(
        !first.contains("Export CSV"),
        "managers are not offered exports"
    );
    let second = page(&maria, link(&first, "next").unwrap()).await;
    assert_eq!(count(&second), 50);
    let third = page(&maria, link(&second, "next").unwrap()).await;
    assert_eq!(count(&third), 20);
    assert!(link(&third, "next").is_none());
    let back = page(&maria, link(&third, "prev").unwrap()).await;
    assert_eq!(count(&back), 50);
    assert_eq!(
        link(&back, "next"),
        link(&second, "next"),
        "earlier from the third page is the second page"
    );

    // Filtered: the eleven failures, with the filter kept in the export links.
    let audrey = app.signed_in("audrey").await;
    let errors = page(&audrey, "?kind=errors".into()).await;
    assert_eq!(count(&errors), 11);
    assert_eq!(errors.matches("data-kind=\"step.failed\"").count(), 11);
    assert!(
        errors.contains("step chart:influxdb, attempt 10"),
        "engine details summarized"
    );
    assert!(errors.contains(&format!(
        "href=\"/environments/{env}/history.csv?kind=errors\""
    )));
    assert!(errors.contains("rel=\"external\""));
    let none = page(&audrey, "?from=2000-01-01&to=2000-01-31".into()).await;
    assert_eq!(count(&none), 0);
    assert!(none.contains("No events match these filters."));
    let bad = app
        .page(&maria, &format!("/environments/{env}?kind=nope!"))
        .await;
    assert!(bad.contains("not an event type"));

    // The layout offers the auditors' view to auditors only (its pages: lists.rs).
    let audit = page(&audrey, String::new()).await;
    assert!(
        audit.contains("href=\"/audit\""),
        "auditors get the nav link"
    );
    assert!(
        !first.contains("href=\"/audit\""),
        "no nav link for managers"
    );
}

/// The environment page serves one value per piece of data it shows: the signed-in person, the
/// environment, its releases, its change form, its provisioning and its timeline page. Made
/// inside the page's Transition, the sections' resources were fetched again each time the
/// server called its children (three times), and a browser hydrating from the first fetch found
/// the HTML of the last: while a run moved on in between, hydration failed.
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_environment_page_loads_each_part_once(pool: PgPool) {
    let app = spawn(pool, true).await;
    let (maria, _, env) = app.maria_requests("Trucking").await;
    let res = maria
        .get(format!("{}/environments/{env}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert_eq!(
        html.matches("__RESOLVED_RESOURCES[").count(),
        6,
        "one serialized value per resource"
    );
}

/// Downloads carry the session, so another site may not start one (a link or an embed sent
/// cross-site); and an export that cannot be recorded in the audit trail is not sent.
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn exports_come_from_our_pages_and_are_always_recorded(pool: PgPool) {
    let app = spawn(pool, true).await;
    let (_, _, env) = app.maria_requests("Trucking").await;
    let audrey = app.signed_in("audrey").await;
    let urls = [
        format!("{}/environments/{env}/history.csv", app.base),
        format!("{}/environments/{env}/history.json", app.base),
        format!("{}/audit/environments.csv", app.base),
    ];
    for url in &urls {
        for (site, expected) in [
            ("cross-site", StatusCode::FORBIDDEN),
            ("same-site", StatusCode::FORBIDDEN),
            ("same-origin", StatusCode::OK),
            ("none", StatusCode::OK),
        ] {
            let res = audrey
                .get(url)
                .header("sec-fetch-site", site)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), expected, "{url} from {site}");
        }
    }

    // The audit trail refuses the record (as a full disk or a lost grant would): no export.
    sqlx::query(
        "ALTER TABLE auth_events ADD CONSTRAINT exports_refused \
         CHECK (kind <> 'history_export') NOT VALID",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    for url in &urls {
        let res = audrey.get(url).send().await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{url} was sent unrecorded"
        );
        let body = res.text().await.unwrap();
        assert!(!body.contains("Trucking"), "{url}: {body}");
    }
}

/// The hash-chained history from outside: every export carries the chain head, auditors
/// verify through the API and `server verify-audit`, and a row changed behind Berth's back
/// (by the database owner, triggers off) is found at that row.
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn auditors_verify_the_chained_history_and_find_a_changed_row(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;
    let request = app.submit(&maria, "Trucking").await;
    let ada = app.signed_in("ada").await;
    assert!(app
        .decide(&ada, request, "approve", "")
        .await
        .status()
        .is_success());
    let env = app.environment_of(request).await;

    let audrey = app.signed_in("audrey").await;
    let res = audrey
        .get(format!("{}/environments/{env}/history.csv", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let head = res.headers()["berth-audit-head"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        head.starts_with("seq=") && head.contains("; sha256="),
        "{head}"
    );

    let (_, token) = crate::api::token(&app, "audrey", &["read"]).await;
    let verify = || async {
        let res = browser()
            .get(format!("{}/api/v1/audit/verify", app.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<serde_json::Value>().await.unwrap()
    };
    let report = verify().await;
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["head"], head.as_str(), "{report}");
    assert!(report["summary"]
        .as_str()
        .unwrap()
        .starts_with("intact up to event"));
    let (code, out) = verify_audit(&app, Some(&head)).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("intact up to event") && out.contains("still in the chain"),
        "{out}"
    );

    // The owner edits the first event of the environment, append-only triggers off.
    let first: i64 = sqlx::query_scalar("SELECT min(id) FROM events WHERE environment_id = $1")
        .bind(env)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for sql in [
        "ALTER TABLE events DISABLE TRIGGER USER",
        "UPDATE events SET details = '{\"note\": \"never happened\"}' WHERE id = $1",
        "ALTER TABLE events ENABLE TRIGGER USER",
    ] {
        sqlx::query(sql)
            .bind(first)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    let report = verify().await;
    assert_eq!(report["intact"], false, "{report}");
    assert_eq!(report["broken_at_event_id"], first, "{report}");
    assert_eq!(report["reason"], "hash_mismatch", "{report}");
    let (code, out) = verify_audit(&app, None).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("BROKEN at event {first}")), "{out}");
}

/// Runs `server verify-audit [kept head]` against the test's database; exit code and output.
async fn verify_audit(app: &crate::helpers::TestApp, kept: Option<&str>) -> (Option<i32>, String) {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let mut url = reqwest::Url::parse(&std::env::var("DATABASE_URL").unwrap()).unwrap();
    url.set_path(&db);
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_server"));
    cmd.arg("verify-audit")
        .env_clear()
        .env("LEPTOS_OUTPUT_NAME", "berth")
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", url.as_str())
        .env("BERTH_DEV_LOGIN", "true")
        .env("BERTH_WORKER", "false")
        .env("RUST_LOG", "warn");
    if let Some(kept) = kept {
        cmd.arg(kept);
    }
    let out = cmd.output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}
