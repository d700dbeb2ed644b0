//! Groups asked again during a session: a group removed at the provider (or a person removed)
//! is seen at the next re-check, through the refresh token or, without one, UserInfo.

use std::path::{Path, PathBuf};

use berth_auth::{RecheckError, SignedIn};
use berth_domain::Role;

use crate::common::*;

/// A copy of the demo users the test may change while the provider runs.
fn users_copy(dir: &TempDir) -> PathBuf {
    let path = dir.0.join("users.json");
    std::fs::copy(idp_dir().join("users.json"), &path).expect("copy users.json");
    path
}

/// Rewrites `user`'s groups in the users file (`None` removes the person).
fn set_groups(path: &Path, user: &str, groups: Option<&[&str]>) {
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let users = doc["users"].as_object_mut().unwrap();
    match groups {
        Some(g) => users[user]["groups"] = serde_json::json!(g),
        None => {
            users.remove(user);
        }
    }
    // A new file renamed into place: the provider never reads half of one, and its mtime moves.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn recheck(
    client: &berth_auth::OidcClient,
    who: &SignedIn,
) -> Result<Vec<Role>, RecheckError> {
    client
        .recheck(&who.subject, &who.tokens)
        .await
        .map(|r| r.roles)
}

#[tokio::test]
async fn a_removed_group_is_seen_through_the_refresh_token() {
    let dir = TempDir::new();
    let users = users_copy(&dir);
    let (_idp, client) = setup!(IdpOptions {
        users_file: Some(users.clone()),
        ..IdpOptions::default()
    });
    let mut sam = sign_in(&client, "sam").await;
    assert!(
        sam.tokens.refresh_token.is_some(),
        "the provider gave a refresh token"
    );
    assert_eq!(
        recheck(&client, &sam).await.unwrap(),
        [Role::Manager, Role::Admin]
    );

    set_groups(&users, "sam", Some(&["berth-managers"]));
    let again = client.recheck(&sam.subject, &sam.tokens).await.unwrap();
    assert_eq!(again.roles, [Role::Manager]);
    assert_eq!(again.groups, ["berth-managers"]);
    // The provider rotates refresh tokens now and then; the one it gave last is kept.
    sam.tokens = again.tokens;
    assert_eq!(recheck(&client, &sam).await.unwrap(), [Role::Manager]);

    set_groups(&users, "sam", None);
    let err = recheck(&client, &sam).await.unwrap_err();
    assert!(matches!(err, RecheckError::Refused(_)), "{err:?}");
}

#[tokio::test]
async fn without_a_refresh_token_userinfo_answers_while_the_access_token_lasts() {
    let dir = TempDir::new();
    let users = users_copy(&dir);
    let (_idp, client) = setup!(IdpOptions {
        users_file: Some(users.clone()),
        refresh_tokens: false,
        ..IdpOptions::default()
    });
    let ada = sign_in(&client, "ada").await;
    assert!(ada.tokens.refresh_token.is_none());
    assert!(ada.tokens.access_expires_at.is_some());
    assert_eq!(recheck(&client, &ada).await.unwrap(), [Role::Admin]);

    set_groups(&users, "ada", Some(&[]));
    assert_eq!(recheck(&client, &ada).await.unwrap(), Vec::<Role>::new());

    // An hour later by Berth's clock the access token has expired: nothing left to ask with.
    let later = client
        .clone()
        .with_clock(|| time::OffsetDateTime::now_utc() + time::Duration::hours(1));
    let err = recheck(&later, &ada).await.unwrap_err();
    assert!(
        matches!(&err, RecheckError::Refused(why) if why.contains("expired")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_is_not_a_refusal() {
    let (mut idp, client) = setup!();
    let maria = sign_in(&client, "maria").await;
    idp.stop();
    let err = recheck(&client, &maria).await.unwrap_err();
    assert!(matches!(err, RecheckError::Unavailable(_)), "{err:?}");
}
