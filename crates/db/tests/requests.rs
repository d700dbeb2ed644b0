//! Storage tests: each runs against a fresh database created by `#[sqlx::test]`.

mod common;
use common::person;

use berth_db::{companies, events, requests, DbError, PgPool};
use berth_domain::{Decision, Denied, RequestSpec, RequestStatus, Role, TransitionError};

fn spec(name: &str, slug: &str) -> RequestSpec {
    RequestSpec::parse(name, slug, "", "owner@seaview.example", "insight", "small").unwrap()
}

async fn company(pool: &PgPool) -> uuid::Uuid {
    companies::ensure(pool, "SeaView", "seaview")
        .await
        .unwrap()
        .id
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn submit_list_search_and_timeline(pool: PgPool) {
    let c = company(&pool).await;
    let maria = person(&pool, "maria", &[Role::Manager]).await;
    let s = requests::submit(&pool, c, &maria, &spec("Trucking", ""))
        .await
        .unwrap();
    requests::submit(&pool, c, &maria, &spec("California charging stations", ""))
        .await
        .unwrap();

    let all = requests::list_environments(&pool, c, None).await.unwrap();
    assert_eq!(all.len(), 2);
    let found = requests::list_environments(&pool, c, Some("TRUCK"))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].slug, "trucking");
    assert_eq!(found[0].status, berth_domain::EnvironmentStatus::Submitted);
    // LIKE wildcards in the search term are literal.
    let none = requests::list_environments(&pool, c, Some("%"))
        .await
        .unwrap();
    assert!(none.is_empty());

    let timeline = events::for_environment(&pool, s.environment_id)
        .await
        .unwrap();
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].kind, events::kind::REQUEST_SUBMITTED);
    assert_eq!(timeline[0].actor_name.as_deref(), Some("User maria"));
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn names_are_unique_case_insensitively_among_live_environments(pool: PgPool) {
    let c = company(&pool).await;
    let maria = person(&pool, "maria", &[Role::Manager]).await;
    let ada = person(&pool, "ada", &[Role::Admin]).await;
    let first = requests::submit(&pool, c, &maria, &spec("Trucking", "trucking"))
        .await
        .unwrap();
    let err = requests::submit(&pool, c, &maria, &spec("Other", "trucking"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DbError::Taken { field: "slug", .. }),
        "{err:?}"
    );
    let err = requests::submit(&pool, c, &maria, &spec("TRUCKING", "trucking-two"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DbError::Taken { field: "name", .. }),
        "{err:?}"
    );

    // A rejected request frees its name.
    requests::decide(
        &pool,
        first.request_id,
        &ada,
        Decision::parse("reject", "wrong size").unwrap(),
    )
    .await
    .unwrap();
    requests::submit(&pool, c, &maria, &spec("Trucking", "trucking"))
        .await
        .unwrap();
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn decisions_follow_the_state_machine_and_separation_of_duties(pool: PgPool) {
    let c = company(&pool).await;
    let boss = person(&pool, "boss", &[Role::Manager, Role::Admin]).await;
    let ada = person(&pool, "ada", &[Role::Admin]).await;
    let audrey = person(&pool, "audrey", &[Role::Auditor]).await;
    let s = requests::submit(&pool, c, &boss, &spec("Trucking", ""))
        .await
        .unwrap();
    let approve = || Decision::parse("approve", "looks good").unwrap();

    let own = requests::decide(&pool, s.request_id, &boss, approve()).await;
    assert!(matches!(
        own,
        Err(DbError::Transition(TransitionError::Denied(
            Denied::OwnRequest
        )))
    ));
    let auditor = requests::decide(&pool, s.request_id, &audrey, approve()).await;
    assert!(matches!(
        auditor,
        Err(DbError::Transition(TransitionError::Denied(
            Denied::NeedsRole(Role::Admin)
        )))
    ));
    let auditor_submit = requests::submit(&pool, c, &audrey, &spec("Audit", "")).await;
    assert!(matches!(auditor_submit, Err(DbError::Transition(_))));

    let status = requests::decide(&pool, s.request_id, &ada, approve())
        .await
        .unwrap();
    assert_eq!(status, RequestStatus::Approved);
    let again = requests::decide(&pool, s.request_id, &ada, approve()).await;
    assert!(matches!(
        again,
        Err(DbError::Transition(TransitionError::NotSubmitted(
            RequestStatus::Approved
        )))
    ));

    let req = requests::get_request(&pool, s.request_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(req.status, RequestStatus::Approved);
    assert_eq!(req.decided_by_name.as_deref(), Some("User ada"));
    assert_eq!(req.decision_note.as_deref(), Some("looks good"));
    let env = requests::get_environment(&pool, s.environment_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(env.status, berth_domain::EnvironmentStatus::Approved);

    let kinds: Vec<_> = events::for_environment(&pool, s.environment_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.actor_name))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "request.submitted".to_string(),
                Some("User boss".to_string())
            ),
            ("request.approved".to_string(), Some("User ada".to_string())),
        ]
    );
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn withdraw_only_by_requester(pool: PgPool) {
    let c = company(&pool).await;
    let maria = person(&pool, "maria", &[Role::Manager]).await;
    let mark = person(&pool, "mark", &[Role::Manager]).await;
    let s = requests::submit(&pool, c, &maria, &spec("Trucking", ""))
        .await
        .unwrap();
    assert!(requests::withdraw(&pool, s.request_id, &mark)
        .await
        .is_err());
    requests::withdraw(&pool, s.request_id, &maria)
        .await
        .unwrap();
    let env = requests::get_environment(&pool, s.environment_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(env.status, berth_domain::EnvironmentStatus::Withdrawn);
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_database_refuses_illegal_changes(pool: PgPool) {
    let c = company(&pool).await;
    let maria = person(&pool, "maria", &[Role::Manager]).await;
    let ada = person(&pool, "ada", &[Role::Admin]).await;
    let s = requests::submit(&pool, c, &maria, &spec("Trucking", ""))
        .await
        .unwrap();

    // Self-decision, bypassing the application.
    let self_decided = sqlx::query(
        "UPDATE requests SET status = 'approved', decided_by = requested_by, decided_at = now()
         WHERE id = $1",
    )
    .bind(s.request_id)
    .execute(&pool)
    .await;
    assert!(self_decided.is_err());

    // Skipping the state machine.
    let skipped = sqlx::query("UPDATE requests SET status = 'ready' WHERE id = $1")
        .bind(s.request_id)
        .execute(&pool)
        .await;
    assert!(skipped
        .unwrap_err()
        .to_string()
        .contains("illegal request transition"));

    // Rejection without a reason.
    let no_reason = sqlx::query(
        "UPDATE requests SET status = 'rejected', decided_by = $2, decided_at = now()
         WHERE id = $1",
    )
    .bind(s.request_id)
    .bind(ada.user_id)
    .execute(&pool)
    .await;
    assert!(no_reason.is_err());

    requests::decide(
        &pool,
        s.request_id,
        &ada,
        Decision::parse("approve", "").unwrap(),
    )
    .await
    .unwrap();
    let back = sqlx::query("UPDATE requests SET status = 'submitted' WHERE id = $1")
        .bind(s.request_id)
        .execute(&pool)
        .await;
    assert!(back.is_err());

    // Events are append-only.
    for sql in [
        "UPDATE events SET kind = 'request.forged'",
        "DELETE FROM events",
        "TRUNCATE events CASCADE",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert!(sqlx::query("DELETE FROM requests")
        .execute(&pool)
        .await
        .is_err());
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn status_changes_follow_the_domain_table_and_carry_the_environment(pool: PgPool) {
    let c = company(&pool).await;
    let maria = person(&pool, "maria", &[Role::Manager]).await;
    let ada = person(&pool, "ada", &[Role::Admin]).await;
    let s = requests::submit(&pool, c, &maria, &spec("Trucking", ""))
        .await
        .unwrap();
    requests::decide(&pool, s.request_id, &ada, Decision::Approve { note: None })
        .await
        .unwrap();
    let status = |pool: PgPool| async move {
        let r = requests::get_request(&pool, s.request_id)
            .await
            .unwrap()
            .unwrap();
        let e = requests::get_environment(&pool, s.environment_id)
            .await
            .unwrap()
            .unwrap();
        (r.status, e.status)
    };

    let mut tx = pool.begin().await.unwrap();
    // approved → ready is not in the table: nothing moves.
    assert!(
        !requests::set_status(&mut tx, s.request_id, RequestStatus::Ready)
            .await
            .unwrap()
    );
    assert!(
        requests::set_status(&mut tx, s.request_id, RequestStatus::Provisioning)
            .await
            .unwrap()
    );
    // Already there: nothing to do.
    assert!(
        !requests::set_status(&mut tx, s.request_id, RequestStatus::Provisioning)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    assert_eq!(
        status(pool.clone()).await,
        (
            RequestStatus::Provisioning,
            berth_domain::EnvironmentStatus::Provisioning
        )
    );

    let mut tx = pool.begin().await.unwrap();
    assert!(
        requests::set_status(&mut tx, s.request_id, RequestStatus::Failed)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    assert_eq!(
        status(pool.clone()).await,
        (
            RequestStatus::Failed,
            berth_domain::EnvironmentStatus::Failed
        )
    );
}
