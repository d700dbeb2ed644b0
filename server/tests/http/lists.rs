//! The environment list and the auditors' view: 50 a page with keyset cursors, previous/next
//! links that work without JavaScript, the search kept in the links.

use berth_db::PgPool;
use reqwest::{Client, StatusCode};
use uuid::Uuid;

use crate::helpers::{link, spawn, TestApp};

/// Trucking with 120 events (the submission, its plan request and 118 engine events), and 60 withdrawn units
/// changed after it (`Unit 1` … `Unit 60`): 61 environments, two pages of 50.
async fn sixty_one_environments(app: &TestApp, maria: &Client) -> Uuid {
    let request = app.submit(maria, "Trucking").await;
    let env = app.environment_of(request).await;
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
    sqlx::query(
        "INSERT INTO environments (id, company_id, name, slug, owner_contact, blueprint, size,
                                   status, created_by)
         SELECT gen_random_uuid(), company_id, 'Unit ' || n, 'unit-' || n, owner_contact,
                blueprint, size, 'withdrawn', created_by
         FROM environments, generate_series(1, 60) n WHERE id = $1",
    )
    .bind(env)
    .execute(&app.pool)
    .await
    .unwrap();
    env
}

/// A page's HTML (after a 200), for a path or a `?…` link taken from another page.
async fn html(app: &TestApp, client: &Client, path: &str) -> String {
    let url = format!("{}/{}", app.base, path.trim_start_matches('/'));
    let res = client.get(&url).send().await.unwrap();
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{url}: {body}");
    body
}

/// The environments a page links to, in order.
fn environment_links(page: &str) -> Vec<&str> {
    page.match_indices("href=\"/environments/")
        .map(|(at, _)| &page[at + 6..at + 6 + page[at + 6..].find('"').unwrap()])
        .collect()
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_environment_list_pages_by_cursor_without_javascript(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;
    sixty_one_environments(&app, &maria).await;

    let list = html(&app, &maria, "/").await;
    assert_eq!(list.matches("href=\"/environments/").count(), 50);
    assert!(link(&list, "prev").is_none());
    let next = link(&list, "next").expect("a next page");
    assert!(
        next.starts_with("?after=") && !next.contains("page="),
        "a cursor, not a page number: {next}"
    );
    let list2 = html(&app, &maria, &next).await;
    assert_eq!(list2.matches("href=\"/environments/").count(), 11);
    assert!(link(&list2, "next").is_none() && link(&list2, "prev").is_some());
    // Most recently changed first; Trucking changed before every unit: last of all.
    assert!(list2.contains(">Trucking<"));
    let mut seen = environment_links(&list);
    seen.extend(environment_links(&list2));
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 61, "every environment once");

    // Back from the second page is the first page, with no earlier one.
    let back = html(&app, &maria, &link(&list2, "prev").unwrap()).await;
    assert_eq!(environment_links(&back), environment_links(&list));
    assert!(link(&back, "prev").is_none());
    assert_eq!(link(&back, "next"), link(&list, "next"));

    // The search stays in the links: 60 units match, 50 then 10.
    let units = html(&app, &maria, "/?q=unit").await;
    assert_eq!(units.matches("href=\"/environments/").count(), 50);
    let next = link(&units, "next").unwrap();
    assert!(next.starts_with("?q=unit&after="), "{next}");
    let units2 = html(&app, &maria, &next).await;
    assert_eq!(units2.matches("href=\"/environments/").count(), 10);
    assert!(!units2.contains(">Trucking<"));

    // A hand-edited cursor is a clear error (422), not a crash.
    let bad = maria
        .get(format!("{}/?after=yesterday", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("not a list position"));
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_auditors_view_lists_every_environment_in_pages(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;
    let env = sixty_one_environments(&app, &maria).await;
    let audrey = app.signed_in("audrey").await;

    // The auditors' view: auditors see every environment; managers are refused.
    let audit = audrey
        .get(format!("{}/audit?q=truck", app.base))
        .send()
        .await
        .unwrap();
    let audit = audit.text().await.unwrap();
    assert!(audit.contains("data-testid=\"audit-environments\""));
    assert!(audit.contains(&format!("href=\"/environments/{env}\"")));
    assert!(audit.contains(">120<"), "event count");
    let refused = maria
        .get(format!("{}/audit", app.base))
        .send()
        .await
        .unwrap();
    let refused = refused.text().await.unwrap();
    assert!(!refused.contains("audit-environments"));
    assert!(refused.contains("needs the auditor role"), "{refused}");

    // 61 environments: 50, then 11; the filter stays in the links.
    let rows = |html: &str| html.matches("<tr data-status=\"").count();
    let first = html(&app, &audrey, "/audit").await;
    assert_eq!(rows(&first), 50);
    assert!(first.contains("61 environments"), "total");
    assert!(link(&first, "prev").is_none());
    let second = html(
        &app,
        &audrey,
        &format!("audit{}", link(&first, "next").unwrap()),
    )
    .await;
    assert_eq!(rows(&second), 11);
    assert!(link(&second, "next").is_none());
    let back = html(
        &app,
        &audrey,
        &format!("audit{}", link(&second, "prev").unwrap()),
    )
    .await;
    assert_eq!(environment_links(&back), environment_links(&first));
    let withdrawn = html(&app, &audrey, "/audit?status=withdrawn").await;
    assert_eq!(rows(&withdrawn), 50);
    let next = link(&withdrawn, "next").unwrap();
    assert!(next.starts_with("?status=withdrawn&after="), "{next}");
    let withdrawn2 = html(&app, &audrey, &format!("audit{next}")).await;
    assert_eq!(rows(&withdrawn2), 10);
}
