//! Machine credentials: API tokens and the service accounts that hold some of them. A token's
//! secret is returned once, when it is made; only its SHA-256 is stored.

use berth_domain::{
    token::{NewToken, PresentedSecret, Scope, TokenKind, SECRET_BYTES},
    Role,
};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{users::User, DbError};

/// The issuer recorded for service accounts: no identity provider signs them in.
pub const SERVICE_ACCOUNT_ISSUER: &str = "berth:service-account";

/// A token as lists show it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub shown_prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    pub last_used_addr: Option<String>,
}

/// A token just made, with the secret the caller sees this once (`SecretString` keeps it out
/// of `Debug`).
#[derive(Debug)]
pub struct Issued {
    pub token: Token,
    pub secret: secrecy::SecretString,
}

/// Who a valid token speaks for, and the token.
#[derive(Debug, Clone)]
pub struct Bearer {
    pub user: User,
    pub token: Token,
}

/// A row of `api_tokens` as stored; [`Token`] is it checked.
struct TokenRow {
    id: Uuid,
    user_id: Uuid,
    name: String,
    shown_prefix: String,
    scopes: Vec<String>,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
    last_used_at: Option<OffsetDateTime>,
    last_used_addr: Option<String>,
}

impl TryFrom<TokenRow> for Token {
    type Error = DbError;
    fn try_from(r: TokenRow) -> Result<Self, DbError> {
        Ok(Token {
            scopes: r
                .scopes
                .iter()
                .map(|s| s.parse().map_err(DbError::Corrupt))
                .collect::<Result<_, _>>()?,
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            shown_prefix: r.shown_prefix,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            last_used_at: r.last_used_at,
            last_used_addr: r.last_used_addr,
        })
    }
}

fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Makes a token for `user_id` (a person making their own, or an admin one for a service
/// account: `made_by`).
pub async fn issue(
    pool: &PgPool,
    user_id: Uuid,
    made_by: Uuid,
    kind: TokenKind,
    new: &NewToken,
) -> Result<Issued, DbError> {
    let mut random = [0u8; SECRET_BYTES];
    getrandom::fill(&mut random).map_err(|e| DbError::Corrupt(format!("no randomness: {e}")))?;
    let secret = format!("{}{}", kind.prefix(), hex::encode(random));
    let shown_prefix = secret[..kind.prefix().len() + 6].to_owned();
    let scopes: Vec<String> = new.scopes.iter().map(|s| s.as_str().to_owned()).collect();
    let id = Uuid::new_v4();
    sqlx::query!(
        r#"INSERT INTO api_tokens (id, user_id, name, secret_sha256, shown_prefix, scopes,
                                  created_by, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(days => $8))"#,
        id,
        user_id,
        new.name,
        digest(&secret),
        shown_prefix,
        &scopes,
        made_by,
        new.days as i32,
    )
    .execute(pool)
    .await?;
    let token = get(pool, id).await?.ok_or(DbError::NotFound)?;
    Ok(Issued {
        token,
        secret: secret.into(),
    })
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<Token>, DbError> {
    sqlx::query_as!(
        TokenRow,
        "SELECT id, user_id, name, shown_prefix, scopes, created_at, expires_at, revoked_at,
                last_used_at, last_used_addr
         FROM api_tokens WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?
    .map(Token::try_from)
    .transpose()
}

/// A user's tokens, newest first, revoked and expired ones included (they say so).
pub async fn list(pool: &PgPool, user_id: Uuid) -> Result<Vec<Token>, DbError> {
    sqlx::query_as!(
        TokenRow,
        "SELECT id, user_id, name, shown_prefix, scopes, created_at, expires_at, revoked_at,
                last_used_at, last_used_addr
         FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC, id",
        user_id
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(Token::try_from)
    .collect()
}

/// Revokes a token of `user_id`; false when there is no such live token.
pub async fn revoke(pool: &PgPool, id: Uuid, user_id: Uuid, by: Uuid) -> Result<bool, DbError> {
    let done = sqlx::query!(
        "UPDATE api_tokens SET revoked_at = now(), revoked_by = $3
         WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        id,
        user_id,
        by
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The user and token a presented secret stands for, when the token is live (not revoked, not
/// expired) and its user not disabled; records the use (time and address), at most once a
/// minute per token and address so busy scripts do not write on every call. One round trip:
/// this runs on every API call.
pub async fn authenticate(
    pool: &PgPool,
    secret: &PresentedSecret,
    addr: Option<&str>,
) -> Result<Option<Bearer>, DbError> {
    let row = sqlx::query!(
        r#"WITH found AS (
               SELECT t.id, t.user_id, t.name, t.shown_prefix, t.scopes, t.created_at,
                      t.expires_at, t.revoked_at, t.last_used_at, t.last_used_addr,
                      u.issuer, u.subject, u.display_name, u.email, u.roles
               FROM api_tokens t JOIN users u ON u.id = t.user_id
               WHERE t.secret_sha256 = $1 AND t.revoked_at IS NULL AND t.expires_at > now()
                 AND u.disabled_at IS NULL
           ), touched AS (
               UPDATE api_tokens a SET last_used_at = now(), last_used_addr = $2
               FROM found
               WHERE a.id = found.id
                 AND (found.last_used_at IS NULL
                      OR found.last_used_at < now() - interval '1 minute'
                      OR found.last_used_addr IS DISTINCT FROM $2)
           )
           SELECT id AS "id!", user_id AS "user_id!", name AS "name!",
                  shown_prefix AS "shown_prefix!", scopes AS "scopes!",
                  created_at AS "created_at!", expires_at AS "expires_at!", revoked_at,
                  last_used_at, last_used_addr, issuer AS "issuer!", subject AS "subject!",
                  display_name AS "display_name!", email, roles AS "roles!"
           FROM found"#,
        digest(secret.expose()),
        addr
    )
    .fetch_optional(pool)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let user = User {
        id: r.user_id,
        issuer: r.issuer,
        subject: r.subject,
        display_name: r.display_name,
        email: r.email,
        roles: crate::parse_roles(r.roles)?,
    };
    let token = Token::try_from(TokenRow {
        id: r.id,
        user_id: r.user_id,
        name: r.name,
        shown_prefix: r.shown_prefix,
        scopes: r.scopes,
        created_at: r.created_at,
        expires_at: r.expires_at,
        revoked_at: r.revoked_at,
        last_used_at: r.last_used_at,
        last_used_addr: r.last_used_addr,
    })?;
    Ok(Some(Bearer { user, token }))
}

/// Makes a service account with `roles`, by an admin (`made_by`). Names are unique among
/// service accounts, case-insensitively: a clash is [`DbError::Taken`] on the `name` field.
pub async fn create_service_account(
    pool: &PgPool,
    name: &str,
    roles: &[Role],
    made_by: Uuid,
) -> Result<User, DbError> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO users (id, issuer, subject, display_name, roles, kind, created_by)
         VALUES ($1, $2, $3, $4, $5, 'service_account', $6)",
        id,
        SERVICE_ACCOUNT_ISSUER,
        id.to_string(),
        name,
        &crate::users::roles_text(roles),
        made_by
    )
    .execute(pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("users_service_account_name") => {
            DbError::Taken {
                field: "name",
                message: format!("A service account named '{name}' already exists."),
            }
        }
        _ => e.into(),
    })?;
    crate::users::get(pool, id).await?.ok_or(DbError::NotFound)
}

/// A service account as the admins' page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub user: User,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    /// Set while the account is disabled: its tokens are refused.
    pub disabled_at: Option<OffsetDateTime>,
}

struct ServiceAccountRow {
    id: Uuid,
    issuer: String,
    subject: String,
    display_name: String,
    email: Option<String>,
    roles: Vec<String>,
    created_by: String,
    created_at: OffsetDateTime,
    disabled_at: Option<OffsetDateTime>,
}

impl TryFrom<ServiceAccountRow> for ServiceAccount {
    type Error = DbError;
    fn try_from(r: ServiceAccountRow) -> Result<Self, DbError> {
        Ok(ServiceAccount {
            user: User {
                id: r.id,
                issuer: r.issuer,
                subject: r.subject,
                display_name: r.display_name,
                email: r.email,
                roles: crate::parse_roles(r.roles)?,
            },
            created_by: r.created_by,
            created_at: r.created_at,
            disabled_at: r.disabled_at,
        })
    }
}

/// Every service account, by name.
pub async fn list_service_accounts(pool: &PgPool) -> Result<Vec<ServiceAccount>, DbError> {
    sqlx::query_as!(
        ServiceAccountRow,
        r#"SELECT u.id, u.issuer, u.subject, u.display_name, u.email, u.roles,
                  m.display_name AS created_by, u.created_at, u.disabled_at
           FROM users u JOIN users m ON m.id = u.created_by
           WHERE u.kind = 'service_account'
           ORDER BY lower(u.display_name), u.id"#
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(ServiceAccount::try_from)
    .collect()
}

/// One service account; `None` for a person's id or an unknown one.
pub async fn service_account(pool: &PgPool, id: Uuid) -> Result<Option<ServiceAccount>, DbError> {
    sqlx::query_as!(
        ServiceAccountRow,
        r#"SELECT u.id, u.issuer, u.subject, u.display_name, u.email, u.roles,
                  m.display_name AS created_by, u.created_at, u.disabled_at
           FROM users u JOIN users m ON m.id = u.created_by
           WHERE u.id = $1 AND u.kind = 'service_account'"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .map(ServiceAccount::try_from)
    .transpose()
}

/// Disables a service account (its tokens are refused from the next call on) or enables it
/// again; false when `id` is no service account or it already was so. People are never
/// disabled here (their access follows the identity provider's groups).
pub async fn set_service_account_disabled(
    pool: &PgPool,
    id: Uuid,
    disabled: bool,
) -> Result<bool, DbError> {
    let done = sqlx::query!(
        "UPDATE users SET disabled_at = CASE WHEN $2 THEN now() END
         WHERE id = $1 AND kind = 'service_account' AND (disabled_at IS NOT NULL) <> $2",
        id,
        disabled
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
