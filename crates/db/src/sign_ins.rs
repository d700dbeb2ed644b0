//! Sign-ins (`sign_ins`): one row per browser session, read on every call. Ending a row ends
//! the session wherever its cookie is, which is how an admin ends a person's sessions and how
//! a person the identity provider no longer vouches for is signed out.

use std::time::Duration;

use berth_domain::Role;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    audit::{self, AuthEvent, AuthEventKind},
    users::{roles_text, User},
    DbError,
};

/// How a person signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Single sign-on: the provider is asked again about the person's groups.
    Sso,
    /// The development sign-in (demo accounts, loopback only).
    Development,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Sso => "sso",
            Method::Development => "development",
        }
    }

    fn parse(raw: &str) -> Result<Self, DbError> {
        match raw {
            "sso" => Ok(Method::Sso),
            "development" => Ok(Method::Development),
            other => Err(DbError::Corrupt(format!(
                "unknown sign-in method '{other}'"
            ))),
        }
    }
}

/// Why a sign-in ended (its `ended_reason`, written as the variant's name below).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
pub enum EndReason {
    /// The person signed out.
    #[strum(serialize = "signed out")]
    SignedOut,
    /// An admin ended the person's sessions.
    #[strum(serialize = "ended by an admin")]
    EndedByAdmin,
    /// The sign-in reached its absolute lifetime.
    #[strum(serialize = "expired")]
    Expired,
    /// The identity provider no longer confirms the person (account or groups changed).
    #[strum(serialize = "refused by the identity provider")]
    RefusedByProvider,
    /// The identity provider could not confirm the person for too long.
    #[strum(serialize = "identity provider unreachable")]
    ProviderUnreachable,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(raw: &str) -> Result<Self, DbError> {
        use strum::IntoEnumIterator;
        Self::iter()
            .find(|r| r.as_str() == raw)
            .ok_or_else(|| DbError::Corrupt(format!("unknown reason a sign-in ended '{raw}'")))
    }
}

/// What the identity provider gave at sign-in (or at the last refresh) to ask it again later.
pub struct StoredTokens {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub access_expires_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTokens")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("access_expires_at", &self.access_expires_at)
            .finish_non_exhaustive()
    }
}

/// A sign-in about to start.
#[derive(Debug)]
pub struct NewSignIn<'a> {
    pub user_id: Uuid,
    pub method: Method,
    /// The absolute lifetime from now.
    pub lifetime: Duration,
    pub source_addr: Option<&'a str>,
    pub tokens: Option<StoredTokens>,
}

/// A sign-in that still stands, with its person as the database has them now.
#[derive(Debug, Clone)]
pub struct Current {
    pub id: Uuid,
    pub user: User,
    pub method: Method,
    pub signed_in_at: OffsetDateTime,
    /// When the provider last confirmed the person's groups (sign-in time for a new one).
    pub roles_checked_at: OffsetDateTime,
}

fn lifetime(d: Duration) -> Result<time::Duration, DbError> {
    time::Duration::try_from(d)
        .map_err(|_| DbError::Corrupt("sign-in lifetime out of range".into()))
}

/// Records a sign-in; its id goes into the session.
pub async fn start(pool: &PgPool, new: NewSignIn<'_>) -> Result<Uuid, DbError> {
    let id = Uuid::new_v4();
    let expires_at = OffsetDateTime::now_utc() + lifetime(new.lifetime)?;
    let tokens = new.tokens.as_ref();
    sqlx::query!(
        "INSERT INTO sign_ins (id, user_id, method, expires_at, source_addr, access_token,
                               refresh_token, access_expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        id,
        new.user_id,
        new.method.as_str(),
        expires_at,
        new.source_addr,
        tokens.map(|t| t.access_token.expose_secret()),
        tokens.and_then(|t| t.refresh_token.as_ref().map(|r| r.expose_secret())),
        tokens.and_then(|t| t.access_expires_at),
    )
    .execute(pool)
    .await?;
    Ok(id)
}

/// The sign-in `id` when it still stands (not ended, not past its lifetime).
pub async fn current(pool: &PgPool, id: Uuid) -> Result<Option<Current>, DbError> {
    let Some(r) = sqlx::query!(
        r#"SELECT s.id, s.method, s.signed_in_at, s.roles_checked_at,
                  u.id AS user_id, u.issuer, u.subject, u.display_name, u.email, u.roles
           FROM sign_ins s JOIN users u ON u.id = s.user_id
           WHERE s.id = $1 AND s.ended_at IS NULL AND s.expires_at > now()"#,
        id
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(Current {
        id: r.id,
        method: Method::parse(&r.method)?,
        signed_in_at: r.signed_in_at,
        roles_checked_at: r.roles_checked_at,
        user: User {
            id: r.user_id,
            issuer: r.issuer,
            subject: r.subject,
            display_name: r.display_name,
            email: r.email,
            roles: crate::parse_roles(r.roles)?,
        },
    }))
}

/// Why the sign-in `id` no longer stands: its recorded reason, or [`EndReason::Expired`] when
/// it outlived its lifetime before the purge ended it. `None` while it stands, or when its row
/// is gone (purged after the retention).
pub async fn why_ended(pool: &PgPool, id: Uuid) -> Result<Option<EndReason>, DbError> {
    let row = sqlx::query!(
        r#"SELECT ended_reason, expires_at <= now() AS "expired!" FROM sign_ins WHERE id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some(r) => match r.ended_reason {
            Some(reason) => Some(EndReason::parse(&reason)?),
            None => r.expired.then_some(EndReason::Expired),
        },
        None => None,
    })
}

/// Claims the re-check of a single sign-on sign-in whose roles were confirmed longer than
/// `every` ago, and returns its tokens; `None` when it needs none or another caller holds the
/// claim (a claim lapses after `claim_for`, so a crashed check does not block the next).
/// One caller at a time: a provider that rotates refresh tokens refuses the second use of one.
pub async fn claim_recheck(
    pool: &PgPool,
    id: Uuid,
    every: Duration,
    claim_for: Duration,
) -> Result<Option<StoredTokens>, DbError> {
    let every = lifetime(every)?;
    let claim_for = lifetime(claim_for)?;
    let now = OffsetDateTime::now_utc();
    let row = sqlx::query!(
        "UPDATE sign_ins SET recheck_claimed_at = $2
         WHERE id = $1 AND ended_at IS NULL AND method = 'sso' AND access_token IS NOT NULL
           AND roles_checked_at <= $3
           AND (recheck_claimed_at IS NULL OR recheck_claimed_at <= $4)
         RETURNING access_token, refresh_token, access_expires_at",
        id,
        now,
        now - every,
        now - claim_for,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|r| {
        Some(StoredTokens {
            access_token: SecretString::from(r.access_token?),
            refresh_token: r.refresh_token.map(SecretString::from),
            access_expires_at: r.access_expires_at,
        })
    }))
}

/// The provider confirmed the person: their roles become `roles` (recorded as a change in the
/// audit trail when they differ) and the sign-in keeps the tokens it was answered with.
/// Returns whether the roles changed.
pub async fn confirm(
    pool: &PgPool,
    id: Uuid,
    roles: &[Role],
    tokens: &StoredTokens,
) -> Result<bool, DbError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query!(
        "UPDATE sign_ins SET roles_checked_at = now(), recheck_claimed_at = NULL,
                access_token = $2, refresh_token = $3, access_expires_at = $4
         WHERE id = $1 AND ended_at IS NULL
         RETURNING user_id",
        id,
        tokens.access_token.expose_secret(),
        tokens.refresh_token.as_ref().map(|r| r.expose_secret()),
        tokens.access_expires_at,
    )
    .fetch_optional(&mut *tx)
    .await?;
    // Ended meanwhile (signed out, ended by an admin): nothing to confirm.
    let Some(row) = row else { return Ok(false) };
    let new_roles = roles_text(roles);
    let old = sqlx::query_scalar!(
        "SELECT roles FROM users WHERE id = $1 FOR UPDATE",
        row.user_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let changed = old != new_roles;
    if changed {
        sqlx::query!(
            "UPDATE users SET roles = $2 WHERE id = $1",
            row.user_id,
            &new_roles
        )
        .execute(&mut *tx)
        .await?;
        let reason = format!(
            "the identity provider changed the roles from [{}] to [{}]",
            old.join(", "),
            new_roles.join(", ")
        );
        let event = AuthEvent {
            user_id: Some(row.user_id),
            reason: Some(&reason),
            ..AuthEvent::default()
        };
        audit::record(&mut *tx, AuthEventKind::RolesChanged, event).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// Ends one sign-in (signing out, or the provider refused the person); its tokens are
/// forgotten. Returns its person when it was still open. `audit_reason` records the end in the audit
/// trail (a sign-out is recorded by the caller as such, so it passes `None`).
pub async fn end(
    pool: &PgPool,
    id: Uuid,
    reason: EndReason,
    audit_reason: Option<&str>,
) -> Result<Option<Uuid>, DbError> {
    let mut tx = pool.begin().await?;
    let ended = sqlx::query_scalar!(
        "UPDATE sign_ins SET ended_at = now(), ended_reason = $2, access_token = NULL,
                refresh_token = NULL, access_expires_at = NULL
         WHERE id = $1 AND ended_at IS NULL
         RETURNING user_id",
        id,
        reason.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let (Some(user_id), Some(why)) = (ended, audit_reason) {
        let event = AuthEvent {
            user_id: Some(user_id),
            reason: Some(why),
            ..AuthEvent::default()
        };
        audit::record(&mut *tx, AuthEventKind::SessionEnded, event).await?;
    }
    tx.commit().await?;
    Ok(ended)
}

/// An admin ending sessions: who, for the row and the audit trail.
#[derive(Debug, Clone, Copy)]
pub struct EndedBy<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub source_addr: Option<&'a str>,
}

/// Ends every open sign-in of `user_id` at the hand of an admin (recorded in the audit trail
/// with the count, in the same transaction). Returns how many ended.
pub async fn end_all_of(pool: &PgPool, user_id: Uuid, by: EndedBy<'_>) -> Result<u64, DbError> {
    let mut tx = pool.begin().await?;
    let ended = sqlx::query!(
        "UPDATE sign_ins SET ended_at = now(), ended_reason = $3, ended_by = $2,
                access_token = NULL, refresh_token = NULL, access_expires_at = NULL
         WHERE user_id = $1 AND ended_at IS NULL",
        user_id,
        by.id,
        EndReason::EndedByAdmin.as_str()
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let reason = format!(
        "{} ({}) ended {ended} session{} of this person",
        by.name,
        by.id,
        if ended == 1 { "" } else { "s" }
    );
    let event = AuthEvent {
        user_id: Some(user_id),
        source_addr: by.source_addr.map(str::to_owned),
        reason: Some(&reason),
        ..AuthEvent::default()
    };
    audit::record(&mut *tx, AuthEventKind::SessionsEnded, event).await?;
    tx.commit().await?;
    Ok(ended)
}

/// A person who signs in (service accounts excluded), as the admins' page lists them.
#[derive(Debug, Clone)]
pub struct Person {
    pub user: User,
    pub last_sign_in: Option<OffsetDateTime>,
    /// Sign-ins that still stand.
    pub open_sessions: i64,
}

/// Everyone who ever signed in, by name, with their open sessions.
pub async fn people(pool: &PgPool) -> Result<Vec<Person>, DbError> {
    sqlx::query!(
        r#"SELECT u.id, u.issuer, u.subject, u.display_name, u.email, u.roles, u.last_sign_in,
                  (SELECT count(*) FROM sign_ins s
                   WHERE s.user_id = u.id AND s.ended_at IS NULL AND s.expires_at > now())
                    AS "open_sessions!"
           FROM users u
           WHERE u.issuer <> $1 AND u.last_sign_in IS NOT NULL
           ORDER BY u.display_name, u.id"#,
        crate::tokens::SERVICE_ACCOUNT_ISSUER
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| {
        Ok(Person {
            last_sign_in: r.last_sign_in,
            open_sessions: r.open_sessions,
            user: User {
                id: r.id,
                issuer: r.issuer,
                subject: r.subject,
                display_name: r.display_name,
                email: r.email,
                roles: crate::parse_roles(r.roles)?,
            },
        })
    })
    .collect()
}

/// What one purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Sign-ins past their lifetime, now ended (their tokens forgotten).
    pub expired: u64,
    /// Ended sign-ins older than the retention, deleted (the audit trail keeps the record).
    pub deleted: u64,
}

/// Ends sign-ins past their lifetime and deletes those ended more than `keep` ago.
pub async fn purge(pool: &PgPool, keep: Duration) -> Result<Purged, DbError> {
    let expired = sqlx::query!(
        "UPDATE sign_ins SET ended_at = now(), ended_reason = $1, access_token = NULL,
                refresh_token = NULL, access_expires_at = NULL
         WHERE ended_at IS NULL AND expires_at <= now()",
        EndReason::Expired.as_str()
    )
    .execute(pool)
    .await?
    .rows_affected();
    let deleted = sqlx::query!(
        "DELETE FROM sign_ins WHERE ended_at IS NOT NULL AND ended_at < $1",
        OffsetDateTime::now_utc() - lifetime(keep)?
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(Purged { expired, deleted })
}
