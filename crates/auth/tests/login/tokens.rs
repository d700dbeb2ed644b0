//! ID token checks: nonce, expiry, issuer, forged signatures and claims, and signing-key
//! rotation picked up by rediscovery.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use berth_auth::{AuthError, OidcClient, TokenProblem};
use berth_domain::Role;
use secrecy::{ExposeSecret, SecretString};

use crate::common::*;

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
