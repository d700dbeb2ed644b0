//! The auditors' history: filters, keyset pages in both directions, exports from one snapshot,
//! and the latest state of every environment. Each test gets a fresh database.

mod common;
use common::person;

use berth_db::{
    audit, companies,
    history::{self, Cursor, HistoryFilter},
    lists::{self, ListCursor, ListFilter},
    requests, PgPool,
};
use berth_domain::{Decision, EnvironmentStatus, RequestSpec, RequestStatus, Role};
use serde_json::json;
use time::{macros::datetime, OffsetDateTime};
use uuid::Uuid;

fn spec(name: &str) -> RequestSpec {
    RequestSpec::parse(name, "", "", "owner@seaview.example", "insight", "small").unwrap()
}

/// Appends an event at a given time (the log accepts inserts; only updates and deletes are
/// refused).
async fn event_at(pool: &PgPool, env: Uuid, kind: &str, at: OffsetDateTime, n: i64) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO events (environment_id, kind, details, created_at)
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(env)
    .bind(kind)
    .bind(json!({ "n": n }))
    .bind(at)
    .fetch_one(pool)
    .await
    .unwrap()
}

struct World {
    company: Uuid,
    env: Uuid,
    other_env: Uuid,
}

/// An environment with its `request.submitted` event plus 30 engine events, one a day from
/// 2026-11-01 in a repeating run/step/error pattern, and a second environment with its own.
async fn world(pool: &PgPool) -> World {
    let company = companies::ensure(pool, "SeaView", "seaview")
        .await
        .unwrap()
        .id;
    let maria = person(pool, "maria", &[Role::Manager]).await;
    let env = requests::submit(pool, company, &maria, &spec("Trucking"))
        .await
        .unwrap()
        .environment_id;
    let other_env = requests::submit(pool, company, &maria, &spec("Charging"))
        .await
        .unwrap()
        .environment_id;
    let kinds = [
        "run.started",
        "step.started",
        "step.retrying",
        "step.failed",
        "run.failed",
    ];
    for i in 0..30 {
        let at = datetime!(2026-11-01 12:00 UTC) + time::Duration::days(i);
        event_at(pool, env, kinds[i as usize % kinds.len()], at, i).await;
        event_at(pool, other_env, "run.started", at, i).await;
    }
    World {
        company,
        env,
        other_env,
    }
}

fn ids(page: &history::Page) -> Vec<i64> {
    page.events.iter().map(|e| e.id).collect()
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn pages_forward_and_back_cover_every_event_once_in_order(pool: PgPool) {
    let w = world(&pool).await;
    let all = berth_db::events::for_environment(&pool, w.env)
        .await
        .unwrap();
    assert_eq!(all.len(), 31);
    let expected: Vec<i64> = all.iter().map(|e| e.id).collect();
    let f = HistoryFilter::default();

    // Forward from the start, seven at a time.
    let mut seen = Vec::new();
    let mut cursor = Cursor::First;
    let mut pages = Vec::new();
    loop {
        let p = history::page(&pool, w.env, &f, cursor, 7).await.unwrap();
        assert!(p.events.iter().all(|e| e.environment_id == w.env));
        seen.extend(ids(&p));
        if pages.is_empty() {
            assert_eq!(p.previous, None, "the first page has no previous page");
        } else {
            assert!(p.previous.is_some(), "later pages link back");
        }
        pages.push(ids(&p));
        match p.next {
            Some(c) => cursor = c,
            None => break,
        }
    }
    assert_eq!(seen, expected);
    assert_eq!(pages.len(), 5, "31 events at 7 a page");
    assert_eq!(pages.last().unwrap().len(), 3);

    // Back from the newest page: the same pages, in reverse.
    let mut back = Vec::new();
    let mut cursor = Cursor::Latest;
    loop {
        let p = history::page(&pool, w.env, &f, cursor, 7).await.unwrap();
        back.push(ids(&p));
        match p.previous {
            Some(c) => cursor = c,
            None => break,
        }
    }
    back.reverse();
    // Keyset pages from the end are aligned to the end: the same events, oldest first.
    assert_eq!(back.concat(), expected);
    assert_eq!(back.last().unwrap().len(), 7);
    assert_eq!(back.first().unwrap().len(), 3);

    // "Previous" from the second page returns the first page exactly.
    let second = history::page(&pool, w.env, &f, Cursor::After(pages[0][6]), 7)
        .await
        .unwrap();
    assert_eq!(ids(&second), pages[1]);
    let first = history::page(&pool, w.env, &f, second.previous.unwrap(), 7)
        .await
        .unwrap();
    assert_eq!(ids(&first), pages[0]);
    assert!(first.previous.is_none(), "nothing before the first event");
    assert!(first.next.is_some());

    // Past the end: an empty page that links back to the start.
    let past = history::page(&pool, w.env, &f, Cursor::After(i64::MAX - 1), 7)
        .await
        .unwrap();
    assert!(past.events.is_empty());
    assert_eq!(past.next, None);
    assert_eq!(past.previous, Some(Cursor::First));
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn filters_by_group_exact_kind_and_time(pool: PgPool) {
    let w = world(&pool).await;
    let page = |f: HistoryFilter| {
        let pool = pool.clone();
        async move {
            history::page(&pool, w.env, &f, Cursor::First, 500)
                .await
                .unwrap()
                .events
        }
    };
    let kinds = |t: &str| HistoryFilter {
        kinds: HistoryFilter::kinds_for_type(t).unwrap(),
        ..HistoryFilter::default()
    };

    let requests = page(kinds("requests")).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].kind, "request.submitted");
    assert_eq!(requests[0].actor_name.as_deref(), Some("User maria"));

    let runs = page(kinds("runs")).await;
    assert_eq!(runs.len(), 12, "6 run.started and 6 run.failed");
    assert!(runs.iter().all(|e| e.kind.starts_with("run.")));
    let steps = page(kinds("steps")).await;
    assert_eq!(steps.len(), 18);
    let errors = page(kinds("errors")).await;
    assert_eq!(
        errors.len(),
        18,
        "step.retrying, step.failed and run.failed"
    );
    assert!(errors
        .iter()
        .all(|e| ["step.retrying", "step.failed", "run.failed"].contains(&e.kind.as_str())));
    let exact = page(kinds("step.failed")).await;
    assert_eq!(exact.len(), 6);
    assert!(exact.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    // A prefix is not a substring match, and `_` is not a wildcard.
    assert!(page(kinds("step.")).await.len() == 18);
    assert!(page(kinds("step_")).await.is_empty());
    assert!(page(kinds("tep.failed")).await.is_empty());

    // From inclusive, to exclusive: 2026-11-05 .. 2026-11-10 is five days.
    let window = page(HistoryFilter {
        from: Some(datetime!(2026-11-05 00:00 UTC)),
        to: Some(datetime!(2026-11-10 00:00 UTC)),
        ..HistoryFilter::default()
    })
    .await;
    assert_eq!(window.len(), 5);
    assert_eq!(window[0].details, json!({ "n": 4 }));
    // Type and time together.
    let both = page(HistoryFilter {
        kinds: vec!["run.failed".into()],
        from: Some(datetime!(2026-11-10 00:00 UTC)),
        to: None,
    })
    .await;
    assert_eq!(
        both.iter()
            .map(|e| e.details["n"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![9, 14, 19, 24, 29]
    );

    // Pages respect the filter too: 18 step events at 5 a page.
    let f = kinds("steps");
    let mut n = 0;
    let mut cursor = Cursor::First;
    loop {
        let p = history::page(&pool, w.env, &f, cursor, 5).await.unwrap();
        n += p.events.len();
        match p.next {
            Some(c) => cursor = c,
            None => break,
        }
    }
    assert_eq!(n, 18);
}

#[test]
fn type_selection_is_validated() {
    assert_eq!(
        HistoryFilter::kinds_for_type("").unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        HistoryFilter::kinds_for_type("runs").unwrap(),
        vec!["run.", "decommissioned"]
    );
    assert_eq!(
        HistoryFilter::kinds_for_type("request.approved").unwrap(),
        vec!["request.approved"]
    );
    assert!(HistoryFilter::kinds_for_type("run.%").is_err());
    assert!(HistoryFilter::kinds_for_type("Run.started").is_err());
    assert!(HistoryFilter::kinds_for_type("' OR 1=1 --").is_err());
    assert!(HistoryFilter::kinds_for_type(&"a".repeat(65)).is_err());
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn exports_read_every_matching_event_from_one_snapshot(pool: PgPool) {
    let w = world(&pool).await;
    let mut export = history::export(&pool, w.env, HistoryFilter::default(), 4)
        .await
        .unwrap();
    let first = export.next_batch().await.unwrap().unwrap();
    assert_eq!(first.len(), 4);
    // Appended after the export started: not part of it (one snapshot).
    let late = event_at(&pool, w.env, "run.started", OffsetDateTime::now_utc(), 99).await;
    let mut got: Vec<i64> = first.iter().map(|e| e.id).collect();
    let mut batches = 1;
    while let Some(batch) = export.next_batch().await.unwrap() {
        assert!(batch.len() <= 4);
        got.extend(batch.iter().map(|e| e.id));
        batches += 1;
    }
    assert_eq!(batches, 8, "31 events in batches of 4");
    assert!(
        export.next_batch().await.unwrap().is_none(),
        "stays finished"
    );
    assert!(!got.contains(&late));
    let expected: Vec<i64> = berth_db::events::for_environment(&pool, w.env)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .filter(|id| *id != late)
        .collect();
    assert_eq!(got, expected);

    // A filtered export; an exact multiple of the batch size ends cleanly.
    let mut export = history::export(
        &pool,
        w.other_env,
        HistoryFilter {
            kinds: vec!["run.".into()],
            ..HistoryFilter::default()
        },
        10,
    )
    .await
    .unwrap();
    let mut n = 0;
    while let Some(batch) = export.next_batch().await.unwrap() {
        assert!(batch.iter().all(|e| e.kind == "run.started"));
        n += batch.len();
    }
    assert_eq!(n, 30);

    let json = history::event_json(&got_event(&pool, w.env).await);
    assert_eq!(json["kind"], "request.submitted");
    assert_eq!(json["actor"], "User maria");
    assert!(json["at"].as_str().unwrap().ends_with('Z'), "{json}");
}

async fn got_event(pool: &PgPool, env: Uuid) -> berth_db::events::Event {
    history::page(pool, env, &HistoryFilter::default(), Cursor::First, 1)
        .await
        .unwrap()
        .events
        .remove(0)
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn latest_states_list_every_environment_with_its_latest_request_and_events(pool: PgPool) {
    let w = world(&pool).await;
    let ada = person(&pool, "ada", &[Role::Admin]).await;
    let maria = person(&pool, "maria", &[Role::Manager]).await;
    // A third environment, rejected, and a fourth, withdrawn: both still listed.
    let rejected = requests::submit(&pool, w.company, &maria, &spec("Rejected unit"))
        .await
        .unwrap();
    requests::decide(
        &pool,
        rejected.request_id,
        &ada,
        Decision::parse("reject", "Not this quarter.").unwrap(),
    )
    .await
    .unwrap();
    let withdrawn = requests::submit(&pool, w.company, &maria, &spec("Withdrawn unit"))
        .await
        .unwrap();
    requests::withdraw(&pool, withdrawn.request_id, &maria)
        .await
        .unwrap();

    let all = lists::latest_states(
        &pool,
        w.company,
        &ListFilter::default(),
        ListCursor::First,
        50,
    )
    .await
    .unwrap();
    assert_eq!(all.total, 4);
    assert_eq!(all.page.rows.len(), 4);
    // Most recently changed first.
    assert_eq!(all.page.rows[0].name, "Withdrawn unit");
    assert_eq!(all.page.rows[0].status, EnvironmentStatus::Withdrawn);
    let r = all
        .page
        .rows
        .iter()
        .find(|r| r.name == "Rejected unit")
        .unwrap();
    assert_eq!(r.status, EnvironmentStatus::Rejected);
    assert_eq!(r.request_kind, Some(berth_domain::RequestKind::Create));
    assert_eq!(r.request_status, Some(RequestStatus::Rejected));
    assert_eq!(r.requested_by.as_deref(), Some("User maria"));
    assert_eq!(r.decided_by.as_deref(), Some("User ada"));
    assert_eq!(r.last_event_kind.as_deref(), Some("request.rejected"));
    assert_eq!(r.event_count, 2);
    assert_eq!(r.run_status, None);
    let t = all.page.rows.iter().find(|r| r.id == w.env).unwrap();
    assert_eq!(t.event_count, 31);
    assert_eq!(t.last_event_kind.as_deref(), Some("run.failed"));
    assert_eq!(t.last_event_at, Some(datetime!(2026-11-30 12:00 UTC)));
    assert_eq!(t.decided_by, None);

    let only = |status: Option<EnvironmentStatus>, text: &str| ListFilter {
        status,
        text: (!text.is_empty()).then(|| text.to_owned()),
    };
    let rejected_only = lists::latest_states(
        &pool,
        w.company,
        &only(Some(EnvironmentStatus::Rejected), ""),
        ListCursor::First,
        50,
    )
    .await
    .unwrap();
    assert_eq!(rejected_only.total, 1);
    assert_eq!(rejected_only.page.rows[0].name, "Rejected unit");
    let text = lists::latest_states(&pool, w.company, &only(None, "UNIT"), ListCursor::First, 50)
        .await
        .unwrap();
    assert_eq!(text.total, 2);
    let none = lists::latest_states(
        &pool,
        w.company,
        &only(Some(EnvironmentStatus::Ready), "unit"),
        ListCursor::First,
        50,
    )
    .await
    .unwrap();
    assert_eq!((none.total, none.page.rows.len()), (0, 0));

    // Pages of the list: the same order, no overlap.
    let p1 = lists::latest_states(
        &pool,
        w.company,
        &ListFilter::default(),
        ListCursor::First,
        3,
    )
    .await
    .unwrap();
    let next = p1.page.next.expect("a second page");
    let p2 = lists::latest_states(&pool, w.company, &ListFilter::default(), next, 3)
        .await
        .unwrap();
    assert_eq!(
        (p1.total, p1.page.rows.len(), p2.page.rows.len()),
        (4, 3, 1)
    );
    let names: Vec<_> = p1
        .page
        .rows
        .iter()
        .chain(&p2.page.rows)
        .map(|r| r.id)
        .collect();
    assert_eq!(
        names,
        all.page.rows.iter().map(|r| r.id).collect::<Vec<_>>()
    );
    assert!(p2.page.next.is_none() && p2.page.previous.is_some());
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn exports_are_recorded_in_the_audit_trail(pool: PgPool) {
    let audrey = person(&pool, "audrey", &[Role::Auditor]).await;
    audit::record(
        &pool,
        audit::AuthEventKind::HistoryExport,
        audit::AuthEvent {
            user_id: Some(audrey.user_id),
            reason: Some("history.csv"),
            ..audit::AuthEvent::default()
        },
    )
    .await
    .unwrap();
    let recent = audit::recent(&pool, audit::AuthEventKind::HistoryExport, 5)
        .await
        .unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].0, Some(audrey.user_id));
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_environment_list_comes_in_pages(pool: PgPool) {
    let w = world(&pool).await;
    let maria = person(&pool, "maria", &[Role::Manager]).await;
    requests::submit(&pool, w.company, &maria, &spec("Third unit"))
        .await
        .unwrap();
    let all = requests::list_environments(&pool, w.company, None)
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    let p1 = lists::environments(
        &pool,
        w.company,
        &ListFilter::default(),
        ListCursor::First,
        2,
    )
    .await
    .unwrap();
    let p2 = lists::environments(
        &pool,
        w.company,
        &ListFilter::default(),
        p1.next.unwrap(),
        2,
    )
    .await
    .unwrap();
    let paged: Vec<_> = p1.rows.iter().chain(&p2.rows).map(|e| e.id).collect();
    assert_eq!(paged, all.iter().map(|e| e.id).collect::<Vec<_>>());
    assert_eq!((p1.rows.len(), p2.rows.len()), (2, 1));
}
