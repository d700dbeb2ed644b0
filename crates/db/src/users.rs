//! People who sign in, with the roles they held at their last sign-in.

use berth_domain::{Actor, Role};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{parse_roles, DbError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub issuer: String,
    pub subject: String,
    pub display_name: String,
    pub email: Option<String>,
    pub roles: Vec<Role>,
}

impl User {
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.id,
            name: self.display_name.clone(),
            roles: self.roles.clone(),
            token_id: None,
        }
    }
}

/// What an identity source says about a person.
#[derive(Debug, Clone)]
pub struct Identity<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub display_name: &'a str,
    pub email: Option<&'a str>,
    pub roles: &'a [Role],
}

pub(crate) fn roles_text(roles: &[Role]) -> Vec<String> {
    let mut v: Vec<String> = roles.iter().map(|r| r.as_str().to_owned()).collect();
    v.sort();
    v.dedup();
    v
}

/// Records (or refreshes) a person without signing them in.
pub async fn upsert(pool: &PgPool, who: &Identity<'_>) -> Result<User, DbError> {
    let row = sqlx::query!(
        r#"INSERT INTO users (id, issuer, subject, display_name, email, roles)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (issuer, subject) DO UPDATE
             SET display_name = EXCLUDED.display_name, email = EXCLUDED.email,
                 roles = EXCLUDED.roles
           RETURNING id"#,
        Uuid::new_v4(),
        who.issuer,
        who.subject,
        who.display_name,
        who.email,
        &roles_text(who.roles)
    )
    .fetch_one(pool)
    .await?;
    get(pool, row.id).await?.ok_or(DbError::NotFound)
}

/// Records a sign-in: first and last sign-in times.
pub async fn record_sign_in(pool: &PgPool, id: Uuid) -> Result<(), DbError> {
    sqlx::query!(
        "UPDATE users SET last_sign_in = now(), first_sign_in = COALESCE(first_sign_in, now())
         WHERE id = $1",
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// A `users` row as read; [`User`] is it with its roles checked.
struct UserRow {
    id: Uuid,
    issuer: String,
    subject: String,
    display_name: String,
    email: Option<String>,
    roles: Vec<String>,
}

impl TryFrom<UserRow> for User {
    type Error = DbError;
    fn try_from(r: UserRow) -> Result<Self, DbError> {
        Ok(User {
            id: r.id,
            issuer: r.issuer,
            subject: r.subject,
            display_name: r.display_name,
            email: r.email,
            roles: parse_roles(r.roles)?,
        })
    }
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<User>, DbError> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, issuer, subject, display_name, email, roles FROM users WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?
    .map(User::try_from)
    .transpose()
}

/// Everyone with this subject, whatever their issuer (an operator names a person by login).
pub async fn by_subject(pool: &PgPool, subject: &str) -> Result<Vec<User>, DbError> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, issuer, subject, display_name, email, roles FROM users
         WHERE subject = $1 ORDER BY issuer",
        subject
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(User::try_from)
    .collect()
}

/// Everyone recorded under one issuer, by name (used by the development sign-in page).
pub async fn list_by_issuer(pool: &PgPool, issuer: &str) -> Result<Vec<User>, DbError> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, issuer, subject, display_name, email, roles FROM users
         WHERE issuer = $1 ORDER BY display_name",
        issuer
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(User::try_from)
    .collect()
}
