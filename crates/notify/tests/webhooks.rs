//! Webhooks end to end: a real receiver (axum on port 0), the real delivery worker (two of them
//! sharing the outbox) and a real database, with events written by the real request and engine
//! code. The receiver checks every signature as a customer would.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{extract::State, http::HeaderMap, http::StatusCode, routing::post, Router};
use berth_backoff::Backoff;
use berth_db::sealing::{Sealer, SealingKey};
use berth_db::{webhooks, PgPool};
use berth_domain::{Decision, EventType, WebhookUrl};
use berth_notify::{signing, WebhookSettings, WebhookWorker};
use berth_runs::testing;
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::sync::watch;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    id: String,
    timestamp: i64,
    signature: String,
    body: Vec<u8>,
    /// What the receiver answered (None: it kept the sender waiting past its timeout).
    answered: Option<u16>,
}

/// How the receiver treats the first arrival of a message of a given type.
#[derive(Clone, Copy)]
enum First {
    Fail,
    Stall,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    first: Arc<HashMap<&'static str, First>>,
    always_fail: bool,
}

async fn receive(
    State(r): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let event_type = serde_json::from_slice::<Value>(&body).unwrap()["type"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut got = Received {
        path: uri.path().to_owned(),
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
        signature: header("webhook-signature"),
        body: body.to_vec(),
        answered: None,
    };
    let first = !r
        .got
        .lock()
        .unwrap()
        .iter()
        .any(|g| g.id == got.id && g.path == got.path);
    let plan = if r.always_fail {
        Some(First::Fail)
    } else {
        first
            .then(|| r.first.get(event_type.as_str()).copied())
            .flatten()
    };
    match plan {
        Some(First::Stall) => {
            r.got.lock().unwrap().push(got);
            // Far past the worker's timeout: the worker gives up and tries again later.
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::NO_CONTENT
        }
        Some(First::Fail) => {
            got.answered = Some(500);
            r.got.lock().unwrap().push(got);
            StatusCode::INTERNAL_SERVER_ERROR
        }
        None => {
            got.answered = Some(204);
            r.got.lock().unwrap().push(got);
            StatusCode::NO_CONTENT
        }
    }
}

async fn start_receiver(r: Receiver) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/{*path}", post(receive)).with_state(r);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn settings(allow_private: bool, max_attempts: u32) -> WebhookSettings {
    WebhookSettings {
        allow_private,
        timeout: Duration::from_millis(500),
        retry: Backoff::doubling(Duration::from_millis(50), Duration::from_millis(200)),
        max_attempts,
        poll: Duration::from_millis(20),
        public_url: "http://berth.test".into(),
        sealer: Some(sealer()),
    }
}

/// The workers' sealing key: endpoints registered with it are sealed at rest, the others plain.
fn sealer() -> Sealer {
    let key = SealingKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
    Sealer::new(key, None)
}

async fn register(
    pool: &PgPool,
    sealer: Option<&Sealer>,
    admin: uuid::Uuid,
    url: &str,
    types: &[EventType],
) -> (uuid::Uuid, Vec<u8>) {
    let created = webhooks::create(
        pool,
        sealer,
        admin,
        &webhooks::NewEndpoint {
            url: WebhookUrl::parse(url).unwrap(),
            description: "test receiver".into(),
            event_types: types.to_vec(),
        },
    )
    .await
    .unwrap();
    let secret = created.secret.expose_secret().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (
        created.endpoint.id,
        signing::key_from_secret(&secret).unwrap(),
    )
}

/// Starts `n` workers; dropping the sender stops them.
fn start_workers(pool: &PgPool, s: WebhookSettings, n: usize) -> watch::Sender<bool> {
    let (stop, stopped) = watch::channel(false);
    for _ in 0..n {
        let worker = WebhookWorker::new(pool.clone(), s.clone()).unwrap();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            worker
                .run_until(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        });
    }
    stop
}

async fn statuses(pool: &PgPool, endpoint: uuid::Uuid) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT m.event_type, d.status FROM webhook_deliveries d
         JOIN webhook_messages m ON m.event_id = d.event_id
         WHERE d.endpoint_id = $1 ORDER BY d.event_id",
    )
    .bind(endpoint)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn deliveries_are_signed_retried_after_a_500_and_a_timeout_and_never_doubled(pool: PgPool) {
    let receiver = Receiver {
        first: Arc::new(HashMap::from([
            ("request.submitted", First::Fail),
            ("request.decided", First::Stall),
        ])),
        ..Receiver::default()
    };
    let base = start_receiver(receiver.clone()).await;
    let company = testing::seed_company(&pool, "seaview", "SeaView").await;
    // /all's secret is sealed at rest, /ready's is stored plain: each signs with its own key.
    let (all, key) = register(
        &pool,
        Some(&sealer()),
        company.admin,
        &format!("{base}/all"),
        &EventType::ALL,
    )
    .await;
    let (ready_only, ready_key) = register(
        &pool,
        None,
        company.admin,
        &format!("{base}/ready"),
        &[EventType::EnvironmentReady],
    )
    .await;
    // Two workers share the outbox: a claim is one worker's.
    let stop = start_workers(&pool, settings(true, 5), 2);

    // The real path: a submission, an approval, the provisioning run to the end.
    let env = testing::submitted_env(&pool, &company, "trucking", "Trucking").await;
    berth_db::requests::decide(
        &pool,
        env.request_id,
        &testing::actor(&company, true),
        Decision::Approve { note: None },
    )
    .await
    .unwrap();
    testing::enqueue(
        &pool,
        &env,
        &company,
        &testing::insight(),
        &testing::quick_retry(),
    )
    .await;
    berth_runs::Engine::with_config(
        pool.clone(),
        testing::TestExecutor::new(),
        testing::config(),
    )
    .drain()
    .await
    .unwrap();

    let want = [
        ("request.submitted", "succeeded"),
        ("request.decided", "succeeded"),
        ("run.started", "succeeded"),
        ("environment.ready", "succeeded"),
    ];
    berth_testkit::until(
        "every delivery succeeded",
        400,
        Duration::from_millis(25),
        || {
            let pool = pool.clone();
            async move {
                statuses(&pool, all).await
                    == want.map(|(t, s)| (t.to_owned(), s.to_owned())).to_vec()
                    && statuses(&pool, ready_only).await.len() == 1
                    && statuses(&pool, ready_only).await[0].1 == "succeeded"
            }
        },
    )
    .await;
    // More rounds of both workers: nothing is sent again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stop.send(true);

    let got = receiver.got.lock().unwrap().clone();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for r in &got {
        let key = if r.path == "/ready" { &ready_key } else { &key };
        assert!(
            signing::verify(key, &r.id, r.timestamp, &r.body, &r.signature),
            "signature of {r:?}"
        );
        assert!((now - r.timestamp).abs() < 60, "a current timestamp");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.id, format!("evt_{}", body["data"]["event_id"]), "{body}");
        assert_eq!(body["data"]["environment"]["slug"], "trucking");
        assert_eq!(
            body["data"]["environment"]["url"],
            format!("http://berth.test/environments/{}", env.environment_id)
        );
    }
    // Per message: every attempt carries the same id and body; exactly one was answered 2xx.
    let mut by_id: HashMap<(String, String), Vec<&Received>> = HashMap::new();
    for r in &got {
        by_id
            .entry((r.path.clone(), r.id.clone()))
            .or_default()
            .push(r);
    }
    let kinds = |path: &str| {
        let mut v: Vec<(String, usize, usize)> = by_id
            .iter()
            .filter(|((p, _), _)| p == path)
            .map(|(_, rs)| {
                let body: Value = serde_json::from_slice(&rs[0].body).unwrap();
                assert!(
                    rs.iter().all(|r| r.body == rs[0].body),
                    "same body every attempt"
                );
                (
                    body["type"].as_str().unwrap().to_owned(),
                    rs.len(),
                    rs.iter().filter(|r| r.answered == Some(204)).count(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        kinds("/all"),
        vec![
            ("environment.ready".into(), 1, 1),
            ("request.decided".into(), 2, 1),
            ("request.submitted".into(), 2, 1),
            ("run.started".into(), 1, 1),
        ]
    );
    assert_eq!(kinds("/ready"), vec![("environment.ready".into(), 1, 1)]);
    let decided = got
        .iter()
        .find(|r| r.answered == Some(204) && r.body.windows(15).any(|w| w == b"request.decided"))
        .unwrap();
    let decided: Value = serde_json::from_slice(&decided.body).unwrap();
    assert_eq!(decided["data"]["decision"], "approved");

    // The delivery log: the failed attempts with their status or error, then the success.
    // (type, attempt, status, error, a next attempt is due)
    type Line = (String, i32, Option<i32>, Option<String>, bool);
    let log: Vec<Line> = sqlx::query_as(
        "SELECT m.event_type, a.attempt, a.status_code, a.error, a.next_attempt_at IS NOT NULL
         FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
         JOIN webhook_messages m ON m.event_id = d.event_id
         WHERE d.endpoint_id = $1 AND m.event_type LIKE 'request.%'
         ORDER BY m.event_type, a.attempt",
    )
    .bind(all)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(log.len(), 4, "{log:?}");
    assert_eq!(log[0].0, "request.decided");
    assert!(
        log[0].3.as_deref().unwrap().contains("timed out"),
        "{log:?}"
    );
    assert!(log[0].4, "a failed attempt says when the next is due");
    assert_eq!((log[1].2, log[1].4), (Some(204), false));
    assert_eq!(
        (log[2].0.as_str(), log[2].2),
        ("request.submitted", Some(500))
    );
    assert_eq!(log[2].3.as_deref(), Some("HTTP 500"));
    assert_eq!(log[3].2, Some(204));
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn an_endpoint_failing_every_attempt_is_disabled_and_can_be_redelivered(pool: PgPool) {
    let receiver = Receiver {
        always_fail: true,
        ..Receiver::default()
    };
    let base = start_receiver(receiver.clone()).await;
    let company = testing::seed_company(&pool, "seaview", "SeaView").await;
    let (endpoint, _) = register(
        &pool,
        Some(&sealer()),
        company.admin,
        &format!("{base}/x"),
        &EventType::ALL,
    )
    .await;
    let env = testing::submitted_env(&pool, &company, "trucking", "Trucking").await;
    let worker = WebhookWorker::new(pool.clone(), settings(true, 3)).unwrap();
    berth_testkit::until(
        "the endpoint is disabled",
        200,
        Duration::from_millis(25),
        || async {
            worker.deliver_due().await.unwrap();
            !webhooks::get(&pool, endpoint).await.unwrap().enabled
        },
    )
    .await;
    assert_eq!(receiver.got.lock().unwrap().len(), 3, "three attempts");
    let e = webhooks::get(&pool, endpoint).await.unwrap();
    let reason = e.disabled_reason.unwrap();
    assert!(
        reason.contains("could not be delivered in 3 attempts"),
        "{reason}"
    );
    assert!(reason.contains("HTTP 500"), "{reason}");
    let log = webhooks::deliveries(&pool, endpoint, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].status.as_str(), log[0].attempts), ("failed", 3));
    assert_eq!(log[0].last_status, Some(500));
    assert_eq!(log[0].environment_id, Some(env.environment_id));

    // Disabled: new events are not queued for it, and nothing is sent.
    berth_db::requests::decide(
        &pool,
        env.request_id,
        &testing::actor(&company, true),
        Decision::Reject {
            reason: berth_domain::request::Note::parse("not now")
                .unwrap()
                .unwrap(),
        },
    )
    .await
    .unwrap();
    assert_eq!(worker.deliver_due().await.unwrap(), 0);
    assert_eq!(
        webhooks::deliveries(&pool, endpoint, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // On again and redelivered: the same message goes out once more.
    webhooks::set_enabled(&pool, endpoint, true, "")
        .await
        .unwrap();
    webhooks::redeliver(&pool, endpoint, log[0].id)
        .await
        .unwrap();
    assert_eq!(worker.deliver_due().await.unwrap(), 1);
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 4);
    assert_eq!(got[3].id, got[0].id, "the same webhook-id");
    let log = webhooks::deliveries(&pool, endpoint, 10).await.unwrap();
    assert_eq!((log[0].status.as_str(), log[0].attempts), ("pending", 4));
    assert!(log[0].next_attempt_at.is_some());
    assert!(webhooks::redeliver(&pool, endpoint, uuid::Uuid::new_v4())
        .await
        .is_err());
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn loopback_targets_are_refused_at_delivery_unless_allowed(pool: PgPool) {
    let receiver = Receiver::default();
    let base = start_receiver(receiver.clone()).await;
    let port = base.rsplit(':').next().unwrap();
    let company = testing::seed_company(&pool, "seaview", "SeaView").await;
    // Registered while allowed (or while the name pointed elsewhere): checked again now.
    let (by_name, _) = register(
        &pool,
        None,
        company.admin,
        &format!("http://localhost:{port}/x"),
        &EventType::ALL,
    )
    .await;
    let (by_address, _) = register(
        &pool,
        Some(&sealer()),
        company.admin,
        &format!("{base}/y"),
        &EventType::ALL,
    )
    .await;
    testing::submitted_env(&pool, &company, "trucking", "Trucking").await;
    let worker = WebhookWorker::new(pool.clone(), settings(false, 5)).unwrap();
    assert_eq!(worker.deliver_due().await.unwrap(), 2);
    assert!(
        receiver.got.lock().unwrap().is_empty(),
        "nothing reached the receiver"
    );
    for (endpoint, says) in [
        (by_name, "refused: localhost resolves to"),
        (by_address, "refused: 127.0.0.1 is a loopback address"),
    ] {
        let log = webhooks::deliveries(&pool, endpoint, 10).await.unwrap();
        let error = log[0].last_error.clone().unwrap();
        assert!(error.contains(says), "{error}");
        assert_eq!(
            log[0].status, "pending",
            "retried later: the name may change back"
        );
    }
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn deliveries_commit_with_their_event(pool: PgPool) {
    let company = testing::seed_company(&pool, "seaview", "SeaView").await;
    let (endpoint, _) = register(
        &pool,
        None,
        company.admin,
        "https://hooks.example.com/x",
        &[EventType::RunStarted],
    )
    .await;
    let env = testing::approved_env(&pool, &company, "trucking", "Trucking").await;
    let append = |kind: &'static str| {
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            berth_db::events::append(
                &mut tx,
                env.environment_id,
                Some(env.request_id),
                None,
                kind,
                serde_json::json!({}),
            )
            .await
            .unwrap();
            tx
        }
    };
    append("run.started").await.rollback().await.unwrap();
    assert!(
        statuses(&pool, endpoint).await.is_empty(),
        "rolled back with the event"
    );
    append("step.started").await.commit().await.unwrap();
    append("request.submitted").await.commit().await.unwrap();
    assert!(
        statuses(&pool, endpoint).await.is_empty(),
        "types it did not choose"
    );
    append("run.started").await.commit().await.unwrap();
    assert_eq!(
        statuses(&pool, endpoint).await,
        vec![("run.started".to_owned(), "pending".to_owned())]
    );
}
