//! Discovery: a provider that is down (now, or until later for the lazy client) and an issuer
//! spelled differently from what the provider says.

use berth_auth::{AuthError, OidcClient};
use berth_domain::Role;

use crate::common::*;

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
