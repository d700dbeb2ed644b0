//! The rest of an environment's life against the simulator, in both modes: upgrades with
//! per-chart `resetValues`, Helm history, rollback (also after a failed upgrade, and never twice),
//! uninstall, namespace and project deletion, and the decommission proof reads.

mod common;

use std::time::Duration;

use berth_rancher::{
    AppsMode, CatalogScope, ChartAction, ChartSpec, HelmStatus, LegacyCatalog, RancherClient,
    RancherError, UninstallOutcome,
};
use berth_rancher_sim::{RancherSim, SimConfig};
use common::{prepare, sim_harness, test_config};
use serde_json::{json, Value};

fn influx(version: &str, values: Value) -> ChartSpec {
    ChartSpec {
        release: "influxdb".into(),
        repo: "stable".into(),
        chart: "influxdb".into(),
        version: version.into(),
        values,
        wait: true,
        timeout: Duration::from_secs(2),
    }
}

async fn legacy_sim() -> (RancherSim, RancherClient) {
    let sim = RancherSim::start(SimConfig {
        legacy_apps: true,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let client = RancherClient::new(test_config(&sim.url(), sim.admin_token())).unwrap();
    (sim, client)
}

fn legacy_mode(project_id: &str) -> AppsMode {
    AppsMode::Legacy {
        project_id: project_id.into(),
        catalog: LegacyCatalog {
            name: "stable".into(),
            scope: CatalogScope::Cluster {
                qualified_with: None,
            },
        },
    }
}

/// (revision, version, values, status, description) of the simulator's Helm history.
fn sim_history(sim: &RancherSim, ns: &str) -> Vec<(u32, String, Value, String, String)> {
    sim.release_history(ns, "influxdb")
        .expect("release exists")
        .into_iter()
        .map(|r| (r.revision, r.version, r.values, r.status, r.description))
        .collect()
}

#[tokio::test]
async fn reset_values_is_sent_per_chart_so_omitted_keys_do_not_stick() {
    let (sim, client) = sim_harness().await;
    let t = prepare(&client, "seaview-reset").await.target;
    client
        .deploy_chart(&t, &influx("4.3.2", json!({"admin": {"user": "a"}})))
        .await
        .unwrap();
    // Empty values: with `resetValues` where Rancher reads it (charts[i]) this is "chart
    // defaults"; sent at the top level Rancher drops it and Helm silently reuses the old values.
    let up = client
        .deploy_chart(&t, &influx("4.4.0", json!({})))
        .await
        .unwrap();
    assert_eq!(up.action, ChartAction::Upgraded);
    assert_eq!(up.previous_revision, Some(1));
    let app = client.get_app(&t, "influxdb").await.unwrap().unwrap();
    assert_eq!(app.values, json!({}), "the old key must not be kept");
    assert_eq!(app.chart_version, "4.4.0");
    let again = client
        .deploy_chart(&t, &influx("4.4.0", json!({})))
        .await
        .unwrap();
    assert_eq!(again.action, ChartAction::Unchanged);
    assert_eq!(sim.count("POST clusterrepo action=upgrade"), 1);
}

#[tokio::test]
async fn v2_upgrade_history_and_rollback_once() {
    let (sim, client) = sim_harness().await;
    let t = prepare(&client, "seaview-rb").await.target;
    let mode = AppsMode::Apps;
    let v1 = json!({"retention": "7d"});
    let first = client
        .deploy(&mode, &t, &influx("4.3.2", v1.clone()))
        .await
        .unwrap();
    assert_eq!((first.action, first.revision), (ChartAction::Installed, 1));
    assert_eq!(first.previous_revision, None);
    let up = client
        .deploy(&mode, &t, &influx("4.4.0", json!({"retention": "30d"})))
        .await
        .unwrap();
    assert_eq!((up.action, up.revision), (ChartAction::Upgraded, 2));
    assert_eq!(up.previous_revision, Some(1));

    let history = client.history(&mode, &t, "influxdb").await.unwrap();
    let seen: Vec<_> = history
        .iter()
        .map(|r| (r.revision, r.chart_version.as_str(), r.status.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (1, "4.3.2", HelmStatus::Superseded),
            (2, "4.4.0", HelmStatus::Deployed)
        ]
    );
    assert_eq!(history[0].values, v1);
    assert_eq!(history[0].repo.as_deref(), Some("stable"));

    let rb = client
        .rollback(&mode, &t, "influxdb", 1, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(rb.action, ChartAction::RolledBack);
    assert_eq!(rb.revision, 3);
    assert_eq!(rb.chart_version, "4.3.2");
    assert_eq!(rb.previous_revision, Some(2));
    let ns = &t.namespace;
    let h = sim_history(&sim, ns);
    assert_eq!(h.len(), 3);
    assert_eq!(
        (&h[2].1, &h[2].2, h[2].3.as_str(), h[2].4.as_str()),
        (&"4.3.2".to_owned(), &v1, "deployed", "Rollback to 1"),
        "revision 3 is revision 1 again"
    );
    assert_eq!(h[1].3, "superseded");
    let state = client
        .release_status(&mode, &t, "influxdb")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (state.revision, state.chart_version.as_str(), state.status),
        (3, "4.3.2", HelmStatus::Deployed)
    );

    // A repeated call (say after a crash) sees the release already there: nothing is sent.
    let upgrades = sim.count("POST clusterrepo action=upgrade");
    let again = client
        .rollback(&mode, &t, "influxdb", 1, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!((again.action, again.revision), (ChartAction::Unchanged, 3));
    assert_eq!(sim.count("POST clusterrepo action=upgrade"), upgrades);
    assert_eq!(sim.count("helm rollback"), 1);
    assert_eq!(sim_history(&sim, ns).len(), 3);

    match client
        .rollback(&mode, &t, "influxdb", 9, Duration::from_secs(2))
        .await
    {
        Err(RancherError::RevisionNotFound { available, .. }) => {
            assert_eq!(available, ["1", "2", "3"])
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn apps_and_marketplace_has_no_rollback_action_and_the_control_api_shows_history() {
    let (sim, client) = sim_harness().await;
    let t = prepare(&client, "seaview-api").await.target;
    client
        .deploy_chart(&t, &influx("4.3.2", json!({"a": 1})))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let app = format!(
        "{}/k8s/clusters/{}/v1/catalog.cattle.io.apps/{}/influxdb",
        sim.url(),
        t.cluster_id,
        t.namespace
    );
    let resp = http
        .post(format!("{app}?action=rollback"))
        .bearer_auth(sim.admin_token())
        .json(&json!({"revision": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "Steve: unknown action");
    let got: Value = http
        .get(&app)
        .bearer_auth(sim.admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["actions"].as_object().unwrap().len(), 1, "{got}");

    let history: Value = http
        .get(format!(
            "{}/__sim/releases/{}/influxdb/history",
            sim.url(),
            t.namespace
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        history,
        json!([{"revision": 1, "chart": "influxdb", "version": "4.3.2", "appVersion": "1.7.9",
                "values": {"a": 1}, "status": "deployed", "description": "Install complete"}])
    );
    let missing = http
        .get(format!(
            "{}/__sim/releases/{}/nope/history",
            sim.url(),
            t.namespace
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn v2_failed_upgrade_leaves_a_failed_revision_and_rollback_restores() {
    let (sim, client) = sim_harness().await;
    let t = prepare(&client, "seaview-fail").await.target;
    let v1 = json!({"x": 1});
    client
        .deploy_chart(&t, &influx("4.3.2", v1.clone()))
        .await
        .unwrap();
    sim.update_faults(|f| {
        f.fail_upgrades.insert(
            "influxdb".into(),
            "Error: UPGRADE FAILED: timed out waiting for the condition".into(),
        );
    });
    let err = client
        .deploy_chart(&t, &influx("4.4.0", json!({"x": 2})))
        .await
        .unwrap_err();
    match &err {
        RancherError::OperationFailed { message, .. } => {
            assert!(message.contains("UPGRADE FAILED"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let h = sim_history(&sim, &t.namespace);
    assert_eq!(
        h.iter().map(|r| r.3.as_str()).collect::<Vec<_>>(),
        ["deployed", "failed"],
        "Helm keeps the last good revision deployed"
    );
    assert!(
        h[1].4.starts_with("Upgrade \"influxdb\" failed"),
        "{}",
        h[1].4
    );
    let app = client.get_app(&t, "influxdb").await.unwrap().unwrap();
    assert_eq!((app.revision, app.status), (2, HelmStatus::Failed));

    // The upgrade fault does not touch rollbacks; the rollback fault does.
    sim.update_faults(|f| {
        f.fail_rollbacks.insert(
            "influxdb".into(),
            "Error: UPGRADE FAILED: rollback boom".into(),
        );
    });
    let err = client
        .rollback_release(&t, "influxdb", 1, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rollback boom"), "{err}");
    assert_eq!(sim_history(&sim, &t.namespace)[2].3, "failed");

    sim.update_faults(|f| f.fail_rollbacks.clear());
    let rb = client
        .rollback_release(&t, "influxdb", 1, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!((rb.action, rb.revision), (ChartAction::RolledBack, 4));
    let h = sim_history(&sim, &t.namespace);
    assert_eq!(
        (h[3].1.as_str(), &h[3].2, h[3].3.as_str(), h[3].4.as_str()),
        ("4.3.2", &v1, "deployed", "Rollback to 1")
    );
    // The install of a new release is not an upgrade: `fail_upgrades` leaves it alone.
    let certs = ChartSpec {
        release: "certs".into(),
        chart: "certs".into(),
        version: "1.2.0".into(),
        ..influx("x", json!({}))
    };
    sim.update_faults(|f| {
        f.fail_upgrades.insert("certs".into(), "Error: nope".into());
    });
    assert_eq!(
        client.deploy_chart(&t, &certs).await.unwrap().action,
        ChartAction::Installed
    );
}

#[tokio::test]
async fn v2_uninstall_delete_namespace_and_project_leave_nothing() {
    let (sim, client) = sim_harness().await;
    let prepared = prepare(&client, "seaview-gone").await;
    let t = prepared.target.clone();
    let mode = AppsMode::Apps;
    client
        .deploy(&mode, &t, &influx("4.3.2", json!({})))
        .await
        .unwrap();
    assert_eq!(client.list_releases(&mode, &t).await.unwrap().len(), 1);
    assert_eq!(
        client
            .uninstall_release(&mode, &t, "influxdb", Duration::from_secs(2))
            .await
            .unwrap(),
        UninstallOutcome::Removed
    );
    assert!(client.list_releases(&mode, &t).await.unwrap().is_empty());
    assert!(client
        .history(&mode, &t, "influxdb")
        .await
        .unwrap()
        .is_empty());

    client
        .deploy(&mode, &t, &influx("4.3.2", json!({})))
        .await
        .unwrap();
    let before = client
        .unit_remains(
            &t.cluster_id,
            Some(&prepared.project_id),
            &t.namespace,
            false,
        )
        .await
        .unwrap();
    assert!(before.project.is_some() && before.namespace.is_some());
    assert_eq!(before.apps.len(), 1);
    assert!(!before.is_empty());

    client
        .delete_namespace(&t.cluster_id, &t.namespace)
        .await
        .unwrap();
    assert!(client
        .find_namespace(&t.cluster_id, &t.namespace)
        .await
        .unwrap()
        .is_none());
    assert!(
        client.list_apps(&t).await.unwrap().is_empty(),
        "the namespace took its releases with it"
    );
    assert!(sim.release_history(&t.namespace, "influxdb").is_none());
    client
        .delete_namespace(&t.cluster_id, &t.namespace)
        .await
        .expect("deleting a namespace that is gone is fine");

    client.delete_project(&prepared.project_id).await.unwrap();
    client
        .delete_project(&prepared.project_id)
        .await
        .expect("deleting a project that is gone is fine");
    let after = client
        .unit_remains(
            &t.cluster_id,
            Some(&prepared.project_id),
            &t.namespace,
            true,
        )
        .await
        .unwrap();
    assert!(after.is_empty(), "{after:?}");
}

#[tokio::test]
async fn deleting_a_project_removes_its_namespaces() {
    let (_sim, client) = sim_harness().await;
    let prepared = prepare(&client, "seaview-cascade").await;
    let t = prepared.target.clone();
    client
        .deploy_chart(&t, &influx("4.3.2", json!({})))
        .await
        .unwrap();
    client.delete_project(&prepared.project_id).await.unwrap();
    // Rancher removes the project's namespaces after the project; wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = client
            .unit_remains(
                &t.cluster_id,
                Some(&prepared.project_id),
                &t.namespace,
                false,
            )
            .await
            .unwrap();
        if r.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{r:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn legacy_upgrade_history_rollback_and_decommission() {
    let (sim, client) = legacy_sim().await;
    let prepared = prepare(&client, "seaview-lrb").await;
    let t = prepared.target.clone();
    let mode = legacy_mode(&prepared.project_id);
    let v1 = json!({"retention": "7d"});
    let first = client
        .deploy(&mode, &t, &influx("4.3.2", v1.clone()))
        .await
        .unwrap();
    assert_eq!((first.action, first.revision), (ChartAction::Installed, 1));
    let up = client
        .deploy(&mode, &t, &influx("4.4.0", json!({"retention": "30d"})))
        .await
        .unwrap();
    assert_eq!((up.action, up.revision), (ChartAction::Upgraded, 2));
    assert_eq!(up.previous_revision, Some(1));
    let history = client.history(&mode, &t, "influxdb").await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|r| (r.revision, r.chart_version.as_str(), r.status.clone()))
            .collect::<Vec<_>>(),
        [
            (1, "4.3.2", HelmStatus::Superseded),
            (2, "4.4.0", HelmStatus::Deployed)
        ]
    );
    assert_eq!(history[0].values, v1);

    let rb = client
        .rollback(&mode, &t, "influxdb", 1, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        (rb.action, rb.revision, rb.chart_version.as_str()),
        (ChartAction::RolledBack, 3, "4.3.2")
    );
    assert_eq!(rb.previous_revision, Some(2));
    let h = sim_history(&sim, &t.namespace);
    assert_eq!(
        (h[2].1.as_str(), &h[2].2, h[2].3.as_str(), h[2].4.as_str()),
        ("4.3.2", &v1, "deployed", "Rollback to 1")
    );
    let again = client
        .rollback(&mode, &t, "influxdb", 1, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(again.action, ChartAction::Unchanged);
    assert_eq!(
        sim.count("POST app action=rollback"),
        1,
        "never rolled back twice"
    );
    assert_eq!(sim.count("helm rollback"), 1);
    let state = client
        .release_status(&mode, &t, "influxdb")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (state.chart_version.as_str(), state.revision, state.status),
        ("4.3.2", 3, HelmStatus::Deployed)
    );

    // A failed upgrade, then a rollback to the last good revision.
    sim.update_faults(|f| {
        f.fail_upgrades
            .insert("influxdb".into(), "Error: UPGRADE FAILED: boom".into());
    });
    let err = client
        .deploy(&mode, &t, &influx("4.4.0", json!({"bad": true})))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("boom"), "{err}");
    let h = sim_history(&sim, &t.namespace);
    assert_eq!(h.last().unwrap().3, "failed");
    assert_eq!(h[2].3, "deployed");
    let rb = client
        .rollback(&mode, &t, "influxdb", 3, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(rb.action, ChartAction::RolledBack);
    let h = sim_history(&sim, &t.namespace);
    assert_eq!(
        (h.last().unwrap().3.as_str(), h.last().unwrap().4.as_str()),
        ("deployed", "Rollback to 3")
    );

    // Uninstall, then the unit goes away: the proof read finds nothing.
    assert_eq!(
        client
            .uninstall_release(&mode, &t, "influxdb", Duration::from_secs(2))
            .await
            .unwrap(),
        UninstallOutcome::Removed
    );
    assert!(client.list_releases(&mode, &t).await.unwrap().is_empty());
    client
        .deploy(&mode, &t, &influx("4.3.2", json!({})))
        .await
        .unwrap();
    let before = client
        .unit_remains(
            &t.cluster_id,
            Some(&prepared.project_id),
            &t.namespace,
            true,
        )
        .await
        .unwrap();
    assert_eq!(before.legacy_apps.len(), 1);
    client.delete_project(&prepared.project_id).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = client
            .unit_remains(
                &t.cluster_id,
                Some(&prepared.project_id),
                &t.namespace,
                true,
            )
            .await
            .unwrap();
        if r.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{r:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(client.list_releases(&mode, &t).await.unwrap().is_empty());
}

#[tokio::test]
async fn legacy_rollback_failure_is_reported() {
    let (sim, client) = legacy_sim().await;
    let prepared = prepare(&client, "seaview-lfail").await;
    let t = prepared.target.clone();
    let mode = legacy_mode(&prepared.project_id);
    client
        .deploy(&mode, &t, &influx("4.3.2", json!({"a": 1})))
        .await
        .unwrap();
    client
        .deploy(&mode, &t, &influx("4.4.0", json!({"a": 2})))
        .await
        .unwrap();
    sim.update_faults(|f| {
        f.fail_rollbacks
            .insert("influxdb".into(), "Error: rollback refused".into());
    });
    let err = client
        .rollback(&mode, &t, "influxdb", 1, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RancherError::OperationFailed { message, .. } if message.contains("rollback refused")),
        "{err:?}"
    );
    let h = sim_history(&sim, &t.namespace);
    assert_eq!(h.last().unwrap().3, "failed");
    assert!(h
        .last()
        .unwrap()
        .4
        .starts_with("Rollback \"influxdb\" failed"));
}
