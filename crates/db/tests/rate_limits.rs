//! The shared rate limit's arithmetic (GCRA) and its housekeeping, on a real database.

use std::num::NonZeroU32;
use std::time::Duration;

use berth_db::rate_limits::{forget_full, take, Rate};
use berth_db::PgPool;

fn rate(per_minute: u32, burst: u32) -> Rate {
    Rate {
        per_minute: NonZeroU32::new(per_minute).unwrap(),
        burst: NonZeroU32::new(burst).unwrap(),
    }
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_burst_then_one_call_per_interval(pool: PgPool) {
    // 60 a minute: one a second on average, 3 at once.
    let r = rate(60, 3);
    for n in 0..3 {
        assert_eq!(take(&pool, "api:a", r).await.unwrap(), None, "call {n}");
    }
    let wait = take(&pool, "api:a", r).await.unwrap().expect("refused");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    // Refused calls do not spend the allowance; other buckets are their own.
    let again = take(&pool, "api:a", r)
        .await
        .unwrap()
        .expect("still refused");
    assert!(again <= wait, "{again:?} after {wait:?}");
    assert_eq!(take(&pool, "api:b", r).await.unwrap(), None);

    // Once the wait is over, one more call goes through.
    sqlx::query("UPDATE rate_limits SET tat = tat - interval '1 second' WHERE bucket = 'api:a'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(take(&pool, "api:a", r).await.unwrap(), None);
    assert!(take(&pool, "api:a", r).await.unwrap().is_some());
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn only_full_buckets_are_forgotten(pool: PgPool) {
    let r = rate(1, 2);
    take(&pool, "login:192.0.2.1", r).await.unwrap();
    take(&pool, "login:192.0.2.2", r).await.unwrap();
    assert_eq!(forget_full(&pool).await.unwrap(), 0, "both still count");
    sqlx::query(
        "UPDATE rate_limits SET tat = now() - interval '1 second' WHERE bucket = 'login:192.0.2.1'",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(forget_full(&pool).await.unwrap(), 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT bucket FROM rate_limits")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, ["login:192.0.2.2"]);
}
