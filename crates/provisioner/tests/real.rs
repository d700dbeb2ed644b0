//! The real executor ([`Provisioner`]) end to end: the AWS stage against the local emulator
//! (tools/aws-emulator/start.sh; skipped with a notice when it is not running, failing when
//! `CI=true`) and the Rancher stage against the in-process simulator.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudformation::config::{Credentials, SharedCredentialsProvider};
use berth_aws::{AwsSettings, AwsStage, TagScheme, UnitIdentity, WaitPolicy};
use berth_provisioner::{Provisioner, ProvisionerSettings};
use berth_rancher::{ApiToken, HttpRetries, RancherClient, RancherConfig, Target};
use berth_rancher_sim::{RancherSim, SimConfig};
use berth_runs::testing::*;
use berth_runs::{run_status, steps_of_run, Engine, RunStatus, StepStatus};
use berth_testkit::emulator::{emulator_available, endpoint};
use secrecy::SecretString;
use sqlx::PgPool;

const REGISTRY_PASSWORD: &str = "Registry-Pass\"word-7d1f";

async fn aws_stage() -> AwsStage {
    let settings = AwsSettings {
        region: Some(std::env::var("AWS_REGION").unwrap_or_else(|_| "eu-central-1".into())),
        endpoint_url: Some(endpoint()),
        tag_scheme: TagScheme::default(),
    };
    let mut config = berth_aws::load_sdk_config(&settings).await.unwrap();
    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        config = config
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "berth-provisioner-tests",
            )))
            .build();
    }
    AwsStage::from_sdk_config(&config, TagScheme::default(), WaitPolicy::default())
}

fn rancher(sim: &RancherSim) -> RancherClient {
    let mut cfg = RancherConfig::new(sim.url(), ApiToken::new(sim.admin_token()));
    cfg.request_timeout = Duration::from_secs(5);
    cfg.retry = HttpRetries::doubling(4, Duration::from_millis(10), Duration::from_millis(200));
    cfg.poll_interval = Duration::from_millis(10);
    cfg.activation_timeout = Duration::from_secs(10);
    cfg.operation_grace = Duration::from_secs(5);
    cfg.confirm_timeout = Duration::from_secs(2);
    RancherClient::new(cfg).unwrap()
}

fn provisioner(aws: AwsStage, client: RancherClient) -> Provisioner {
    Provisioner::new(
        aws,
        Arc::new(templates()),
        client,
        ProvisionerSettings {
            cluster: "berth".into(),
            domain: "apps.seaview.example".into(),
            registry_server: "registry.seaview.example".into(),
            registry_username: "puller".into(),
            registry_password: SecretString::from(REGISTRY_PASSWORD.to_owned()),
            kms_key_id: None,
            existing_bucket: None,
            permissions_boundary: None,
        },
    )
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn provisions_insight_through_aws_and_rancher_surviving_a_restart(pool: PgPool) {
    if !emulator_available("provisions_insight_through_aws_and_rancher_surviving_a_restart") {
        return;
    }
    let sim = RancherSim::start(SimConfig::default()).await.unwrap();
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let slug = unique_slug();
    let name = format!("Trucking {}", &slug[5..]);
    let env = approved_env(&pool, &company, &slug, &name).await;
    let run = enqueue(&pool, &env, &company, &insight(), &quick_retry()).await;

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
    assert!(stack_id.contains(&format!("berth-seaview-{slug}")));

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

    // The values carry the real secrets from AWS; the database holds none of them.
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
    assert!(all_values.contains(secrets.database.password.expose()));
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
    let steps = steps_of_run(&pool, run).await.unwrap();
    assert!(steps[6].log.contains("dsm unchanged"), "{}", steps[6].log);
}
