//! The contract suite: runs against the in-process simulator by default, and against a real
//! Rancher when `RANCHER_URL` and `RANCHER_TOKEN` are set (see `common::harness`). Assertions on
//! the simulator's call counters only run against the simulator.

mod common;

use std::time::Duration;

use berth_rancher::{
    ApiFamily, ApiToken, ChartAction, ChartSpec, ClusterCapacity, HelmStatus, RancherClient,
    RancherError, Target, UninstallOutcome,
};
use berth_rancher_sim::{ClusterResources, RancherSim, Timings};
use common::{harness, test_config, unique};
use serde_json::json;

/// Requests that could have changed something, by counter key (`POST project`, …).
fn writes(sim: &RancherSim) -> Vec<String> {
    sim.counters()
        .into_keys()
        .filter(|k| {
            ["POST ", "PUT ", "PATCH ", "DELETE "]
                .iter()
                .any(|m| k.starts_with(m))
        })
        .collect()
}

#[tokio::test]
async fn ping_and_token_check() {
    let h = harness().await;
    h.client.ping().await.expect("ping");
    let me = h.client.check_token().await.expect("token accepted");
    assert!(!me.id.is_empty());

    let bad = RancherClient::new(test_config(&h.url, "token-nope:wrong")).unwrap();
    let before = h.sim.as_ref().map(|s| s.count("GET user"));
    match bad.check_token().await {
        Err(RancherError::Unauthorized { message }) => {
            assert!(message.contains("must authenticate") || !message.is_empty())
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    if let (Some(sim), Some(before)) = (&h.sim, before) {
        assert_eq!(
            sim.count("GET user"),
            before + 1,
            "a 401 must not be retried"
        );
    }
}

#[tokio::test]
async fn token_never_appears_in_debug_output() {
    let h = harness().await;
    let dbg = format!("{:?} {:?}", h.client, h.client.config());
    assert!(!dbg.contains(&h.token), "{dbg}");
    assert!(!format!("{:?}", ApiToken::new(h.token.clone())).contains(&h.token));
}

#[tokio::test]
async fn cluster_lookup() {
    let h = harness().await;
    let c = h.client.find_cluster(&h.cluster).await.expect("cluster");
    assert!(!c.id.is_empty());
    let by_id = h.client.find_cluster(&c.id).await.expect("by id");
    assert_eq!(by_id.id, c.id);
    match h.client.find_cluster("no-such-cluster-berth").await {
        Err(RancherError::ClusterNotFound(name)) => assert_eq!(name, "no-such-cluster-berth"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn cluster_capacity_is_read_from_allocatable() {
    let h = harness().await;
    let cluster = h.client.find_cluster(&h.cluster).await.unwrap();
    let cap = h
        .client
        .cluster_capacity(&h.cluster)
        .await
        .expect("capacity");
    assert!(cap.cpu_millis > 0 && cap.memory_bytes > 0, "{cap:?}");
    assert_eq!(cluster.allocatable, Some(cap));
    assert_eq!(
        h.client.cluster_capacity(&cluster.id).await.unwrap(),
        cap,
        "by id too"
    );
    match h.client.cluster_capacity("no-such-cluster-berth").await {
        Err(RancherError::ClusterNotFound(name)) => assert_eq!(name, "no-such-cluster-berth"),
        other => panic!("{other:?}"),
    }

    let Some(sim) = &h.sim else { return };
    assert_eq!(
        cap,
        ClusterCapacity {
            cpu_millis: 64_000,
            memory_bytes: 256 << 30
        },
        "the simulator's default 64 CPU / 256Gi"
    );
    let set_allocatable = |pairs: &[(&str, &str)]| {
        let found = sim.update_cluster_resources(&cluster.id, |r| {
            r.allocatable = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        });
        assert!(found);
    };
    set_allocatable(&[("cpu", "15500m"), ("memory", "65536Mi"), ("pods", "110")]);
    assert_eq!(
        h.client.cluster_capacity(&h.cluster).await.unwrap(),
        ClusterCapacity {
            cpu_millis: 15_500,
            memory_bytes: 64 << 30
        }
    );

    set_allocatable(&[("cpu", "8")]);
    match h.client.cluster_capacity(&h.cluster).await {
        Err(RancherError::CapacityUnavailable {
            cluster: which,
            field,
            reason,
        }) => {
            assert_eq!(which, format!("{} ({})", cluster.name, cluster.id));
            assert_eq!(field, "allocatable.memory");
            assert_eq!(reason, "Rancher reports none");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        h.client.find_cluster(&h.cluster).await.unwrap().allocatable,
        None,
        "a cluster without a usable allocatable is still found"
    );

    set_allocatable(&[("cpu", "lots"), ("memory", "1Gi")]);
    let err = h.client.cluster_capacity(&h.cluster).await.unwrap_err();
    assert!(
        err.to_string().contains("allocatable.cpu") && err.to_string().contains("\"lots\""),
        "{err}"
    );
    let other = sim.cluster_resources("local").unwrap();
    assert_eq!(other, ClusterResources::default(), "one cluster changed");
    assert_eq!(
        writes(sim),
        Vec::<String>::new(),
        "reading capacity writes nothing"
    );
}

#[tokio::test]
async fn project_and_namespace_lookups_only_read() {
    let h = harness().await;
    let cluster = h.client.find_cluster(&h.cluster).await.unwrap();
    let name = unique("berth-ct");
    assert_eq!(
        h.client.find_project(&cluster.id, &name).await.unwrap(),
        None
    );
    assert_eq!(
        h.client.find_namespace(&cluster.id, &name).await.unwrap(),
        None
    );
    if let Some(sim) = &h.sim {
        assert_eq!(writes(sim), Vec::<String>::new(), "lookups create nothing");
    }

    let p = h
        .client
        .ensure_project(&cluster.id, &name, "contract test")
        .await
        .unwrap();
    let found = h
        .client
        .find_project(&cluster.id, &name)
        .await
        .unwrap()
        .expect("found");
    assert_eq!(
        (found.id.as_str(), found.name.as_str()),
        (p.id.as_str(), name.as_str())
    );
    let ns = h
        .client
        .ensure_namespace(&cluster.id, &p.id, &name)
        .await
        .unwrap();
    assert_eq!(
        h.client.find_namespace(&cluster.id, &name).await.unwrap(),
        Some(ns)
    );

    if let Some(sim) = &h.sim {
        // Duplicate names: the lookup and ensure_project agree on the oldest.
        let http = reqwest::Client::builder()
            .user_agent("berth-test")
            .build()
            .unwrap();
        let dup: serde_json::Value = http
            .post(format!("{}/v3/projects", h.url))
            .bearer_auth(&h.token)
            .json(&json!({"type": "project", "name": name, "clusterId": cluster.id}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        let dup_id = dup["id"].as_str().unwrap();
        assert_ne!(dup_id, p.id);
        let found = h.client.find_project(&cluster.id, &name).await.unwrap();
        assert_eq!(found.map(|f| f.id), Some(p.id.clone()));
        let ensured = h
            .client
            .ensure_project(&cluster.id, &name, "contract test")
            .await
            .unwrap();
        assert_eq!(ensured.id, p.id);
        assert_eq!(sim.count("POST project"), 2, "ours and the duplicate");

        // A namespace the token cannot see yet (RBAC lag) is an error, never "absent".
        sim.set_timings(Timings {
            namespace_forbidden_window: std::time::Duration::from_secs(60),
            ..Timings::fast()
        });
        let hidden = unique("berth-ct");
        http.post(format!("{}/v3/clusters/{}/namespaces", h.url, cluster.id))
            .bearer_auth(&h.token)
            .json(&json!({"type": "namespace", "name": hidden, "projectId": p.id}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
        let err = h
            .client
            .find_namespace(&cluster.id, &hidden)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(403), "{err}");
        sim.set_timings(Timings::fast());
        h.client.delete_project(dup_id).await.unwrap();
    }
    h.client.delete_project(&p.id).await.unwrap();
}

#[tokio::test]
async fn project_and_namespace_are_ensured_idempotently() {
    let h = harness().await;
    let cluster = h.client.find_cluster(&h.cluster).await.unwrap();
    let name = unique("berth-ct");
    let p1 = h
        .client
        .ensure_project(&cluster.id, &name, "contract test")
        .await
        .unwrap();
    assert_eq!(p1.state, "active");
    assert!(
        p1.id.starts_with(&format!("{}:p-", cluster.id)),
        "{}",
        p1.id
    );
    let p2 = h
        .client
        .ensure_project(&cluster.id, &name, "contract test")
        .await
        .unwrap();
    assert_eq!(p1.id, p2.id);

    let ns1 = h
        .client
        .ensure_namespace(&cluster.id, &p1.id, &name)
        .await
        .unwrap();
    assert_eq!(ns1.state, "active");
    assert_eq!(ns1.project_id.as_deref(), Some(p1.id.as_str()));
    let ns2 = h
        .client
        .ensure_namespace(&cluster.id, &p1.id, &name)
        .await
        .unwrap();
    assert_eq!(ns1, ns2);

    // A namespace in a missing project: Norman's 422 InvalidReference, not retried.
    let err = h
        .client
        .ensure_namespace(
            &cluster.id,
            &format!("{}:p-nope0", cluster.id),
            &unique("berth-ct"),
        )
        .await
        .unwrap_err();
    match &err {
        RancherError::Api {
            family,
            status,
            code,
            ..
        } => {
            assert_eq!((*family, *status), (ApiFamily::Norman, 422), "{err}");
            assert_eq!(code, "InvalidReference");
        }
        other => panic!("{other:?}"),
    }

    if let Some(sim) = &h.sim {
        assert_eq!(sim.count("POST project"), 1, "{:?}", sim.counters());
        assert_eq!(sim.count("POST namespace"), 2, "one create + one refused");
    }
    h.client.delete_project(&p1.id).await.unwrap();
    h.client
        .delete_project(&p1.id)
        .await
        .expect("deleting twice is fine");
}

#[tokio::test]
async fn repo_index_lists_versions() {
    let h = harness().await;
    let cluster = h.client.find_cluster(&h.cluster).await.unwrap();
    h.client
        .wait_repo_ready(&cluster.id, &h.repo)
        .await
        .expect("repo ready");
    let versions = h
        .client
        .chart_versions(&cluster.id, &h.repo, &h.chart)
        .await
        .unwrap();
    assert!(versions.contains(&h.version), "{versions:?}");
    assert!(versions.contains(&h.old_version), "{versions:?}");

    let err = h
        .client
        .wait_repo_ready(&cluster.id, "no-such-repo")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        matches!(
            err,
            RancherError::Api {
                family: ApiFamily::Steve,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn install_is_idempotent_then_upgrades_then_uninstalls() {
    let h = harness().await;
    let cluster = h.client.find_cluster(&h.cluster).await.unwrap();
    let name = unique("berth-ct");
    let project = h
        .client
        .ensure_project(&cluster.id, &name, "contract test")
        .await
        .unwrap();
    h.client
        .ensure_namespace(&cluster.id, &project.id, &name)
        .await
        .unwrap();
    let target = Target {
        cluster_id: cluster.id.clone(),
        namespace: name.clone(),
    };
    let mut spec = ChartSpec {
        release: "influx".into(),
        repo: h.repo.clone(),
        chart: h.chart.clone(),
        version: h.old_version.clone(),
        values: json!({"persistence": {"enabled": false}, "note": "a: b # c"}),
        wait: true,
        timeout: Duration::from_secs(300),
    };

    assert!(h.client.get_app(&target, "influx").await.unwrap().is_none());
    let first = h
        .client
        .deploy_chart(&target, &spec)
        .await
        .expect("install");
    assert_eq!(first.action, ChartAction::Installed);
    assert_eq!(first.chart_version, h.old_version);
    let app = h
        .client
        .get_app(&target, "influx")
        .await
        .unwrap()
        .expect("app exists");
    assert_eq!(app.status, HelmStatus::Deployed);
    assert_eq!(app.values, spec.values);

    let again = h.client.deploy_chart(&target, &spec).await.unwrap();
    assert_eq!(again.action, ChartAction::Unchanged);
    assert_eq!(again.revision, first.revision);

    spec.values = json!({"persistence": {"enabled": true, "size": "1Gi"}});
    let changed = h.client.deploy_chart(&target, &spec).await.unwrap();
    assert_eq!(changed.action, ChartAction::Upgraded);
    assert!(changed.revision > first.revision);
    let app = h.client.get_app(&target, "influx").await.unwrap().unwrap();
    assert_eq!(app.values, spec.values, "values are replaced, not merged");

    spec.version = h.version.clone();
    let bumped = h.client.deploy_chart(&target, &spec).await.unwrap();
    assert_eq!(bumped.action, ChartAction::Upgraded);
    assert_eq!(bumped.chart_version, h.version);
    assert!(bumped.revision > changed.revision);

    let listed = h.client.list_apps(&target).await.unwrap();
    assert_eq!(listed.len(), 1);

    if let Some(sim) = &h.sim {
        let actions: Vec<_> = sim
            .helm_history()
            .into_iter()
            .filter(|r| r.namespace == name)
            .collect();
        assert_eq!(
            actions.len(),
            3,
            "install + 2 upgrades, nothing for the unchanged call: {actions:?}"
        );
        assert_eq!(sim.count("POST clusterrepo action=install"), 1);
        assert_eq!(sim.count("POST clusterrepo action=upgrade"), 2);
    }

    let gone = h
        .client
        .uninstall(&target, "influx", Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(gone, UninstallOutcome::Removed);
    assert!(h.client.get_app(&target, "influx").await.unwrap().is_none());
    let again = h
        .client
        .uninstall(&target, "influx", Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(again, UninstallOutcome::NotInstalled);
    h.client.delete_project(&project.id).await.unwrap();
}

#[tokio::test]
async fn unknown_chart_version_and_missing_repo_are_typed_errors() {
    let h = harness().await;
    let cluster = h.client.find_cluster(&h.cluster).await.unwrap();
    let target = Target {
        cluster_id: cluster.id.clone(),
        namespace: unique("berth-ct"),
    };
    let spec = ChartSpec {
        release: "influx".into(),
        repo: h.repo.clone(),
        chart: h.chart.clone(),
        version: "0.0.0-nope".into(),
        values: json!({}),
        wait: true,
        timeout: Duration::from_secs(60),
    };
    let err = h.client.deploy_chart(&target, &spec).await.unwrap_err();
    match &err {
        RancherError::Api {
            status: 500,
            message,
            ..
        } => assert!(message.contains("no chart version found"), "{err}"),
        other => panic!("{other:?}"),
    }
    if let Some(sim) = &h.sim {
        assert_eq!(
            sim.count("POST clusterrepo action=install"),
            1,
            "a processed 500 on a Helm action is not retried"
        );
    }
    let err = h
        .client
        .deploy_chart(
            &target,
            &ChartSpec {
                repo: "no-such-repo".into(),
                ..spec
            },
        )
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}
