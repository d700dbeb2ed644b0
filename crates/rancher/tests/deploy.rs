//! The deploy stage end to end against the simulator: the `insight` blueprint rendered from the
//! real templates, installed in order, idempotent on re-run, upgraded only where values change.

mod common;

use berth_blueprint::RenderMode;
use berth_rancher::{
    deploy_blueprint, verify_charts, AppOutcome, DeployEvent, DeployPlan, HelmStatus, PlanError,
};
use berth_rancher_sim::Action;
use common::{context, make_plan, prepare, sim_harness, templates};

#[tokio::test]
async fn insight_deploys_in_order_and_is_idempotent() {
    let (sim, client) = sim_harness().await;
    let target = prepare(&client, "seaview-trucking").await;
    let plan = make_plan("medium", &target);

    let mut events = Vec::new();
    let report = deploy_blueprint(&client, &target.target, &plan, |e| events.push(e.clone())).await;
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(
        (report.blueprint.as_str(), report.blueprint_version.as_str()),
        ("insight", "1.0.0")
    );
    for app in &report.apps {
        assert_eq!(
            app.outcome,
            AppOutcome::Installed { revision: 1 },
            "{}",
            app.name
        );
    }
    let order: Vec<(String, String)> = sim
        .helm_history()
        .iter()
        .map(|r| (r.release.clone(), r.version.clone()))
        .collect();
    assert_eq!(
        order,
        [
            ("foundation", "0.3.1"),
            ("certs", "1.2.0"),
            ("influxdb", "4.3.2"),
            ("dsm", "2.7.0")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    // Each app started only after the previous one finished.
    let seq: Vec<String> = events
        .iter()
        .map(|e| match e {
            DeployEvent::AppStarted { app, .. } => format!("start {app}"),
            DeployEvent::AppFinished { app, .. } => format!("done {app}"),
        })
        .collect();
    assert_eq!(
        seq,
        [
            "start foundation",
            "done foundation",
            "start certs",
            "done certs",
            "start influxdb",
            "done influxdb",
            "start dsm",
            "done dsm"
        ]
    );
    for app in client.list_apps(&target.target).await.unwrap() {
        assert_eq!(app.status, HelmStatus::Deployed);
    }
    let influx = client
        .get_app(&target.target, "influxdb")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(influx.chart_version, "4.3.2");
    // The chart gets the name of the Secret holding the credentials, never the password.
    assert_eq!(
        influx.values["setDefaultUser"]["user"]["existingSecret"],
        "trucking-db"
    );
    assert!(!influx.values.to_string().contains("pa: ss#word"));

    // Re-running the same plan changes nothing and sends no Helm action.
    let installs = sim.count("POST clusterrepo action=install");
    let report = deploy_blueprint(&client, &target.target, &plan, |_| {}).await;
    assert!(
        report
            .apps
            .iter()
            .all(|a| matches!(a.outcome, AppOutcome::Unchanged { revision: 1 })),
        "{report:#?}"
    );
    assert_eq!(sim.count("POST clusterrepo action=install"), installs);
    assert_eq!(sim.count("POST clusterrepo action=upgrade"), 0);
    assert_eq!(sim.helm_history().len(), 4);

    // A bigger unit changes the values of the size-dependent apps only.
    let prepared_again = prepare(&client, "seaview-trucking").await;
    assert_eq!(prepared_again, target, "prepare is idempotent");
    assert_eq!(sim.count("POST project"), 1);
    assert_eq!(sim.count("POST namespace"), 1);
    let bigger = make_plan("large", &target);
    let report = deploy_blueprint(&client, &target.target, &bigger, |_| {}).await;
    let outcomes: Vec<(&str, &AppOutcome)> = report
        .apps
        .iter()
        .map(|a| (a.name.as_str(), &a.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("foundation", &AppOutcome::Upgraded { revision: 2 }),
            ("certs", &AppOutcome::Unchanged { revision: 1 }),
            ("influxdb", &AppOutcome::Upgraded { revision: 2 }),
            ("dsm", &AppOutcome::Upgraded { revision: 2 }),
        ]
    );
    let upgrades: Vec<_> = sim
        .helm_history()
        .into_iter()
        .filter(|r| r.action == Action::Upgrade)
        .collect();
    assert_eq!(upgrades.len(), 3);
}

#[tokio::test]
async fn preview_values_cannot_be_deployed() {
    let t = templates();
    let bp = t.blueprint("insight").unwrap();
    let rendered = t
        .renderer()
        .render_blueprint(bp, &context("ns", "c", "small"), RenderMode::Preview)
        .unwrap();
    assert!(matches!(
        DeployPlan::new(bp, &rendered),
        Err(PlanError::PreviewValues)
    ));
}

#[tokio::test]
async fn verify_charts_finds_missing_versions_before_deploying() {
    let (sim, client) = sim_harness().await;
    let target = prepare(&client, "seaview-verify").await;
    let mut plan = make_plan("small", &target);
    assert!(verify_charts(&client, &target.target.cluster_id, &plan)
        .await
        .unwrap()
        .is_empty());
    plan.apps[3].version = "9.9.9".into();
    let missing = verify_charts(&client, &target.target.cluster_id, &plan)
        .await
        .unwrap();
    assert_eq!(missing.len(), 1);
    assert_eq!(
        (missing[0].app.as_str(), missing[0].version.as_str()),
        ("dsm", "9.9.9")
    );
    assert_eq!(missing[0].available, ["2.8.0", "2.7.0", "2.6.3"]);
    assert!(
        sim.helm_history().is_empty(),
        "verification installs nothing"
    );
}
