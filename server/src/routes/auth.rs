//! Signing in and out: single sign-on (OpenID Connect, code flow with PKCE) and, on loopback
//! development servers only, a development sign-in that picks a seeded demo user.

use std::net::SocketAddr;

use app::api::{
    guard::{SESSION_ENDED_KEY, SESSION_SIGN_IN_KEY},
    session::DEMO_ISSUER,
};
use axum::{
    extract::{ConnectInfo, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    Form,
};
use berth_auth::{AuthError, CallbackParams, ProviderTokens};
use berth_db::{
    audit::{self, AuthEvent, AuthEventKind},
    sign_ins::{self, Method, NewSignIn},
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use crate::{sessions::stored, state::AppState};

/// The ID token, kept only as the hint for signing out at the provider.
const ID_TOKEN_KEY: &str = "berth.id_token";

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "sign-in failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "Sign-in failed; it has been logged.",
    )
        .into_response()
}

async fn audit(state: &AppState, kind: AuthEventKind, event: AuthEvent<'_>) {
    if let Err(e) = audit::record(&state.services.pool, kind, event).await {
        tracing::error!(error = %e, kind = kind.as_str(), "cannot record a sign-in audit event");
    }
}

/// Signs `user` in: a fresh session id (no session fixation), a `sign_ins` row (who, how,
/// until when; the provider's tokens for re-checking groups), the ID token as logout hint,
/// `users.last_sign_in`, and the audit record.
async fn sign_in(
    state: &AppState,
    session: &Session,
    user: &berth_db::users::User,
    provider: Option<(&SecretString, ProviderTokens)>,
    source_addr: Option<String>,
    reason: &str,
) -> Result<(), Response> {
    let (method, tokens, id_token) = match provider {
        Some((id_token, t)) => (Method::Sso, Some(stored(t)), Some(id_token)),
        None => (Method::Development, None, None),
    };
    let sign_in_id = sign_ins::start(
        &state.services.pool,
        NewSignIn {
            user_id: user.id,
            method,
            lifetime: state.services.session_max_age,
            source_addr: source_addr.as_deref(),
            tokens,
        },
    )
    .await
    .map_err(internal)?;
    session.cycle_id().await.map_err(internal)?;
    // Why an earlier sign-in ended is old news now.
    let _ = session.remove::<String>(SESSION_ENDED_KEY).await;
    session
        .insert(SESSION_SIGN_IN_KEY, sign_in_id)
        .await
        .map_err(internal)?;
    if let Some(token) = id_token {
        session
            .insert(ID_TOKEN_KEY, token.expose_secret())
            .await
            .map_err(internal)?;
    }
    berth_db::users::record_sign_in(&state.services.pool, user.id)
        .await
        .map_err(internal)?;
    let event = AuthEvent {
        user_id: Some(user.id),
        subject: Some(&user.subject),
        source_addr,
        reason: Some(reason),
    };
    audit(state, AuthEventKind::SignIn, event).await;
    tracing::info!(user_id = %user.id, roles = ?user.roles, reason, "signed in");
    Ok(())
}

/// The page to come back to after signing in, when `raw` is a path on this site: `/`, then
/// printable ASCII only (no spaces, controls or non-ASCII, which must come percent-encoded), no
/// backslash anywhere, never `//` or `/\` at the start (another host to a browser), so never a
/// scheme or a host either; and not the sign-in routes themselves. Anything else is refused: an
/// open redirect would let any link wear Berth's name.
pub fn local_return_to(raw: &str) -> Option<&str> {
    let ok = raw.len() <= 2048
        && raw.starts_with('/')
        && !raw.starts_with("//")
        && raw.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && !raw.starts_with("/auth/")
        && raw != "/auth";
    ok.then_some(raw)
}

/// [`local_return_to`], or `/` when `raw` is missing or refused.
fn return_to_or_home(raw: Option<&str>) -> &str {
    match raw.filter(|r| !r.is_empty()) {
        Some(r) => local_return_to(r).unwrap_or_else(|| {
            tracing::warn!(return_to = %r.escape_debug(), "sign-in: refused a return address");
            "/"
        }),
        None => "/",
    }
}

#[derive(Deserialize)]
pub struct DevLogin {
    user_id: Uuid,
    /// Where to go once signed in (checked by [`local_return_to`]).
    return_to: Option<String>,
}

/// Whether a request's `Host` names this machine's loopback (`localhost`, `127.0.0.0/8`,
/// `[::1]`, any port). The server only offers the development sign-in on a loopback address;
/// checking the name the browser used as well refuses a page on another name that resolves
/// here (DNS rebinding) from signing in as a demo user.
pub fn loopback_host(host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let Ok(url) = berth_auth::Url::parse(&format!("http://{host}/")) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// POST /auth/dev-login: signs in as a demo user (only routed when enabled, and only for a
/// request addressed to a loopback name).
pub async fn dev_login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    session: Session,
    Form(form): Form<DevLogin>,
) -> Response {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok());
    if !loopback_host(host) {
        tracing::warn!(
            host,
            "development sign-in refused: not addressed to loopback"
        );
        return (
            StatusCode::FORBIDDEN,
            "The development sign-in only answers on this machine's loopback address.",
        )
            .into_response();
    }
    let user = match berth_db::users::get(&state.services.pool, form.user_id).await {
        Ok(Some(u)) if u.issuer == DEMO_ISSUER => u,
        Ok(_) => return (StatusCode::FORBIDDEN, "Not a demo account.").into_response(),
        Err(e) => return internal(e),
    };
    let source_addr = Some(peer.ip().to_string());
    match sign_in(
        &state,
        &session,
        &user,
        None,
        source_addr,
        "development sign-in",
    )
    .await
    {
        Ok(()) => Redirect::to(return_to_or_home(form.return_to.as_deref())).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
}

/// GET /auth/login?return_to=/path: starts single sign-on (or shows the sign-in page when only
/// the development sign-in exists). `return_to` (checked by [`local_return_to`]; `/` when
/// refused) travels with the login in progress in its encrypted cookie and is followed after
/// the callback: nothing the browser sends later can change it. No session record is written
/// before someone has signed in, and each address may start only so many logins a minute. A
/// browser whose sign-in someone else ended goes to the sign-in page first, which says why.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Response {
    let return_to = return_to_or_home(q.return_to.as_deref());
    // A sign-in someone else ended is explained on the sign-in page first, rather than
    // straight back through the identity provider (which may well sign the person in again).
    let ended = matches!(session.get::<String>(SESSION_ENDED_KEY).await, Ok(Some(_)));
    let (Some(oidc), Some(cookie), false) =
        (state.oidc.as_ref(), state.login_cookie.as_ref(), ended)
    else {
        return Redirect::to(&login_page(return_to)).into_response();
    };
    if let Err(wait) = state.login_limiter.check(peer.ip()).await {
        tracing::warn!(addr = %peer.ip(), "too many sign-ins started from one address");
        let retry = wait.as_secs().max(1).to_string();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry)],
            "Too many sign-ins started from your address; please wait a moment.",
        )
            .into_response();
    }
    let client = match oidc.get().await {
        Ok(c) => c,
        Err(e) => return auth_error_page(&e),
    };
    let (url, pending) = client.begin_login(return_to);
    let set_cookie = match cookie.set(&pending) {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    let mut res = Redirect::to(url.as_str()).into_response();
    res.headers_mut().insert(header::SET_COOKIE, set_cookie);
    res
}

/// GET /auth/callback: the provider sends the browser back here with a code.
pub async fn callback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    let source_addr = Some(peer.ip().to_string());
    let (Some(oidc), Some(cookie)) = (state.oidc.as_ref(), state.login_cookie.as_ref()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Removed whatever happens next: a callback works at most once.
    let mut res = callback_inner(
        &state,
        oidc,
        cookie.read(&headers),
        &session,
        source_addr,
        &params,
    )
    .await;
    res.headers_mut().append(header::SET_COOKIE, cookie.clear());
    res
}

async fn callback_inner(
    state: &AppState,
    oidc: &berth_auth::LazyOidcClient,
    pending: Option<berth_auth::PendingLogin>,
    session: &Session,
    source_addr: Option<String>,
    params: &CallbackParams,
) -> Response {
    let result = match pending {
        None => Err(AuthError::NoPendingLogin),
        Some(pending) => match oidc.get().await {
            Ok(client) => client
                .complete_login(&pending, params)
                .await
                .map(|signed_in| (signed_in, pending.return_to)),
            Err(e) => Err(e),
        },
    };
    let (signed_in, return_to) = match result {
        Ok(ok) => ok,
        Err(e) => {
            tracing::warn!(kind = e.kind(), "sign-in failed");
            let event = AuthEvent {
                source_addr,
                reason: Some(e.kind()),
                ..AuthEvent::default()
            };
            audit(state, AuthEventKind::SignInFailed, event).await;
            return auth_error_page(&e);
        }
    };
    let name = signed_in
        .name
        .clone()
        .unwrap_or_else(|| signed_in.subject.clone());
    let user = match berth_db::users::upsert(
        &state.services.pool,
        &berth_db::users::Identity {
            issuer: &signed_in.issuer,
            subject: &signed_in.subject,
            display_name: &name,
            email: signed_in.email.as_deref(),
            roles: &signed_in.roles,
        },
    )
    .await
    {
        Ok(u) => u,
        Err(e) => return internal(e),
    };
    let reason = if signed_in.roles.is_empty() {
        "single sign-on, no Berth role"
    } else {
        "single sign-on"
    };
    let provider = Some((&signed_in.id_token, signed_in.tokens.clone()));
    match sign_in(state, session, &user, provider, source_addr, reason).await {
        // Checked when the login began; checked again, as it is about to be followed.
        Ok(()) => Redirect::to(return_to_or_home(Some(return_to.as_str()))).into_response(),
        Err(r) => r,
    }
}

/// POST /auth/logout: ends the session, then the provider's session when it offers that.
pub async fn logout(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
) -> Response {
    let sign_in_id: Option<Uuid> = session.get(SESSION_SIGN_IN_KEY).await.ok().flatten();
    let id_token: Option<String> = session.get(ID_TOKEN_KEY).await.ok().flatten();
    // The person whose sign-in this ends (none when it had ended already).
    let user_id = match sign_in_id {
        Some(id) => match sign_ins::end(
            &state.services.pool,
            id,
            sign_ins::EndReason::SignedOut,
            None,
        )
        .await
        {
            Ok(user) => user,
            Err(e) => return internal(e),
        },
        None => None,
    };
    if let Err(e) = session.flush().await {
        return internal(e);
    }
    if user_id.is_some() {
        let event = AuthEvent {
            user_id,
            source_addr: Some(peer.ip().to_string()),
            ..AuthEvent::default()
        };
        audit(&state, AuthEventKind::SignOut, event).await;
    }
    let end_session = match (state.oidc.as_ref().and_then(|o| o.get_ready()), id_token) {
        (Some(client), Some(token)) => {
            client.end_session_url(Some(&SecretString::from(token)), None)
        }
        _ => None,
    };
    match end_session {
        Some(url) => Redirect::to(url.as_str()).into_response(),
        None => Redirect::to("/").into_response(),
    }
}

/// The sign-in page, passing `return_to` on to the choices it offers.
fn login_page(return_to: &str) -> String {
    if return_to == "/" {
        "/login".to_owned()
    } else {
        use std::fmt::Write;
        let mut href = "/login?return_to=".to_owned();
        for b in return_to.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                href.push(b as char);
            } else {
                let _ = write!(href, "%{b:02X}");
            }
        }
        href
    }
}

/// A plain page explaining why sign-in failed; no session is created.
fn auth_error_page(e: &AuthError) -> Response {
    let status = if e.is_transient() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::BAD_REQUEST
    };
    let message = html_escape(&e.to_string());
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Sign-in failed · Berth</title><link rel=\"stylesheet\" href=\"/pkg/berth.css\"></head>\
         <body><main id=\"main\"><section class=\"panel narrow\"><h1>Sign-in failed</h1>\
         <p class=\"alert alert-error\" role=\"alert\">{message}</p>\
         <p><a class=\"button\" href=\"/auth/login\">Try again</a> <a href=\"/\">Back to Berth</a></p>\
         </section></main></body></html>"
    );
    (status, Html(body)).into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::{local_return_to, login_page, loopback_host, return_to_or_home};

    #[test]
    fn the_development_sign_in_answers_loopback_names_only() {
        for ok in [
            "127.0.0.1:3000",
            "localhost",
            "LOCALHOST:80",
            "[::1]:3000",
            "127.1.2.3",
        ] {
            assert!(loopback_host(Some(ok)), "{ok}");
        }
        for bad in [
            "berth.example.com",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "10.0.0.1:3000",
            "[::2]",
            "",
            "a b",
        ] {
            assert!(!loopback_host(Some(bad)), "{bad}");
        }
        assert!(!loopback_host(None));
    }

    #[test]
    fn only_paths_on_this_site_are_followed() {
        for ok in [
            "/",
            "/audit",
            "/environments/42?kind=runs&page=2",
            "/%2F%2Fevil.example",
        ] {
            assert_eq!(local_return_to(ok), Some(ok), "{ok}");
        }
        for hostile in [
            "",
            "audit",
            "//evil.example",
            "//evil.example/path",
            "/\\evil.example",
            "\\\\evil.example",
            "/a\\b",
            "https://evil.example/",
            "javascript:alert(1)",
            "http:/evil.example",
            " /audit",
            "/\t/evil.example",
            "/a\nLocation: https://evil.example",
            "/a\rb",
            "/caf\u{e9}",
            "/a b",
            "/auth/login?return_to=//evil.example",
            "/auth/logout",
            "/auth",
        ] {
            assert_eq!(local_return_to(hostile), None, "{hostile:?}");
            assert_eq!(return_to_or_home(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(local_return_to(&format!("/{}", "a".repeat(3000))), None);
        assert_eq!(return_to_or_home(None), "/");
    }

    #[test]
    fn the_sign_in_page_passes_the_return_address_on() {
        assert_eq!(login_page("/"), "/login");
        assert_eq!(
            login_page("/audit?status=ready&q=x"),
            "/login?return_to=/audit%3Fstatus%3Dready%26q%3Dx"
        );
    }
}
