//! `server token`: a personal API token made from a shell with database access, for
//! bootstrapping automation (and the test command's API checks) before anyone uses the page.

use anyhow::{bail, Context};
use berth_db::PgPool;
use berth_domain::token::{NewToken, TokenKind, DEFAULT_MAX_TOKEN_DAYS};
use secrecy::ExposeSecret;

/// Issues a token named "server token" to the one person signed in as `login`; returns the
/// secret. Scopes are checked against their roles as on the page.
pub async fn issue_for_login(
    pool: &PgPool,
    login: &str,
    scopes: &str,
    days: &str,
) -> anyhow::Result<String> {
    let people = berth_db::users::by_subject(pool, login).await?;
    let user = match people.as_slice() {
        [one] => one,
        [] => bail!("nobody has signed in as '{login}' yet"),
        _ => bail!("'{login}' names several people (one per identity provider)"),
    };
    let scopes: Vec<String> = scopes.split(',').map(|s| s.trim().to_owned()).collect();
    let new = NewToken::parse(
        "server token",
        days,
        &scopes,
        &user.roles,
        DEFAULT_MAX_TOKEN_DAYS,
    )
    .map_err(|errors| {
        anyhow::anyhow!(errors
            .iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join(" "))
    })?;
    let issued = berth_db::tokens::issue(pool, user.id, user.id, TokenKind::Personal, &new)
        .await
        .context("cannot store the token")?;
    Ok(issued.secret.expose_secret().to_owned())
}
