//! The real executor ([`Provisioner`]) end to end: the AWS stage against the local emulator
//! (tools/aws-emulator/start.sh; skipped with a notice when it is not running, failing when
//! `CI=true`) and the Rancher stage against the in-process simulator.

use std::sync::Arc;

use berth_aws::api::CloudFormationApi;
use berth_aws::UnitIdentity;
use berth_rancher::Target;
use berth_rancher_sim::{RancherSim, SimConfig};
use berth_runs::testing::*;
use berth_runs::{run_status, steps_of_run, Engine, RunStatus, StepStatus};
use berth_testkit::emulator::emulator_available;
use sqlx::PgPool;

mod common;
use common::{
    aws_stage, edited_templates, provisioner, provisioner_with, rancher, REGISTRY_PASSWORD,
};

#[sqlx::test(migrator = "MIGRATOR")]
async fn provisions_insight_through_aws_and_rancher_surviving_a_restart(pool: PgPool) {
    if !emulator_available("provisions_insight_through_aws_and_rancher_surviving_a_restart") {
        return;
    }
    let sim = RancherSim::start(SimConfig::default()).await.unwrap();
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let slug = unique_slug();
    let name = format!("Trucking {}", &slug[5..]);
    let env = submitted_env(&pool, &company, &slug, &name).await;
    let planner = Arc::new(provisioner(aws_stage().await, rancher(&sim)));
    let run = plan_and_approve(&pool, &company, &env, planner).await;

    // First worker: the stack, the namespace and the secrets; then it "restarts" (its memory,
    // secrets included, is gone).
    let first = Engine::with_config(
        pool.clone(),
        provisioner(aws_stage().await, rancher(&sim)),
        config(),
    );
    let mut done = 0;
    while done < 3 {
        let report = first.tick().await.unwrap();
        assert_eq!(report.failed + report.errors, 0, "{report:?}");
        done += report.succeeded;
    }
    assert_eq!(first.executor().cached_runs(), 1);
    drop(first);

    let second = Engine::with_config(
        pool.clone(),
        provisioner(aws_stage().await, rancher(&sim)),
        config(),
    );
    let report = second.drain().await.unwrap();
    assert_eq!(report.failed + report.errors, 0, "{report:?}");
    let steps = steps_of_run(&pool, run).await.unwrap();
    assert_eq!(
        run_status(&pool, run).await.unwrap(),
        RunStatus::Succeeded,
        "{steps:#?}"
    );
    assert!(steps.iter().all(|s| s.status == StepStatus::Succeeded));
    assert_eq!(
        second.executor().cached_runs(),
        0,
        "secrets dropped at the end"
    );
    assert!(
        steps[3].log.contains("secrets re-read from AWS"),
        "{}",
        steps[3].log
    );
    assert!(steps[3]
        .log
        .contains("foundation installed 0.3.1 revision 1"));
    let stack_id = steps[0].output.as_ref().unwrap()["stack_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(stack_id.contains(&format!("berth-seaview--{slug}")));

    // Every chart installed once, in order, into the unit's namespace.
    let namespace = format!("seaview-{slug}");
    let history: Vec<(String, String)> = sim
        .helm_history()
        .into_iter()
        .filter(|h| h.namespace == namespace)
        .map(|h| (h.release, format!("{:?}", h.action)))
        .collect();
    assert_eq!(
        history.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(),
        ["foundation", "certs", "influxdb", "dsm"]
    );

    // The secrets from AWS reach the namespace as Secrets; no value of one is in any app,
    // release, operation or Helm record the simulator holds, nor in the database.
    let aws = aws_stage().await;
    let unit = UnitIdentity::parse("seaview", "SeaView", &slug, &name).unwrap();
    let found = aws.find_unit_stack(&unit).await.unwrap().unwrap();
    let secrets = aws
        .read_unit_secrets(&found.outputs().unwrap())
        .await
        .unwrap();
    let client = rancher(&sim);
    let target = Target {
        cluster_id: "c-m-berth001".into(),
        namespace,
    };
    let apps = client.list_apps(&target).await.unwrap();
    let all_values =
        serde_json::to_string(&apps.iter().map(|a| a.values.clone()).collect::<Vec<_>>()).unwrap();
    let held = sim.stored_app_data().to_string();
    // Searched for as is and as JSON escapes it (the registry password has a quote).
    let forms = |v: &str| {
        let json = serde_json::to_string(v).unwrap();
        [v.to_owned(), json[1..json.len() - 1].to_owned()]
    };
    let mut values: Vec<&str> = secrets.values().iter().map(|v| v.expose()).collect();
    values.push(REGISTRY_PASSWORD);
    for value in values {
        assert!(!value.is_empty());
        for form in forms(value) {
            assert!(!all_values.contains(&form), "an app's values hold a secret");
            assert!(
                !held.contains(&form),
                "the simulator holds a secret in a release"
            );
        }
    }
    // What the charts get instead: the Secrets' names.
    assert!(held.contains(&format!("{slug}-db")), "{held}");
    let in_ns: std::collections::BTreeMap<String, berth_rancher_sim::StoredSecret> = sim
        .secrets(&target.namespace)
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let keys = |name: &str| -> Vec<&str> {
        in_ns[&format!("{slug}-{name}")]
            .data
            .keys()
            .map(String::as_str)
            .collect()
    };
    assert_eq!(keys("db"), ["influxdb-password", "influxdb-user"]);
    assert_eq!(keys("oauth"), ["client-id", "client-secret"]);
    assert_eq!(
        keys("s3"),
        ["access-key-id", "bucket", "prefix", "secret-access-key"]
    );
    assert_eq!(keys("registry"), [".dockerconfigjson"]);
    let db = &in_ns[&format!("{slug}-db")];
    assert_eq!(db.kind, "Opaque");
    assert_eq!(
        db.data["influxdb-password"],
        secrets.database.password.expose()
    );
    assert_eq!(db.data["influxdb-user"], secrets.database.username);
    assert_eq!(
        in_ns[&format!("{slug}-oauth")].data["client-secret"],
        secrets.oauth.client_secret.expose()
    );
    assert_eq!(
        in_ns[&format!("{slug}-s3")].data["secret-access-key"],
        secrets.s3.secret_access_key.expose()
    );
    let registry = &in_ns[&format!("{slug}-registry")];
    assert_eq!(registry.kind, "kubernetes.io/dockerconfigjson");
    let pull_config: serde_json::Value =
        serde_json::from_str(&registry.data[".dockerconfigjson"]).unwrap();
    let auths = pull_config["auths"].as_object().unwrap();
    assert_eq!(auths.len(), 1);
    assert_eq!(
        auths.values().next().unwrap()["password"],
        REGISTRY_PASSWORD
    );
    // Written once: the later chart steps found them as they should be.
    assert_eq!(sim.count("POST k8s secret"), 4);
    assert_eq!(sim.count("PUT k8s secret"), 0);
    let stored: String = sqlx::query_scalar(
        "SELECT concat((SELECT string_agg(coalesce(output::text, '') || log || coalesce(error, ''), '')
                        FROM steps),
                       (SELECT string_agg(details::text, '') FROM events))",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    for value in secrets.values() {
        assert!(!stored.contains(value.expose()), "a secret was persisted");
    }
    assert!(!stored.contains(REGISTRY_PASSWORD));

    // Running the same steps again changes nothing outside (reconcile): a fresh retry of the
    // whole run is not possible (it succeeded), so re-run the executor directly on the charts.
    let installs_before = sim.count("POST clusterrepo action=install");
    // One Secret drifted meanwhile (edited by hand, or an older value): the re-run puts it back.
    client
        .ensure_secret(
            &target.cluster_id,
            &target.namespace,
            &berth_rancher::KubeSecret::opaque(format!("{slug}-db"))
                .with("influxdb-user", "someone")
                .with("influxdb-password", "drifted"),
        )
        .await
        .unwrap();
    sqlx::query(
        "UPDATE steps SET status = 'pending', finished_at = NULL WHERE run_id = $1
         AND name LIKE 'chart:%'",
    )
    .bind(run.0)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE runs SET status = 'running', finished_at = NULL WHERE id = $1")
        .bind(run.0)
        .execute(&pool)
        .await
        .unwrap();
    let third = Engine::with_config(
        pool.clone(),
        provisioner(aws_stage().await, rancher(&sim)),
        config(),
    );
    third.drain().await.unwrap();
    assert_eq!(
        sim.count("POST clusterrepo action=install"),
        installs_before
    );
    // No Secret created again; the drifted one replaced. (The chart steps reset here can run
    // at once and race on it: a stale replace is a 409, re-read, and ends as "unchanged".)
    assert_eq!(sim.count("POST k8s secret"), 4);
    assert!(sim.count("PUT k8s secret") >= 2, "{:?}", sim.counters());
    let db = sim
        .secrets(&target.namespace)
        .into_iter()
        .find(|s| s.name == format!("{slug}-db"))
        .unwrap();
    assert_eq!(
        db.data["influxdb-password"],
        secrets.database.password.expose()
    );
    assert_eq!(db.data["influxdb-user"], secrets.database.username);
    assert!(db.labels.contains_key("app.kubernetes.io/managed-by"));
    let steps = steps_of_run(&pool, run).await.unwrap();
    assert!(steps[6].log.contains("dsm unchanged"), "{}", steps[6].log);
    assert_eq!(
        steps
            .iter()
            .filter(|s| s.log.contains(&format!("secret {slug}-db updated")))
            .count(),
        1,
        "{steps:#?}"
    );
    for step in &steps {
        let text = format!("{} {:?} {:?}", step.log, step.output, step.error);
        assert!(!text.contains(secrets.database.password.expose()));
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_plan_shows_what_will_be_built_and_leaves_nothing_behind(pool: PgPool) {
    if !emulator_available("a_plan_shows_what_will_be_built_and_leaves_nothing_behind") {
        return;
    }
    let sim = RancherSim::start(SimConfig::default()).await.unwrap();
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let slug = unique_slug();
    let name = format!("Plan {}", &slug[5..]);
    let env = submitted_env(&pool, &company, &slug, &name).await;
    let planner = Arc::new(provisioner(aws_stage().await, rancher(&sim)));
    plan_worker(&pool, planner.clone()).drain().await.unwrap();
    let plan = berth_runs::plans::current_plan(&pool, env.request_id)
        .await
        .unwrap()
        .unwrap();
    let doc = plan
        .document
        .unwrap_or_else(|| panic!("plan failed: {:?}", plan.error));

    assert_eq!(doc.aws.kind, "create");
    let types: Vec<&str> = doc
        .aws
        .changes
        .iter()
        .map(|c| c.resource_type.as_str())
        .collect();
    assert!(types.contains(&"AWS::SecretsManager::Secret"), "{types:?}");
    assert!(types.contains(&"AWS::IAM::User"), "{types:?}");
    assert!(doc.aws.changes.iter().all(|c| c.action == "add"));
    // The password is no stack parameter: the plan shows the version of the company's
    // registry password secret that the stack reads it from, and nothing redacted.
    assert!(doc
        .aws
        .parameters
        .iter()
        .any(|(k, v)| k == "RegistryPasswordVersion" && v.len() == 36));
    assert!(doc.aws.parameters.iter().all(|(_, v)| v != "[redacted]"));
    let charts: Vec<String> = doc
        .charts
        .iter()
        .map(|c| format!("{} {}", c.chart, c.version))
        .collect();
    assert_eq!(
        charts,
        [
            "foundation 0.3.1",
            "certs 1.2.0",
            "influxdb 4.3.2",
            "dsm 2.7.0"
        ]
    );
    // The plan shows the pull secret's name; the charts never get a secret value.
    assert!(
        doc.charts[0].values.contains(&format!("{slug}-registry"))
            && !doc.charts.iter().any(|c| c.values.contains("[redacted]")),
        "{}",
        doc.charts[0].values
    );
    assert!(doc.charts[0].values.contains("limitsCpu: \"8\""));
    assert_eq!(doc.kubernetes.namespace, format!("seaview-{slug}"));
    assert!(!doc.kubernetes.namespace_exists && doc.kubernetes.existing_project.is_none());
    assert_eq!(doc.capacity.allocatable_cpu_millis, 64_000);
    assert!(doc.capacity.fits());
    let stored = serde_json::to_string(&doc).unwrap();
    assert!(!stored.contains(REGISTRY_PASSWORD));

    // Nothing was made: no stack, no change set, no project or namespace.
    let aws = aws_stage().await;
    let unit = UnitIdentity::parse("seaview", "SeaView", &slug, &name).unwrap();
    assert!(aws.find_unit_stack(&unit).await.unwrap().is_none());
    let stack_name = unit.stack_name();
    let sets = aws
        .driver()
        .api()
        .list_change_sets(&stack_name)
        .await
        .unwrap();
    assert!(sets.iter().all(|s| s.stack_name != stack_name), "{sets:?}");
    let client = rancher(&sim);
    assert!(client
        .find_project("c-m-berth001", &format!("seaview-{slug}"))
        .await
        .unwrap()
        .is_none());

    // Planning again from the same state gives the same hash.
    berth_runs::plans::request_plan(&pool, env.request_id, &actor(&company, true))
        .await
        .unwrap();
    plan_worker(&pool, planner).drain().await.unwrap();
    assert_eq!(ready_hash(&pool, &env).await, plan.hash.unwrap());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_edited_values_template_stops_the_run_before_any_write(pool: PgPool) {
    if !emulator_available("an_edited_values_template_stops_the_run_before_any_write") {
        return;
    }
    let sim = RancherSim::start(SimConfig::default()).await.unwrap();
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let slug = unique_slug();
    let name = format!("Edit {}", &slug[5..]);
    let env = submitted_env(&pool, &company, &slug, &name).await;
    let planner = Arc::new(provisioner(aws_stage().await, rancher(&sim)));
    let run = plan_and_approve(&pool, &company, &env, planner).await;

    // After the approval, someone edits a values template and the worker restarts with it.
    let (edited, _folder) =
        edited_templates("values/dsm.yaml.j2", |t| format!("{t}\nextraFlag: true\n"));
    let engine = Engine::with_config(
        pool.clone(),
        provisioner_with(aws_stage().await, rancher(&sim), edited),
        config(),
    );
    engine.drain().await.unwrap();
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Cancelled);
    let stopped = events(&pool, &env, "run.needs_reapproval").await;
    assert!(
        stopped[0].1["changed"]
            .as_str()
            .unwrap()
            .contains("the chart or rendered values of dsm"),
        "{:?}",
        stopped[0].1
    );
    assert_eq!(
        request_status(&pool, &env).await.0,
        berth_domain::RequestStatus::Submitted
    );
    // No AWS or Rancher write happened.
    let aws = aws_stage().await;
    let unit = UnitIdentity::parse("seaview", "SeaView", &slug, &name).unwrap();
    assert!(aws.find_unit_stack(&unit).await.unwrap().is_none());
    assert!(rancher(&sim)
        .find_project("c-m-berth001", &format!("seaview-{slug}"))
        .await
        .unwrap()
        .is_none());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_unknown_chart_version_fails_the_plan(pool: PgPool) {
    if !emulator_available("an_unknown_chart_version_fails_the_plan") {
        return;
    }
    let sim = RancherSim::start(SimConfig::default()).await.unwrap();
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let slug = unique_slug();
    let env = submitted_env(&pool, &company, &slug, &format!("Chart {}", &slug[5..])).await;
    let (edited, _folder) = edited_templates("blueprints/insight.yaml", |t| {
        t.replace("version: 2.7.0", "version: 9.9.9")
    });
    let planner = provisioner_with(aws_stage().await, rancher(&sim), edited);
    plan_worker(&pool, planner).drain().await.unwrap();
    let plan = berth_runs::plans::current_plan(&pool, env.request_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(plan.status, berth_domain::PlanStatus::Failed);
    let error = plan.error.unwrap();
    assert!(error.contains("chart dsm 9.9.9"), "{error}");
    assert!(error.contains("available: 2.8.0, 2.7.0"), "{error}");
}
