//! An environment's whole life through the real executor, in both Rancher modes (Apps &
//! Marketplace, and the legacy v3 apps the customer's scripts used): provisioned; changed so that
//! only the app whose values differ is upgraded; changed again with the DSM upgrade failing, so
//! the apps the run upgraded roll back and the environment stays ready on its old spec;
//! decommissioned with the proof recorded. AWS on the local emulator (skipped with a notice when
//! it is not running, failing when `CI=true`), Rancher on the in-process simulator.

use std::sync::Arc;

use berth_aws::UnitIdentity;
use berth_domain::plan::AppAction;
use berth_domain::{AppOverrides, ChangeForm, EnvironmentStatus};
use berth_rancher_sim::{RancherSim, SimConfig};
use berth_runs::testing::*;
use berth_runs::{lifecycle, releases_of, run_status, Engine, RunStatus};
use berth_testkit::emulator::emulator_available;
use sqlx::PgPool;

mod common;
use common::{aws_stage, provisioner_in_mode, rancher};

async fn env_status(pool: &PgPool, env: &Env) -> EnvironmentStatus {
    sqlx::query_scalar::<_, String>("SELECT status FROM environments WHERE id = $1")
        .bind(env.environment_id)
        .fetch_one(pool)
        .await
        .unwrap()
        .parse()
        .unwrap()
}

fn form(name: &str, slug: &str, size: &str, retention: Option<&str>) -> ChangeForm {
    let mut overrides = AppOverrides::default();
    if let Some(r) = retention {
        overrides.0.insert(
            "influxdb".into(),
            [("retention".to_owned(), serde_json::json!(r))].into(),
        );
    }
    ChangeForm {
        name: Some(name.into()),
        slug: Some(slug.into()),
        description: String::new(),
        owner_contact: "dana@seaview.example".into(),
        size: size.into(),
        blueprint_version: String::new(),
        overrides,
    }
}

async fn whole_life(pool: PgPool, legacy: bool) {
    let sim = RancherSim::start(SimConfig {
        legacy_apps: legacy,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let slug = unique_slug();
    let name = format!("Life {}", &slug[5..]);
    let ns = format!("seaview-{slug}");
    let p = Arc::new(provisioner_in_mode(
        aws_stage().await,
        rancher(&sim),
        templates(),
        legacy,
    ));
    let engine = Engine::with_config(pool.clone(), p.clone(), config());
    let revisions = |app: &str| sim.release_history(&ns, app).map_or(0, |h| h.len());
    let manager = actor(&company, false);

    // Provisioned.
    let env = submitted_env(&pool, &company, &slug, &name).await;
    plan_and_approve(&pool, &company, &env, p.clone()).await;
    let report = engine.drain().await.unwrap();
    assert_eq!(report.failed + report.errors, 0, "{report:?}");
    assert_eq!(env_status(&pool, &env).await, EnvironmentStatus::Ready);
    for app in ["foundation", "certs", "influxdb", "dsm"] {
        assert_eq!(revisions(app), 1, "{app}");
    }

    // A change of InfluxDB's retention: the plan shows it, and only influxdb is upgraded.
    let sub = lifecycle::submit_change(
        &pool,
        &templates(),
        env.environment_id,
        &manager,
        &form(&name, &slug, "medium", Some("30d")),
    )
    .await
    .unwrap();
    let change = Env {
        environment_id: env.environment_id,
        request_id: sub.request_id,
    };
    plan_worker(&pool, p.clone()).drain().await.unwrap();
    let plan = berth_runs::plans::current_plan(&pool, change.request_id)
        .await
        .unwrap()
        .unwrap();
    let diff = plan
        .document
        .unwrap()
        .change
        .expect("a change plan shows the diff");
    let actions: Vec<(String, AppAction)> = diff
        .apps
        .iter()
        .map(|a| (a.app.clone(), a.action))
        .collect();
    assert_eq!(
        actions,
        [
            ("foundation".to_owned(), AppAction::Unchanged),
            ("certs".to_owned(), AppAction::Unchanged),
            ("influxdb".to_owned(), AppAction::Upgrade),
            ("dsm".to_owned(), AppAction::Unchanged),
        ]
    );
    let influx = diff.apps.iter().find(|a| a.app == "influxdb").unwrap();
    assert!(
        influx
            .values_diff
            .iter()
            .any(|l| l == "+  duration: \"30d\""),
        "{:?}",
        influx.values_diff
    );
    assert_eq!(influx.revision_before, Some(1));
    let run = plan_and_approve(&pool, &company, &change, p.clone()).await;
    engine.drain().await.unwrap();
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Succeeded);
    for (app, n) in [("foundation", 1), ("certs", 1), ("influxdb", 2), ("dsm", 1)] {
        assert_eq!(revisions(app), n, "{app}: only what changed is upgraded");
    }

    // A change whose DSM upgrade fails: what the run upgraded rolls back, the spec stays.
    sim.update_faults(|f| {
        f.fail_upgrades.insert(
            "dsm".into(),
            "Error: UPGRADE FAILED: dsm pods crash-looping".into(),
        );
    });
    let sub = lifecycle::submit_change(
        &pool,
        &templates(),
        env.environment_id,
        &manager,
        &form(&name, &slug, "large", Some("30d")),
    )
    .await
    .unwrap();
    let failing = Env {
        environment_id: env.environment_id,
        request_id: sub.request_id,
    };
    let run = plan_and_approve(&pool, &company, &failing, p.clone()).await;
    engine.drain().await.unwrap();
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Failed);
    let error: String = sqlx::query_scalar("SELECT error FROM runs WHERE id = $1")
        .bind(run.0)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(error.starts_with("change failed at dsm"), "{error}");
    assert!(error.contains("influxdb to revision 2"), "{error}");
    assert_eq!(env_status(&pool, &env).await, EnvironmentStatus::Ready);
    let history = sim.release_history(&ns, "influxdb").unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.description, "Rollback to 2", "{history:?}");
    assert_eq!(
        last.values, history[1].values,
        "influxdb runs its values of before"
    );
    let dsm = sim.release_history(&ns, "dsm").unwrap();
    assert_eq!(
        dsm.last().unwrap().values,
        dsm[0].values,
        "dsm back at revision 1: {dsm:?}"
    );
    sim.update_faults(|f| {
        f.fail_upgrades.clear();
    });

    // Decommissioned, proven, and the name free again.
    let sub = lifecycle::submit_decommission(&pool, env.environment_id, &manager, &name)
        .await
        .unwrap();
    let retire = Env {
        environment_id: env.environment_id,
        request_id: sub.request_id,
    };
    plan_worker(&pool, p.clone()).drain().await.unwrap();
    let plan = berth_runs::plans::current_plan(&pool, retire.request_id)
        .await
        .unwrap()
        .unwrap();
    let removal = plan.document.unwrap().removal.expect("a removal plan");
    assert_eq!(removal.apps, ["dsm", "influxdb", "certs", "foundation"]);
    assert!(
        removal
            .retained
            .iter()
            .any(|r| r.resource_type == "AWS::S3::Bucket"),
        "{:?}",
        removal.retained
    );
    let run = plan_and_approve(&pool, &company, &retire, p.clone()).await;
    let report = engine.drain().await.unwrap();
    assert_eq!(
        run_status(&pool, run).await.unwrap(),
        RunStatus::Succeeded,
        "{report:?}"
    );
    assert_eq!(
        env_status(&pool, &env).await,
        EnvironmentStatus::Decommissioned
    );
    let proof = events(&pool, &retire, "decommissioned").await;
    assert_eq!(proof.len(), 1);
    let checks = proof[0].1["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["passed"] == true), "{checks:?}");
    for name in ["no live stack", "no app", "no namespace", "no project"] {
        assert!(
            checks.iter().any(|c| c["name"] == name),
            "{name} in {checks:?}"
        );
    }
    assert!(releases_of(&pool, env.environment_id)
        .await
        .unwrap()
        .is_empty());
    let unit = UnitIdentity::parse("seaview", "SeaView", &slug, &name).unwrap();
    assert!(aws_stage()
        .await
        .find_unit_stack(&unit)
        .await
        .unwrap()
        .is_none());
    submitted_env(&pool, &company, &slug, &name).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_whole_life_through_apps_and_marketplace(pool: PgPool) {
    if !emulator_available("the_whole_life_through_apps_and_marketplace") {
        return;
    }
    whole_life(pool, false).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_whole_life_through_legacy_apps(pool: PgPool) {
    if !emulator_available("the_whole_life_through_legacy_apps") {
        return;
    }
    whole_life(pool, true).await;
}
