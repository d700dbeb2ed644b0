use super::*;

#[test]
fn helm_statuses_parse_once_and_keep_their_spelling() {
    for s in [
        "deployed",
        "failed",
        "pending-install",
        "pending-upgrade",
        "pending-rollback",
        "superseded",
        "uninstalling",
        "uninstalled",
        "unknown",
        "",
        "pending-something-new",
        "Deployed",
    ] {
        assert_eq!(HelmStatus::parse(s).as_str(), s);
        assert_eq!(HelmStatus::parse(s).to_string(), s);
    }
    assert_eq!(HelmStatus::parse("failed"), HelmStatus::Failed);
    assert_eq!(
        HelmStatus::parse("Deployed"),
        HelmStatus::Other("Deployed".into()),
        "Helm's spelling is lowercase; anything else is not taken for deployed"
    );
}

#[test]
fn pending_means_helm_refuses_another_action() {
    let pending: Vec<&str> = [
        "deployed",
        "failed",
        "pending-install",
        "pending-upgrade",
        "pending-rollback",
        "superseded",
        "uninstalling",
        "uninstalled",
        "unknown",
        "",
        "pending-something-new",
    ]
    .into_iter()
    .filter(|s| HelmStatus::parse(s).is_pending())
    .collect();
    assert_eq!(
        pending,
        [
            "pending-install",
            "pending-upgrade",
            "pending-rollback",
            "uninstalling",
            "pending-something-new"
        ]
    );
}

#[test]
fn app_status_reads_the_helm_status() {
    let app = AppStatus::from_json(&json!({
        "metadata": {"name": "influxdb", "namespace": "ns"},
        "spec": {"info": {"status": "pending-upgrade"}, "version": 3}
    }));
    assert_eq!(app.status, HelmStatus::PendingUpgrade);
    assert!(app.is_pending());
    let missing = AppStatus::from_json(&json!({"spec": {}}));
    assert_eq!(missing.status, HelmStatus::Other(String::new()));
    assert!(!missing.is_pending());
}
