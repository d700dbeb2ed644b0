//! Keyset pages of the environment list and the auditors' view: walking forward and back gives
//! every row exactly once in one stable order, ties on the change time included, filters kept.

mod common;
use common::person;

use berth_db::{
    companies,
    lists::{self, ListCursor, ListFilter, ListPage, MAX_PAGE},
    PgPool,
};
use berth_domain::{RequestStatus, Role};
use uuid::Uuid;

/// 30 environments: ten changed at each of three moments (ties broken by id), statuses
/// alternating ready/withdrawn, names `Unit 1` … `Unit 30`. Returns the company and the ids in
/// list order, as PostgreSQL orders them.
async fn thirty(pool: &PgPool) -> (Uuid, Vec<Uuid>) {
    let company = companies::ensure(pool, "SeaView", "seaview")
        .await
        .unwrap()
        .id;
    let maria = person(pool, "maria", &[Role::Manager]).await;
    sqlx::query(
        "INSERT INTO environments (id, company_id, name, slug, owner_contact, blueprint, size,
                                   status, created_by, updated_at)
         SELECT gen_random_uuid(), $1, 'Unit ' || n, 'unit-' || n, 'owner@seaview.example',
                'insight', 'small', CASE WHEN n % 2 = 0 THEN 'ready' ELSE 'withdrawn' END, $2,
                timestamptz '2026-12-01 12:00:00.000001+00' + make_interval(mins => n % 3)
         FROM generate_series(1, 30) n",
    )
    .bind(company)
    .bind(maria.user_id)
    .execute(pool)
    .await
    .unwrap();
    let order = sqlx::query_scalar(
        "SELECT id FROM environments WHERE company_id = $1 ORDER BY updated_at DESC, id",
    )
    .bind(company)
    .fetch_all(pool)
    .await
    .unwrap();
    (company, order)
}

/// Every page from the first, following `next`; then back from the last, following
/// `previous`. Checks the ends have no link beyond them.
async fn walk<T, F, Fut>(read: F) -> (Vec<Vec<T>>, Vec<Vec<T>>)
where
    F: Fn(ListCursor) -> Fut,
    Fut: std::future::Future<Output = ListPage<T>>,
{
    let mut forward = Vec::new();
    let mut page = read(ListCursor::First).await;
    assert!(page.previous.is_none(), "nothing before the first page");
    loop {
        let next = page.next;
        let previous = page.previous;
        forward.push((page.rows, previous));
        match next {
            Some(c) => page = read(c).await,
            None => break,
        }
    }
    let mut backward = Vec::new();
    let mut previous = forward.last().unwrap().1;
    while let Some(c) = previous {
        let page = read(c).await;
        previous = page.previous;
        backward.push(page.rows);
    }
    backward.reverse();
    (
        forward.into_iter().map(|(rows, _)| rows).collect(),
        backward,
    )
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_environment_list_walks_both_ways_through_ties(pool: PgPool) {
    let (company, order) = thirty(&pool).await;
    let (forward, backward) = walk(|c| {
        let pool = pool.clone();
        async move {
            lists::environments(&pool, company, &ListFilter::default(), c, 7)
                .await
                .unwrap()
        }
    })
    .await;
    let ids = |pages: &[Vec<berth_db::requests::EnvironmentSummary>]| -> Vec<Vec<Uuid>> {
        pages
            .iter()
            .map(|p| p.iter().map(|e| e.id).collect())
            .collect()
    };
    let forward = ids(&forward);
    assert_eq!(
        forward.iter().map(Vec::len).collect::<Vec<_>>(),
        [7, 7, 7, 7, 2]
    );
    assert_eq!(
        forward.concat(),
        order,
        "every row once, in one stable order"
    );
    // Back from the last page: the same pages, in the same order.
    assert_eq!(ids(&backward), forward[..forward.len() - 1]);

    // The search is applied on every page; LIKE wildcards in it are literal.
    let first = lists::environments(
        &pool,
        company,
        &ListFilter::text("unit 1"),
        ListCursor::First,
        5,
    )
    .await
    .unwrap();
    assert_eq!(first.rows.len(), 5);
    let rest = lists::environments(
        &pool,
        company,
        &ListFilter::text("unit 1"),
        first.next.unwrap(),
        5,
    )
    .await
    .unwrap();
    // Unit 1, Unit 10 … Unit 19: eleven.
    assert_eq!(rest.rows.len(), 5);
    assert!(rest.rows.iter().all(|e| e.name.starts_with("Unit 1")));
    let none = lists::environments(&pool, company, &ListFilter::text("%"), ListCursor::First, 5)
        .await
        .unwrap();
    assert!(none.rows.is_empty() && none.next.is_none() && none.previous.is_none());

    // A status filter is applied on every page, both ways.
    let ready = ListFilter {
        status: Some(berth_domain::EnvironmentStatus::Ready),
        text: None,
    };
    let (forward, backward) = walk(|c| {
        let (pool, filter) = (pool.clone(), ready.clone());
        async move {
            lists::environments(&pool, company, &filter, c, 4)
                .await
                .unwrap()
        }
    })
    .await;
    let statuses: Vec<_> = forward.iter().flatten().map(|e| e.status).collect();
    assert_eq!(statuses.len(), 15, "the even units");
    assert!(statuses
        .iter()
        .all(|s| *s == berth_domain::EnvironmentStatus::Ready));
    assert_eq!(backward.len(), forward.len() - 1);

    // Past the end: an empty page that only leads back to the start.
    let last = *order.last().unwrap();
    let last_page = lists::environments(
        &pool,
        company,
        &ListFilter::default(),
        ListCursor::First,
        MAX_PAGE,
    )
    .await
    .unwrap();
    let key = last_page
        .rows
        .iter()
        .find(|e| e.id == last)
        .map(|e| lists::ListKey {
            updated_at: e.updated_at,
            id: e.id,
        })
        .unwrap();
    let beyond = lists::environments(
        &pool,
        company,
        &ListFilter::default(),
        ListCursor::After(key),
        7,
    )
    .await
    .unwrap();
    assert!(beyond.rows.is_empty());
    assert_eq!(
        (beyond.next, beyond.previous),
        (None, Some(ListCursor::First))
    );
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_auditors_view_walks_both_ways_with_its_filters(pool: PgPool) {
    let (company, order) = thirty(&pool).await;
    let withdrawn = ListFilter {
        status: Some(berth_domain::EnvironmentStatus::Withdrawn),
        text: None,
    };
    let (forward, backward) = walk(|c| {
        let (pool, filter) = (pool.clone(), withdrawn.clone());
        async move {
            let states = lists::latest_states(&pool, company, &filter, c, 4)
                .await
                .unwrap();
            assert_eq!(states.total, 15, "the total is the same on every page");
            states.page
        }
    })
    .await;
    let ids = |pages: &[Vec<lists::LatestState>]| -> Vec<Vec<Uuid>> {
        pages
            .iter()
            .map(|p| p.iter().map(|e| e.id).collect())
            .collect()
    };
    let forward = ids(&forward);
    assert_eq!(
        forward.iter().map(Vec::len).collect::<Vec<_>>(),
        [4, 4, 4, 3]
    );
    let statuses: Vec<RequestStatus> =
        sqlx::query_scalar("SELECT status FROM environments WHERE id = ANY($1)")
            .bind(forward.concat())
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(statuses.iter().all(|s| *s == RequestStatus::Withdrawn));
    let expected: Vec<Uuid> = order
        .iter()
        .copied()
        .filter(|id| forward.concat().contains(id))
        .collect();
    assert_eq!(forward.concat(), expected, "list order, every match once");
    assert_eq!(ids(&backward), forward[..forward.len() - 1]);
}
