//! Sign-in against the real local provider (tools/test-idp), through its login form.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use berth_auth::{
    AuthError, CallbackParams, GroupsSource, OidcClient, PendingLogin, SignedIn, TokenProblem,
};
use berth_domain::Role;
use common::*;
use secrecy::{ExposeSecret, SecretString};

/// Starts a provider and discovers it; returns from the test (skip) when node is missing.
macro_rules! setup {
    ($opts:expr) => {{
        let Some(idp) = TestIdp::start($opts).await else {
            return;
        };
        let client = OidcClient::discover(idp.settings())
            .await
            .expect("discovery");
        (idp, client)
    }};
    () => {
        setup!(IdpOptions::default())
    };
}

/// Begins a login and signs in at the provider; the callback parameters and the pending login.
async fn callback_for(client: &OidcClient, user: &str) -> (PendingLogin, CallbackParams) {
    let (url, pending) = client.begin_login("/requests?mine=1");
    match Browser::new().sign_in(&url, user, password(user)).await {
        Outcome::Callback(params) => (pending, params),
        Outcome::LoginRejected(status, html) => {
            panic!("login of {user} rejected ({status}):\n{html}")
        }
    }
}

async fn sign_in(client: &OidcClient, user: &str) -> SignedIn {
    let (pending, params) = callback_for(client, user).await;
    client
        .complete_login(&pending, &params)
        .await
        .expect("complete_login")
}

#[tokio::test]
async fn every_demo_user_gets_the_roles_of_their_groups() {
    let (idp, client) = setup!();
    let expected: &[(&str, &str, &[Role])] = &[
        ("maria", "Maria Manager", &[Role::Manager]),
        ("mark", "Mark Manager", &[Role::Manager]),
        ("ada", "Ada Admin", &[Role::Admin]),
        ("alan", "Alan Admin", &[Role::Admin]),
        ("audrey", "Audrey Auditor", &[Role::Auditor]),
        ("sam", "Sam Superuser", &[Role::Manager, Role::Admin]),
        ("nora", "Nora Nobody", &[]),
    ];
    for (user, name, roles) in expected {
        let (pending, params) = callback_for(&client, user).await;
        assert_eq!(pending.return_to, "/requests?mine=1");
        let signed_in = client
            .complete_login(&pending, &params)
            .await
            .expect("complete_login");
        assert_eq!(signed_in.issuer, idp.issuer);
        assert_eq!(signed_in.subject, *user);
        assert_eq!(signed_in.name.as_deref(), Some(*name));
        assert_eq!(
            signed_in.email.as_deref(),
            Some(format!("{user}@seaview.example").as_str())
        );
        assert_eq!(signed_in.preferred_username.as_deref(), Some(*user));
        assert_eq!(signed_in.roles, *roles, "{user}");
        assert_eq!(signed_in.groups_source, GroupsSource::IdToken);
        // The raw ID token is kept, but never printed.
        assert_eq!(signed_in.id_token.expose_secret().split('.').count(), 3);
        assert!(!format!("{signed_in:?}").contains(signed_in.id_token.expose_secret()));
    }
}

#[tokio::test]
async fn a_wrong_password_fails_visibly_and_the_form_can_be_retried() {
    let (_idp, client) = setup!();
    let (url, pending) = client.begin_login("/");
    let browser = Browser::new();
    let (status, page, _) = browser.navigate(url).await.expect("login page");
    assert_eq!(status, 200);
    match browser.submit_login(&page, "ada", "maria-demo").await {
        Outcome::LoginRejected(status, html) => {
            assert_eq!(status, 401);
            assert!(html.contains("Invalid username or password."), "{html}");
            assert!(html.contains("value=\"ada\""), "username kept: {html}");
        }
        Outcome::Callback(p) => panic!("a wrong password signed in: {p:?}"),
    }
    match browser.submit_login(&page, "nobody", "x").await {
        Outcome::LoginRejected(status, _) => assert_eq!(status, 401),
        Outcome::Callback(p) => panic!("an unknown user signed in: {p:?}"),
    }
    let Outcome::Callback(params) = browser.submit_login(&page, "ada", "ada-demo").await else {
        panic!("the right password was refused")
    };
    let user = client.complete_login(&pending, &params).await.unwrap();
    assert_eq!(user.roles, vec![Role::Admin]);
}

#[tokio::test]
async fn tampered_or_missing_state_is_refused_before_the_code_is_used() {
    let (_idp, client) = setup!();
    let (pending, params) = callback_for(&client, "maria").await;

    let mut tampered = params.clone();
    tampered.state = Some(format!("{}x", params.state.clone().unwrap()));
    assert!(matches!(
        client.complete_login(&pending, &tampered).await,
        Err(AuthError::StateMismatch)
    ));

    let mut missing = params.clone();
    missing.state = None;
    assert!(matches!(
        client.complete_login(&pending, &missing).await,
        Err(AuthError::StateMismatch)
    ));

    // A callback from another login attempt (its own valid state) does not fit this one.
    let (_, other_pending) = client.begin_login("/");
    assert!(matches!(
        client.complete_login(&other_pending, &params).await,
        Err(AuthError::StateMismatch)
    ));

    // Nothing was exchanged: the genuine callback still works.
    let user = client.complete_login(&pending, &params).await.unwrap();
    assert_eq!(user.subject, "maria");
}

#[tokio::test]
async fn a_reused_code_is_refused() {
    let (_idp, client) = setup!();
    let (pending, params) = callback_for(&client, "mark").await;
    client.complete_login(&pending, &params).await.unwrap();
    let err = client.complete_login(&pending, &params).await.unwrap_err();
    match &err {
        AuthError::CodeExchange { code, .. } => assert_eq!(code, "invalid_grant"),
        other => panic!("expected a refused code exchange, got {other:?}"),
    }
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(params.code.as_deref().unwrap()),
        "code leaked: {shown}"
    );
    assert!(
        !shown.contains(pending.pkce_verifier.expose_secret()),
        "verifier leaked: {shown}"
    );
}

#[tokio::test]
async fn a_response_from_another_issuer_is_refused() {
    let (idp, client) = setup!();
    let (pending, params) = callback_for(&client, "ada").await;
    assert_eq!(
        params.iss.as_deref(),
        Some(idp.issuer.as_str()),
        "the provider sends iss"
    );

    let mut other = params.clone();
    other.iss = Some("http://127.0.0.1:1".into());
    assert!(matches!(
        client.complete_login(&pending, &other).await,
        Err(AuthError::IssuerMismatch)
    ));
    let mut trailing_slash = params.clone();
    trailing_slash.iss = Some(format!("{}/", idp.issuer));
    assert!(matches!(
        client.complete_login(&pending, &trailing_slash).await,
        Err(AuthError::IssuerMismatch)
    ));
    // The provider advertises RFC 9207 support, so a missing iss is refused as well.
    let mut missing = params.clone();
    missing.iss = None;
    assert!(matches!(
        client.complete_login(&pending, &missing).await,
        Err(AuthError::IssuerMismatch)
    ));

    client.complete_login(&pending, &params).await.unwrap();
}

#[tokio::test]
async fn a_nonce_mismatch_is_refused() {
    let (_idp, client) = setup!();
    let (mut pending, params) = callback_for(&client, "audrey").await;
    pending.nonce = SecretString::from("not-the-nonce-that-was-sent".to_owned());
    let err = client.complete_login(&pending, &params).await.unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidToken(TokenProblem::NonceMismatch)),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    let (_idp, client) = setup!();
    // The provider issues ID tokens valid for 10 minutes; Berth's clock says it is an hour later
    // (the login itself is fresh by that clock).
    let later = client
        .clone()
        .with_clock(|| time::OffsetDateTime::now_utc() + time::Duration::hours(1));
    let (pending, params) = callback_for(&later, "alan").await;
    let err = later.complete_login(&pending, &params).await.unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidToken(TokenProblem::Expired)),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "the identity token was rejected: expired");
}

#[tokio::test]
async fn a_login_that_took_too_long_is_refused() {
    let (_idp, client) = setup!();
    let (mut pending, params) = callback_for(&client, "alan").await;
    pending.created_at -= time::Duration::minutes(11);
    assert!(matches!(
        client.complete_login(&pending, &params).await,
        Err(AuthError::LoginExpired)
    ));
}

#[tokio::test]
async fn cancelling_at_the_provider_is_an_idp_error() {
    let (_idp, client) = setup!();
    let (url, pending) = client.begin_login("/");
    let browser = Browser::new();
    let (_, page, _) = browser.navigate(url).await.expect("login page");
    let params = browser.cancel(&page).await;
    let err = client.complete_login(&pending, &params).await.unwrap_err();
    match err {
        AuthError::IdpError { code, description } => {
            assert_eq!(code, "access_denied");
            assert_eq!(
                description.as_deref(),
                Some("The user cancelled the sign-in.")
            );
        }
        other => panic!("expected an IdP error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_provider_that_is_down_gives_a_clear_error() {
    // Nothing listens: discovery fails as "unreachable".
    let port = free_port();
    let Some(idp) = TestIdp::start(IdpOptions::default()).await else {
        return;
    };
    let settings = idp.settings_with(&[(
        berth_auth::settings::env::ISSUER,
        &format!("http://127.0.0.1:{port}"),
    )]);
    let err = OidcClient::discover(settings)
        .await
        .err()
        .expect("discovery must fail");
    assert!(
        matches!(
            err,
            AuthError::Unreachable {
                endpoint: "discovery",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        "the identity provider is unreachable right now; please try again later"
    );

    // The provider goes away between the redirect and the code exchange.
    let mut idp = idp;
    let client = OidcClient::discover(idp.settings()).await.unwrap();
    let (pending, params) = callback_for(&client, "maria").await;
    idp.stop();
    let err = client.complete_login(&pending, &params).await.unwrap_err();
    assert!(
        matches!(
            err,
            AuthError::Unreachable {
                endpoint: "token",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn groups_come_from_userinfo_when_the_id_token_lacks_them() {
    let (_idp, client) = setup!(IdpOptions {
        groups_in_id_token: false,
        ..Default::default()
    });
    let user = sign_in(&client, "sam").await;
    assert_eq!(user.groups_source, GroupsSource::UserInfo);
    assert_eq!(user.groups, vec!["berth-managers", "berth-admins"]);
    assert_eq!(user.roles, vec![Role::Manager, Role::Admin]);
    let nora = sign_in(&client, "nora").await;
    assert_eq!(nora.groups_source, GroupsSource::UserInfo);
    assert!(nora.roles.is_empty());
}

#[tokio::test]
async fn a_groups_claim_found_nowhere_means_no_roles() {
    let Some(idp) = TestIdp::start(IdpOptions::default()).await else {
        return;
    };
    let settings = idp.settings_with(&[(berth_auth::settings::env::GROUPS_CLAIM, "berth_roles")]);
    let client = OidcClient::discover(settings).await.unwrap();
    let user = sign_in(&client, "ada").await;
    assert_eq!(user.groups_source, GroupsSource::Missing);
    assert!(user.groups.is_empty());
    assert!(user.roles.is_empty(), "no default role: {:?}", user.roles);
}

#[tokio::test]
async fn pkce_is_always_s256_and_enforced() {
    let (_idp, client) = setup!();
    let (url, _) = client.begin_login("/");
    assert_eq!(
        query_param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        query_param(&url, "code_challenge").map(|c| c.len()),
        Some(43)
    );
    assert_eq!(query_param(&url, "response_type").as_deref(), Some("code"));
    let scope = query_param(&url, "scope").unwrap();
    assert_eq!(
        scope.split(' ').filter(|s| *s == "openid").count(),
        1,
        "{scope}"
    );

    // The provider refuses a request without a challenge, or with `plain`.
    for (drop, replace) in [
        (Some("code_challenge"), None),
        (None, Some(("code_challenge_method", "plain"))),
    ] {
        let mut bad = url.clone();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| Some(k.as_ref()) != drop && Some(k.as_ref()) != replace.map(|r| r.0))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        bad.query_pairs_mut().clear().extend_pairs(pairs);
        if let Some((k, v)) = replace {
            bad.query_pairs_mut().append_pair(k, v);
        }
        let params = match Browser::new().navigate(bad).await {
            Err(params) => params,
            Ok((status, _, html)) => panic!("expected an error redirect, got {status}:\n{html}"),
        };
        assert_eq!(
            params.error.as_deref(),
            Some("invalid_request"),
            "{params:?}"
        );
    }

    // A code is only exchanged with the verifier that belongs to its challenge.
    let (mut pending, params) = callback_for(&client, "maria").await;
    let (_, other) = client.begin_login("/");
    pending.pkce_verifier = other.pkce_verifier;
    match client.complete_login(&pending, &params).await {
        Err(AuthError::CodeExchange { code, .. }) => assert_eq!(code, "invalid_grant"),
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}

#[tokio::test]
async fn tokens_from_another_issuer_or_with_a_bad_signature_are_refused() {
    // Two providers sharing one signing key and client: only the issuer differs.
    let keys = TempDir::new();
    let key_file = keys.0.join("jwks.json");
    let opts = IdpOptions {
        key_file: Some(key_file),
        ..Default::default()
    };
    let (_a, client_a) = setup!(opts.clone());
    let (_b, client_b) = setup!(opts);
    let (pending_b, params_b) = callback_for(&client_b, "ada").await;
    let token_b = client_b
        .complete_login(&pending_b, &params_b)
        .await
        .unwrap()
        .id_token;
    let nonce_b = pending_b.nonce.expose_secret();

    // B's own client accepts it; A's refuses it for its issuer.
    client_b
        .verify_id_token(token_b.expose_secret(), nonce_b)
        .await
        .unwrap();
    let err = client_a
        .verify_id_token(token_b.expose_secret(), nonce_b)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidToken(TokenProblem::WrongIssuer)),
        "{err:?}"
    );

    // One flipped bit in the signature.
    let raw = token_b.expose_secret();
    let (head, sig) = raw.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let forged = format!("{head}.{flipped}{}", &sig[1..]);
    let err = client_b
        .verify_id_token(&forged, nonce_b)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidToken(TokenProblem::BadSignature)),
        "{err:?}"
    );

    // Other claims (ada made sam) under the original signature.
    let parts: Vec<&str> = raw.split('.').collect();
    let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert!(claims.contains("\"sub\":\"ada\""), "{claims}");
    let swapped = URL_SAFE_NO_PAD.encode(claims.replace("\"sub\":\"ada\"", "\"sub\":\"sam\""));
    let forged = format!("{}.{swapped}.{}", parts[0], parts[2]);
    let err = client_b
        .verify_id_token(&forged, nonce_b)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidToken(TokenProblem::BadSignature)),
        "{err:?}"
    );

    let err = client_b
        .verify_id_token("not.a.jwt", nonce_b)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidToken(TokenProblem::Malformed)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_rotated_signing_key_is_picked_up_by_rediscovery() {
    let port = free_port();
    let Some(mut first) = TestIdp::start(IdpOptions {
        port: Some(port),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let client = OidcClient::discover(first.settings()).await.unwrap();
    first.stop();
    // Same issuer and port, a new key (its own key file).
    let second = TestIdp::start(IdpOptions {
        port: Some(port),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_ne!(
        std::fs::read_to_string(&first.key_file).unwrap(),
        std::fs::read_to_string(&second.key_file).unwrap()
    );
    let user = sign_in(&client, "maria").await;
    assert_eq!(user.roles, vec![Role::Manager]);
}

#[tokio::test]
async fn discovery_refuses_an_issuer_that_differs_in_spelling() {
    let Some(idp) = TestIdp::start(IdpOptions::default()).await else {
        return;
    };
    let spelled = format!("http://localhost:{}", idp.port);
    let settings = idp.settings_with(&[(berth_auth::settings::env::ISSUER, &spelled)]);
    let err = OidcClient::discover(settings)
        .await
        .err()
        .expect("issuer mismatch");
    match &err {
        AuthError::ProviderResponse {
            endpoint: "discovery",
            detail,
        } => {
            assert!(detail.contains("issuer"), "{detail}")
        }
        other => panic!("expected a discovery error, got {other:?}"),
    }
}

#[tokio::test]
async fn logout_ends_the_session_at_the_provider() {
    let (_idp, client) = setup!();
    let (url, pending) = client.begin_login("/");
    let browser = Browser::new();
    let Outcome::Callback(params) = browser.sign_in(&url, "ada", "ada-demo").await else {
        panic!("login failed")
    };
    let user = client.complete_login(&pending, &params).await.unwrap();

    // Same browser, new login: the provider's session signs in without a form.
    let (again, _) = client.begin_login("/");
    assert!(
        browser.navigate(again).await.is_err(),
        "SSO session reuse expected"
    );
    // ...unless Berth asks for the form (prompt=login).
    let (forced, _) = client.begin_login_with("/", true);
    assert_eq!(query_param(&forced, "prompt").as_deref(), Some("login"));
    let (status, _, html) = browser
        .navigate(forced)
        .await
        .expect("login form with prompt=login");
    assert_eq!(status, 200);
    assert!(html.contains(">Sign in</button>"));

    let end = client
        .end_session_url(Some(&user.id_token), None)
        .expect("end_session_endpoint");
    assert_eq!(query_param(&end, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        query_param(&end, "post_logout_redirect_uri").as_deref(),
        Some(POST_LOGOUT_URI)
    );
    assert_eq!(
        query_param(&end, "id_token_hint").as_deref(),
        Some(user.id_token.expose_secret())
    );

    // The provider's confirmation page (auto-submitted by script in a real browser).
    let (status, page, html) = browser.navigate(end).await.expect("logout page");
    assert_eq!(status, 200, "{html}");
    let xsrf = html
        .split("name=\"xsrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("xsrf field");
    let action = page.join("/session/end/confirm").unwrap();
    let resp = browser
        .post_form(action, &[("xsrf", xsrf), ("logout", "yes")])
        .await;
    assert!(resp.status().is_redirection(), "{}", resp.status());
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        POST_LOGOUT_URI
    );

    // Signed out there: the next login shows the form again.
    let (again, _) = client.begin_login("/");
    let (status, _, html) = browser
        .navigate(again)
        .await
        .expect("login form after logout");
    assert_eq!(status, 200);
    assert!(html.contains(">Sign in</button>"));
}

#[tokio::test]
async fn a_lazy_client_waits_for_a_provider_that_starts_late() {
    let port = free_port();
    let Some(mut early) = TestIdp::start(IdpOptions {
        port: Some(port),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    // Same settings as the provider on `port`, which is down when Berth starts.
    let settings = early.settings();
    early.stop();
    let lazy = berth_auth::LazyOidcClient::new(settings);
    let err = lazy.get().await.err().expect("provider is down");
    assert!(
        matches!(
            err,
            AuthError::Unreachable {
                endpoint: "discovery",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(lazy.get_ready().is_none());

    let _late = TestIdp::start(IdpOptions {
        port: Some(port),
        ..Default::default()
    })
    .await
    .unwrap();
    let client = lazy
        .get()
        .await
        .expect("discovered once the provider is up");
    let user = sign_in(client, "audrey").await;
    assert_eq!(user.roles, vec![Role::Auditor]);
    assert!(lazy.get_ready().is_some());
}
