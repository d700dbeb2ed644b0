//! The company this Berth deployment serves (e.g. SeaView).

use sqlx::PgPool;
use uuid::Uuid;

use crate::DbError;

#[derive(Debug, Clone)]
pub struct Company {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
}

/// Creates the company on first start, or updates its display name; returns it.
pub async fn ensure(pool: &PgPool, name: &str, slug: &str) -> Result<Company, DbError> {
    let row = sqlx::query_as!(
        Company,
        r#"INSERT INTO companies (id, name, slug) VALUES ($1, $2, $3)
           ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name
           RETURNING id, name, slug"#,
        Uuid::new_v4(),
        name,
        slug
    )
    .fetch_one(pool)
    .await?;
    Ok(row)
}
