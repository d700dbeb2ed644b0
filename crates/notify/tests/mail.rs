//! Email end to end: events written by the real request and engine code queue emails, the real
//! mail worker sends them over SMTP to the local catcher (maildev, started by tools/test.sh),
//! and the test reads them back from the catcher's inbox (`GET /api/email`).

use std::time::Duration;

use berth_db::PgPool;
use berth_domain::{request::Note, Decision};
use berth_notify::{MailSettings, MailWorker};
use berth_runs::testing;
use berth_testkit::maildev;
use secrecy::SecretString;
use serde_json::Value;

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn admins_and_requesters_get_their_emails_in_the_catchers_inbox(pool: PgPool) {
    if !maildev::maildev_available("admins_and_requesters_get_their_emails_in_the_catchers_inbox") {
        return;
    }
    // Addresses unique to this run: the catcher keeps what earlier runs sent.
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let company = testing::seed_company(&pool, "seaview", "SeaView").await;
    let requester = format!("dana-{tag}@seaview.example");
    let admin = format!("alex-{tag}@seaview.example");
    for (id, email) in [(company.requester, &requester), (company.admin, &admin)] {
        sqlx::query("UPDATE users SET email = $2 WHERE id = $1")
            .bind(id)
            .bind(email)
            .execute(&pool)
            .await
            .unwrap();
    }
    let admin_actor = testing::actor(&company, true);

    // One request rejected; another approved and provisioned to the end.
    let rejected = testing::submitted_env(&pool, &company, "trucking", "Trucking").await;
    berth_db::requests::decide(
        &pool,
        rejected.request_id,
        &admin_actor,
        Decision::Reject {
            reason: Note::parse("Use the shared fleet unit.").unwrap().unwrap(),
        },
    )
    .await
    .unwrap();
    let ready = testing::submitted_env(&pool, &company, "charging", "Charging").await;
    berth_db::requests::decide(
        &pool,
        ready.request_id,
        &admin_actor,
        Decision::Approve { note: None },
    )
    .await
    .unwrap();
    testing::enqueue(
        &pool,
        &ready,
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

    let worker = MailWorker::new(
        pool.clone(),
        MailSettings {
            smtp_url: SecretString::from(maildev::smtp_url()),
            from: "Berth <berth@berth.localhost>".parse().unwrap(),
            public_url: "http://berth.test".into(),
            retry: MailSettings::RETRY,
            max_attempts: 3,
            poll: Duration::from_millis(20),
        },
    )
    .unwrap();
    while worker.send_due().await.unwrap() > 0 {}
    let unsent: i64 = sqlx::query_scalar("SELECT count(*) FROM mail_outbox WHERE status <> 'sent'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(unsent, 0);

    let inbox = reqwest::get(format!("{}/api/email", maildev::web_url()))
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap();
    let to = |address: &str| {
        let mut mails: Vec<(String, String)> = inbox
            .iter()
            .filter(|m| {
                m["to"]
                    .as_array()
                    .is_some_and(|to| to.iter().any(|t| t["address"] == address))
            })
            .map(|m| {
                assert_eq!(m["from"][0]["address"], "berth@berth.localhost", "{m}");
                (
                    m["subject"].as_str().unwrap().to_owned(),
                    m["text"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        mails.sort();
        mails
    };
    let admin_mails = to(&admin);
    assert_eq!(
        admin_mails.iter().map(|m| m.0.as_str()).collect::<Vec<_>>(),
        [
            "Approval needed: new environment for Charging",
            "Approval needed: new environment for Trucking"
        ]
    );
    assert!(
        admin_mails[1].1.contains(&format!(
            "http://berth.test/requests/{}",
            rejected.request_id
        )),
        "{}",
        admin_mails[1].1
    );
    let requester_mails = to(&requester);
    assert_eq!(
        requester_mails
            .iter()
            .map(|m| m.0.as_str())
            .collect::<Vec<_>>(),
        [
            "Approved: your new environment for Charging",
            "Ready: Charging",
            "Rejected: your new environment for Trucking",
        ]
    );
    assert!(
        requester_mails[2]
            .1
            .contains("Reason: Use the shared fleet unit."),
        "{}",
        requester_mails[2].1
    );
    assert!(
        requester_mails[1].1.contains(&format!(
            "http://berth.test/environments/{}",
            ready.environment_id
        )),
        "{}",
        requester_mails[1].1
    );
}
