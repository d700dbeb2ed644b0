//! What `complete_login` refuses on the way back from the provider, before or at the code
//! exchange: `state`, `iss`, the login's age, a reused code, a cancelled login, PKCE.

use berth_auth::AuthError;
use secrecy::ExposeSecret;

use crate::common::*;

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
