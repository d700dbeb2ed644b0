//! Fault injection against the simulator: every fault is either recovered or reported clearly,
//! and the call counters prove no Helm action is ever duplicated.

mod common;

use std::time::Duration;

use berth_rancher::{
    deploy_blueprint, AppOutcome, ChartAction, ChartSpec, HelmStatus, RancherClient, RancherError,
    Target,
};
use berth_rancher_sim::{Action, Faults, RancherSim};
use common::{sim_harness, test_config};
use serde_json::json;

fn target(ns: &str) -> Target {
    Target {
        cluster_id: "c-m-berth001".into(),
        namespace: ns.into(),
    }
}

fn influx(values: serde_json::Value) -> ChartSpec {
    ChartSpec {
        release: "influxdb".into(),
        repo: "stable".into(),
        chart: "influxdb".into(),
        version: "4.3.2".into(),
        values,
        wait: true,
        timeout: Duration::from_secs(1),
    }
}

fn installs_of(sim: &RancherSim, release: &str) -> usize {
    sim.helm_history()
        .iter()
        .filter(|r| r.release == release && r.action != Action::Uninstall)
        .count()
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_honoured_and_recovered() {
    let (sim, client) = sim_harness().await;
    sim.set_faults(Faults {
        target: "action=install".into(),
        rate_limited: 2,
        retry_after_secs: 0,
        ..Faults::default()
    });
    let out = client
        .deploy_chart(&target("rl"), &influx(json!({"a": 1})))
        .await
        .unwrap();
    assert_eq!(out.action, ChartAction::Installed);
    assert_eq!(
        sim.count("POST clusterrepo action=install"),
        3,
        "two 429s then one accepted"
    );
    assert_eq!(installs_of(&sim, "influxdb"), 1);
}

#[tokio::test]
async fn retry_after_delays_the_retry() {
    let (sim, client) = sim_harness().await;
    sim.set_faults(Faults {
        target: "/v3/users".into(),
        rate_limited: 1,
        retry_after_secs: 1,
        ..Faults::default()
    });
    // The backoff alone (≤ 300 ms: 200 ms cap, ±50 %) would retry sooner; the retry still succeeds.
    client
        .check_token()
        .await
        .expect("recovered after Retry-After");
    assert_eq!(sim.count("GET user"), 2);
}

#[tokio::test]
async fn persistent_rate_limit_is_reported() {
    let (sim, client) = sim_harness().await;
    sim.set_faults(Faults {
        rate_limited: 100,
        ..Faults::default()
    });
    let err = client.check_token().await.unwrap_err();
    assert!(
        matches!(err, RancherError::RateLimited { attempts: 4, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn server_errors_are_retried_on_reads_and_recovered() {
    let (sim, client) = sim_harness().await;
    sim.set_faults(Faults {
        target: "GET /k8s/clusters".into(),
        server_errors: 3,
        ..Faults::default()
    });
    let out = client
        .deploy_chart(&target("5xx"), &influx(json!({})))
        .await
        .unwrap();
    assert_eq!(out.action, ChartAction::Installed);
    assert_eq!(installs_of(&sim, "influxdb"), 1);
}

#[tokio::test]
async fn service_unavailable_on_a_helm_action_is_retried_once_accepted() {
    let (sim, client) = sim_harness().await;
    sim.set_faults(Faults {
        target: "action=install".into(),
        server_errors: 1,
        ..Faults::default()
    });
    client
        .deploy_chart(&target("503"), &influx(json!({})))
        .await
        .unwrap();
    assert_eq!(sim.count("POST clusterrepo action=install"), 2);
    assert_eq!(installs_of(&sim, "influxdb"), 1);
}

#[tokio::test]
async fn hanging_helm_action_times_out_and_is_not_duplicated() {
    let (sim, _) = sim_harness().await;
    let mut cfg = test_config(&sim.url(), sim.admin_token());
    cfg.request_timeout = Duration::from_millis(300);
    let client = RancherClient::new(cfg).unwrap();
    sim.set_faults(Faults {
        target: "action=install".into(),
        hang: 1,
        hang_ms: 2_000,
        ..Faults::default()
    });
    let out = client
        .deploy_chart(&target("hang"), &influx(json!({})))
        .await
        .unwrap();
    assert_eq!(out.action, ChartAction::Installed);
    assert_eq!(
        sim.count("POST clusterrepo action=install"),
        2,
        "timed out once, then sent again after looking"
    );
    assert_eq!(installs_of(&sim, "influxdb"), 1);
}

#[tokio::test]
async fn hanging_reads_are_retried() {
    let (sim, _) = sim_harness().await;
    let mut cfg = test_config(&sim.url(), sim.admin_token());
    cfg.request_timeout = Duration::from_millis(300);
    let client = RancherClient::new(cfg).unwrap();
    sim.set_faults(Faults {
        target: "/v3/clusters".into(),
        hang: 2,
        hang_ms: 2_000,
        ..Faults::default()
    });
    let c = client.find_cluster("berth").await.unwrap();
    assert_eq!(c.id, "c-m-berth001");
    assert_eq!(sim.count("GET cluster"), 3);
}

#[tokio::test]
async fn tunnel_down_is_retried_then_reported_as_unreachable() {
    let (sim, client) = sim_harness().await;
    sim.update_faults(|f| f.tunnel_down = true);
    let err = client
        .deploy_chart(&target("tunnel"), &influx(json!({})))
        .await
        .unwrap_err();
    match &err {
        RancherError::ClusterUnreachable {
            status: 500,
            message,
            ..
        } => {
            assert!(message.contains("connection refused"), "{err}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.count("GET app"), 4, "every attempt used");
    assert_eq!(sim.count("POST clusterrepo action=install"), 0);
    sim.update_faults(|f| f.tunnel_down = false);
    client
        .deploy_chart(&target("tunnel"), &influx(json!({})))
        .await
        .expect("recovers once the agent is back");
}

#[tokio::test]
async fn expired_token_is_reported_without_retries() {
    let (sim, _) = sim_harness().await;
    let token = sim.create_token(Some(Duration::ZERO), None);
    let client = RancherClient::new(test_config(&sim.url(), &token)).unwrap();
    let err = client.check_token().await.unwrap_err();
    assert!(matches!(err, RancherError::Unauthorized { .. }), "{err:?}");
    assert!(!err.to_string().contains(&token));
    assert_eq!(sim.count("GET user"), 1);

    let (sim, client) = sim_harness().await;
    sim.update_faults(|f| f.tokens_expired = true);
    let err = client
        .deploy_chart(&target("exp"), &influx(json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, RancherError::Unauthorized { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(sim.count("total"), 1);
}

#[tokio::test]
async fn key_scoped_to_another_cluster_gets_the_proxy_401() {
    let (sim, _) = sim_harness().await;
    let token = sim.create_token(None, Some("local"));
    let client = RancherClient::new(test_config(&sim.url(), &token)).unwrap();
    let err = client.get_app(&target("scoped"), "x").await.unwrap_err();
    assert!(
        matches!(err, RancherError::ClusterAccessDenied { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn failing_install_reports_helm_message() {
    let (sim, client) = sim_harness().await;
    let helm = "Error: INSTALLATION FAILED: execution error at (influxdb/templates/statefulset.yaml:42:18): persistence.size must be set";
    sim.update_faults(|f| {
        f.fail_charts.insert("influxdb".into(), helm.into());
    });
    let err = client
        .deploy_chart(&target("fail"), &influx(json!({})))
        .await
        .unwrap_err();
    match &err {
        RancherError::OperationFailed {
            release,
            action,
            message,
            ..
        } => {
            assert_eq!((release.as_str(), action.as_str()), ("influxdb", "install"));
            assert_eq!(message, helm);
        }
        other => panic!("{other:?}"),
    }
    let app = client
        .get_app(&target("fail"), "influxdb")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(app.status, HelmStatus::Failed);

    // Fixed: the next run upgrades the failed release instead of re-installing it.
    sim.set_faults(Faults::default());
    let out = client
        .deploy_chart(&target("fail"), &influx(json!({})))
        .await
        .unwrap();
    assert_eq!(out.action, ChartAction::Upgraded);
    assert_eq!(out.revision, 2);
}

#[tokio::test]
async fn failed_app_blocks_its_dependents_and_the_rerun_resumes() {
    let (sim, client) = sim_harness().await;
    let target = common::prepare(&client, "seaview-fail").await;
    let plan = common::make_plan("small", &target);
    let helm = "Error: INSTALLATION FAILED: timed out waiting for the condition";
    sim.update_faults(|f| {
        f.fail_charts.insert("influxdb".into(), helm.into());
    });
    let report = deploy_blueprint(&client, &target.target, &plan, |_| {}).await;
    assert!(!report.succeeded());
    let (app, message) = report.failure().expect("a failure");
    assert_eq!(app, "influxdb");
    assert!(message.contains(helm), "{message}");
    assert_eq!(
        report.apps[3].outcome,
        AppOutcome::Skipped {
            blocked_by: "influxdb".into()
        }
    );
    assert_eq!(installs_of(&sim, "dsm"), 0, "dependents are not started");

    sim.set_faults(Faults::default());
    let report = deploy_blueprint(&client, &target.target, &plan, |_| {}).await;
    assert!(report.succeeded(), "{report:#?}");
    let outcomes: Vec<&AppOutcome> = report.apps.iter().map(|a| &a.outcome).collect();
    assert_eq!(
        outcomes,
        [
            &AppOutcome::Unchanged { revision: 1 },
            &AppOutcome::Unchanged { revision: 1 },
            &AppOutcome::Upgraded { revision: 2 },
            &AppOutcome::Installed { revision: 1 },
        ]
    );
    for release in ["foundation", "certs", "dsm"] {
        assert_eq!(installs_of(&sim, release), 1, "{release}");
    }
}

#[tokio::test]
async fn slow_install_still_completes() {
    let (sim, client) = sim_harness().await;
    sim.update_faults(|f| f.install_extra_delay_ms = 150);
    let out = client
        .deploy_chart(&target("slow"), &influx(json!({})))
        .await
        .unwrap();
    assert_eq!(out.action, ChartAction::Installed);
    assert_eq!(installs_of(&sim, "influxdb"), 1);
}

#[tokio::test]
async fn operation_pod_stuck_pending_hits_our_deadline() {
    let (sim, _) = sim_harness().await;
    let mut cfg = test_config(&sim.url(), sim.admin_token());
    cfg.operation_grace = Duration::from_millis(100);
    let client = RancherClient::new(cfg).unwrap();
    sim.update_faults(|f| f.pod_stuck_pending = true);
    let err = client
        .deploy_chart(&target("stuck"), &influx(json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, RancherError::Deadline { .. }), "{err:?}");
    assert!(err.to_string().contains("Pending"), "{err}");

    // Asking again follows the operation that is still queued instead of starting another.
    let err = client
        .deploy_chart(&target("stuck"), &influx(json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, RancherError::Deadline { .. }), "{err:?}");
    assert_eq!(sim.count("POST clusterrepo action=install"), 1);
}

#[tokio::test]
async fn vanished_pod_is_not_taken_for_success() {
    let (sim, _) = sim_harness().await;
    let mut cfg = test_config(&sim.url(), sim.admin_token());
    cfg.confirm_timeout = Duration::from_millis(200);
    let client = RancherClient::new(cfg).unwrap();
    sim.update_faults(|f| f.pod_vanishes = true);
    let err = client
        .deploy_chart(&target("vanish"), &influx(json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, RancherError::Deadline { .. }), "{err:?}");
    assert!(err.to_string().contains("vanished"), "{err}");
}

#[tokio::test]
async fn release_stuck_pending_is_reported_and_left_alone() {
    let (sim, _) = sim_harness().await;
    let mut cfg = test_config(&sim.url(), sim.admin_token());
    cfg.confirm_timeout = Duration::from_millis(200);
    let client = RancherClient::new(cfg).unwrap();
    sim.update_faults(|f| f.stuck_pending_install = true);
    let err = client
        .deploy_chart(&target("pend"), &influx(json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RancherError::ReleaseStuck { status, .. } if status == "pending-install"),
        "{err:?}"
    );
    sim.set_faults(Faults::default());
    let err = client
        .deploy_chart(&target("pend"), &influx(json!({"x": 1})))
        .await
        .unwrap_err();
    assert!(matches!(err, RancherError::ReleaseStuck { .. }), "{err:?}");
    assert!(err.to_string().contains("rollback"), "{err}");
    assert_eq!(
        sim.count("POST clusterrepo action=upgrade"),
        0,
        "no action piled onto a stuck release"
    );
}

#[tokio::test]
async fn repo_download_failure_fails_the_first_app_and_skips_the_rest() {
    let (sim, client) = sim_harness().await;
    let target = common::prepare(&client, "seaview-repo").await;
    let plan = common::make_plan("small", &target);
    sim.update_faults(|f| {
        f.repo_download_failed =
            Some("failed to fetch https://charts.example/index.yaml: 404".into())
    });
    let report = deploy_blueprint(&client, &target.target, &plan, |_| {}).await;
    let (app, message) = report.failure().unwrap();
    assert_eq!(app, "foundation");
    assert!(message.contains("index.yaml"), "{message}");
    assert!(report.apps[1..]
        .iter()
        .all(|a| matches!(a.outcome, AppOutcome::Skipped { .. })));
    assert!(sim.helm_history().is_empty());
}

#[tokio::test]
async fn installs_never_send_project_id() {
    // Rancher ≤ 2.15 fails installs that carry projectId ("roles never populate"); Berth puts
    // the namespace in the project first and installs without it.
    let (sim, client) = sim_harness().await;
    sim.update_faults(|f| f.roles_never_populate = true);
    let target = common::prepare(&client, "seaview-roles").await;
    let plan = common::make_plan("small", &target);
    let report = deploy_blueprint(&client, &target.target, &plan, |_| {}).await;
    assert!(report.succeeded(), "{report:#?}");
}

#[tokio::test]
async fn namespace_rbac_lag_is_tolerated() {
    let (sim, client) = sim_harness().await;
    let mut t = berth_rancher_sim::Timings::fast();
    t.namespace_forbidden_window = Duration::from_millis(100);
    sim.set_timings(t);
    let target = common::prepare(&client, "seaview-rbac").await;
    assert_eq!(target.target.namespace, "seaview-rbac");
}

#[tokio::test]
async fn garbage_collected_operations_fall_back_to_the_app() {
    let (sim, client) = sim_harness().await;
    let mut t = berth_rancher_sim::Timings::fast();
    t.operation_gc_ttl = Duration::ZERO;
    sim.set_timings(t);
    let out = client
        .deploy_chart(&target("gc"), &influx(json!({})))
        .await
        .unwrap();
    assert_eq!(out.action, ChartAction::Installed);
}

#[tokio::test]
async fn workloads_never_ready_fail_with_helms_deadline_message() {
    let (sim, client) = sim_harness().await;
    sim.update_faults(|f| f.readiness_timeout = true);
    let err = client
        .deploy_chart(&target("never-ready"), &influx(json!({})))
        .await
        .unwrap_err();
    match &err {
        RancherError::OperationFailed { message, .. } => {
            assert_eq!(
                message,
                "Error: INSTALLATION FAILED: context deadline exceeded"
            )
        }
        other => panic!("{other:?}"),
    }
    // Without wait:true Helm does not wait, so the same install "succeeds".
    let mut spec = influx(json!({}));
    spec.release = "applied-only".into();
    spec.wait = false;
    let out = client
        .deploy_chart(&target("never-ready"), &spec)
        .await
        .unwrap();
    assert_eq!(out.action, ChartAction::Installed);
}
