//! Legacy v3 apps mode (`catalog://`) against the simulator with its legacy switch on.

mod common;

use std::time::Duration;

use berth_rancher::{
    deploy_blueprint_legacy, AppOutcome, CatalogScope, ChartAction, ChartSpec, LegacyCatalog,
    RancherClient, RancherError, UninstallOutcome,
};
use berth_rancher_sim::{Action, RancherSim, SimConfig};
use common::{make_plan, prepare, test_config};
use serde_json::json;

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

fn seed_catalog() -> LegacyCatalog {
    LegacyCatalog {
        name: "stable".into(),
        scope: CatalogScope::Cluster {
            qualified_with: None,
        },
    }
}

fn influx(version: &str, values: serde_json::Value) -> ChartSpec {
    ChartSpec {
        release: "influxdb".into(),
        repo: "stable".into(),
        chart: "influxdb".into(),
        version: version.into(),
        values,
        wait: true,
        timeout: Duration::from_secs(1),
    }
}

#[tokio::test]
async fn insight_deploys_through_legacy_apps_and_is_idempotent() {
    let (sim, client) = legacy_sim().await;
    let target = prepare(&client, "seaview-legacy").await;
    let plan = make_plan("small", &target);
    let scope = CatalogScope::Cluster {
        qualified_with: None,
    };
    let report = deploy_blueprint_legacy(&client, &target, scope.clone(), &plan, |_| {}).await;
    assert!(report.succeeded(), "{report:#?}");
    let order: Vec<String> = sim
        .helm_history()
        .iter()
        .map(|r| r.release.clone())
        .collect();
    assert_eq!(order, ["foundation", "certs", "influxdb", "dsm"]);

    let report = deploy_blueprint_legacy(&client, &target, scope, &plan, |_| {}).await;
    assert!(
        report
            .apps
            .iter()
            .all(|a| matches!(a.outcome, AppOutcome::Unchanged { .. })),
        "{report:#?}"
    );
    assert_eq!(sim.helm_history().len(), 4);
    assert_eq!(sim.count("POST app"), 4);
}

#[tokio::test]
async fn upgrade_replaces_values_and_version() {
    let (sim, client) = legacy_sim().await;
    let target = prepare(&client, "seaview-up").await;
    let cat = seed_catalog();
    let ns = &target.target.namespace;
    let first = client
        .deploy_chart_legacy(
            &target.project_id,
            ns,
            &cat,
            &influx("4.3.1", json!({"a": "b: c"})),
        )
        .await
        .unwrap();
    assert_eq!(first.action, ChartAction::Installed);
    let second = client
        .deploy_chart_legacy(
            &target.project_id,
            ns,
            &cat,
            &influx("4.3.2", json!({"z": 1})),
        )
        .await
        .unwrap();
    assert_eq!(second.action, ChartAction::Upgraded);
    let history = sim.helm_history();
    assert_eq!(
        history.last().map(|r| (r.action, r.version.as_str())),
        Some((Action::Upgrade, "4.3.2"))
    );
    let same = client
        .deploy_chart_legacy(
            &target.project_id,
            ns,
            &cat,
            &influx("4.3.2", json!({"z": 1})),
        )
        .await
        .unwrap();
    assert_eq!(same.action, ChartAction::Unchanged);

    assert_eq!(
        client
            .uninstall_legacy(&target.project_id, "influxdb")
            .await
            .unwrap(),
        UninstallOutcome::Removed
    );
    assert_eq!(
        client
            .uninstall_legacy(&target.project_id, "influxdb")
            .await
            .unwrap(),
        UninstallOutcome::NotInstalled
    );
}

#[tokio::test]
async fn born_active_race_does_not_hide_a_failure() {
    let (sim, client) = legacy_sim().await;
    let target = prepare(&client, "seaview-race").await;
    // A wide "born active" window, so the client surely reads `active` before any work started.
    let mut timings = berth_rancher_sim::Timings::fast();
    timings.operation_wait = Duration::from_millis(300);
    sim.set_timings(timings);
    sim.update_faults(|f| {
        f.legacy_born_active = true;
        f.fail_charts.insert(
            "influxdb".into(),
            "Error: chart requires kubeVersion: < 1.16".into(),
        );
    });
    let err = client
        .deploy_chart_legacy(
            &target.project_id,
            &target.target.namespace,
            &seed_catalog(),
            &influx("4.3.2", json!({})),
        )
        .await
        .unwrap_err();
    match err {
        RancherError::OperationFailed { message, .. } => {
            assert!(message.contains("kubeVersion"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn namespace_outside_the_project_and_disabled_legacy_are_reported() {
    let (_sim, client) = legacy_sim().await;
    let target = prepare(&client, "seaview-ref").await;
    let err = client
        .deploy_chart_legacy(
            &target.project_id,
            "kube-system",
            &seed_catalog(),
            &influx("4.3.2", json!({})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RancherError::Api { status: 422, code, .. } if code == "InvalidReference"),
        "{err:?}"
    );

    let (_sim, client) = common::sim_harness().await;
    let target = prepare(&client, "seaview-nolegacy").await;
    let err = client
        .deploy_chart_legacy(
            &target.project_id,
            &target.target.namespace,
            &seed_catalog(),
            &influx("4.3.2", json!({})),
        )
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}
