//! Kubernetes Secrets through Rancher's proxy against the simulator: create, no-op, update,
//! a concurrent creation and a stale write (409s), type changes, faults retried, and no
//! secret value in any error.

mod common;

use berth_rancher::{KubeSecret, RancherError, SecretOutcome};
use berth_rancher_sim::Faults;
use common::{prepare, sim_harness, unique};
use secrecy::SecretString;

#[tokio::test]
async fn creates_then_leaves_alone_then_updates() {
    let (sim, client) = sim_harness().await;
    let ns = unique("sec");
    let t = prepare(&client, &ns).await.target;
    let db = KubeSecret::opaque("trucking-db")
        .with("influxdb-user", "trucking")
        .with("influxdb-password", "pa: ss#word")
        .with_label("app.kubernetes.io/managed-by", "berth");
    let ensure = |s: KubeSecret| {
        let (client, t) = (client.clone(), t.clone());
        async move { client.ensure_secret(&t.cluster_id, &t.namespace, &s).await }
    };
    assert_eq!(ensure(db.clone()).await.unwrap(), SecretOutcome::Created);
    assert_eq!(ensure(db.clone()).await.unwrap(), SecretOutcome::Unchanged);
    assert_eq!(sim.count("POST k8s secret"), 1);
    assert_eq!(sim.count("PUT k8s secret"), 0);

    let stored = sim.secrets(&ns);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].name, "trucking-db");
    assert_eq!(stored[0].kind, "Opaque");
    assert_eq!(stored[0].data["influxdb-password"], "pa: ss#word");
    assert_eq!(stored[0].labels["app.kubernetes.io/managed-by"], "berth");

    // A changed value (and a key dropped) replaces the Secret's data.
    let changed = KubeSecret::opaque("trucking-db")
        .with("influxdb-password", "rotated")
        .with_label("app.kubernetes.io/managed-by", "berth");
    assert_eq!(ensure(changed).await.unwrap(), SecretOutcome::Updated);
    let stored = sim.secrets(&ns);
    assert_eq!(stored[0].data.len(), 1);
    assert_eq!(stored[0].data["influxdb-password"], "rotated");

    // Type change: Kubernetes refuses it on a replace, so the Secret is re-created.
    let pull = KubeSecret::docker_registry(
        "trucking-db",
        "registry.example",
        "robot",
        &SecretString::from("pull-pass"),
    );
    assert_eq!(ensure(pull).await.unwrap(), SecretOutcome::Created);
    let stored = sim.secrets(&ns);
    assert_eq!(stored[0].kind, "kubernetes.io/dockerconfigjson");
    assert!(stored[0].data[".dockerconfigjson"].contains("pull-pass"));
    assert_eq!(sim.count("DELETE k8s secret"), 1);

    assert!(client
        .delete_secret(&t.cluster_id, &t.namespace, "trucking-db")
        .await
        .unwrap());
    assert!(!client
        .delete_secret(&t.cluster_id, &t.namespace, "trucking-db")
        .await
        .unwrap());
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried() {
    let (sim, client) = sim_harness().await;
    let ns = unique("sec");
    let t = prepare(&client, &ns).await.target;
    sim.set_faults(Faults {
        target: "/secrets".into(),
        server_errors: 2,
        rate_limited: 1,
        ..Faults::default()
    });
    let s = KubeSecret::opaque("u-oauth").with("clientSecret", "oauth-secret");
    assert_eq!(
        client
            .ensure_secret(&t.cluster_id, &t.namespace, &s)
            .await
            .unwrap(),
        SecretOutcome::Created
    );
    assert_eq!(sim.secrets(&ns)[0].data["clientSecret"], "oauth-secret");
}

#[tokio::test]
async fn errors_never_carry_a_value() {
    let (sim, client) = sim_harness().await;
    let s = KubeSecret::opaque("u-s3").with("secretAccessKey", "s3-very-secret");
    // The namespace does not exist: a Kubernetes Status error.
    let err = client
        .ensure_secret("c-m-berth001", "no-such-ns", &s)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    assert!(!format!("{err} {err:?}").contains("s3-very-secret"));

    // The tunnel is down: retried, then reported without the body we sent.
    sim.set_faults(Faults {
        tunnel_down: true,
        ..Faults::default()
    });
    let err = client
        .ensure_secret("c-m-berth001", "no-such-ns", &s)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RancherError::ClusterUnreachable { .. }),
        "{err}"
    );
    assert!(err.is_transient());
    assert!(!format!("{err} {err:?}").contains("s3-very-secret"));
}
