//! The chart index and Helm's release rules: revisions, values reuse/replace/reset, name reuse,
//! stuck releases, uninstall.

use berth_rancher_sim::Faults;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{install_body, SimApi, B};

#[tokio::test]
async fn index_hides_unfit_versions_unless_skip_filter() {
    let api = SimApi::new().await;
    let (_, idx) = api
        .get(&format!(
            "{B}/catalog.cattle.io.clusterrepos/stable?link=index"
        ))
        .await;
    let versions: Vec<&str> = idx["entries"]["influxdb"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["4.4.0", "4.3.2", "4.3.1"]);
    let (_, idx) = api
        .get(&format!(
            "{B}/catalog.cattle.io.clusterrepos/stable?link=index&skipFilter=true"
        ))
        .await;
    assert_eq!(
        idx["entries"]["influxdb"][0]["version"], "4.12.5",
        "newest first"
    );
    for chart in ["foundation", "certs", "dsm"] {
        assert!(
            idx["entries"][chart]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
            "{chart} seeded"
        );
    }
    // Local cluster through /v1, type names in any case and number.
    let (s, repo) = api.get("/v1/Catalog.Cattle.IO.ClusterRepo/stable").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(repo["status"]["conditions"][0]["type"], "Downloaded");
}

#[tokio::test]
async fn helm_release_lifecycle_and_values_rules() {
    let api = SimApi::new().await;
    let repo = |a: &str| format!("{B}/catalog.cattle.io.clusterrepos/stable?action={a}");
    let app = format!("{B}/catalog.cattle.io.apps/ns1/influxdb");
    let (s, _) = api.get(&app).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "the App 404s before Helm's first revision"
    );

    let (s, out) = api
        .post(
            &repo("install"),
            install_body("ns1", "4.3.1", json!({"a": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(out["type"], "chartActionOutput");
    let op_path = format!(
        "{B}/catalog.cattle.io.operations/ns1/{}",
        out["operationName"].as_str().unwrap()
    );
    let op = api
        .until(&op_path, |v| {
            v["status"]["conditions"][0]["status"] == "False"
        })
        .await;
    assert_eq!(
        op["status"]["conditions"][1],
        json!({"type": "Stalled", "status": "False", "message": ""})
    );
    assert!(op["status"]["command"][0]
        .as_str()
        .unwrap()
        .starts_with("helm install"));
    let (_, a) = api.get(&app).await;
    assert_eq!(
        (
            a["spec"]["info"]["status"].as_str(),
            a["spec"]["version"].as_u64()
        ),
        (Some("deployed"), Some(1))
    );

    // Name reuse fails in the operation.
    let (_, out) = api
        .post(
            &repo("install"),
            install_body("ns1", "4.3.1", json!({"a": 1})),
        )
        .await;
    let op_path = format!(
        "{B}/catalog.cattle.io.operations/ns1/{}",
        out["operationName"].as_str().unwrap()
    );
    let op = api
        .until(&op_path, |v| {
            v["status"]["conditions"][1]["status"] == "True"
        })
        .await;
    assert!(op["status"]["conditions"][1]["message"]
        .as_str()
        .unwrap()
        .contains("exit code: 1"));
    let (_, logs) = api
        .call(reqwest::Method::GET, &format!("{op_path}?link=logs"), None)
        .await;
    assert!(
        logs.contains("cannot re-use a name that is still in use"),
        "{logs}"
    );

    // Empty values reuse the old ones; non-empty replace; resetValues takes exactly what is sent.
    // Rancher reads resetValues per chart (`ChartUpgrade`): a top-level one is ignored.
    let upgrade = |values: Value, reset: bool, top_level: bool| {
        let mut b = install_body("ns1", "4.3.2", values);
        if top_level {
            b["resetValues"] = json!(reset);
        } else {
            b["charts"][0]["resetValues"] = json!(reset);
        }
        b
    };
    for (values, reset, top_level, expected) in [
        (json!({}), false, false, json!({"a": 1})),
        (json!({"b": 2}), false, false, json!({"b": 2})),
        (json!({}), true, true, json!({"b": 2})),
        (json!({}), true, false, json!({})),
    ] {
        let (_, out) = api
            .post(&repo("upgrade"), upgrade(values, reset, top_level))
            .await;
        let op_path = format!(
            "{B}/catalog.cattle.io.operations/ns1/{}",
            out["operationName"].as_str().unwrap()
        );
        api.until(&op_path, |v| {
            v["status"]["conditions"][0]["status"] == "False"
        })
        .await;
        let (_, a) = api.get(&app).await;
        assert_eq!(a["spec"]["values"], expected);
        assert_eq!(a["spec"]["chart"]["metadata"]["version"], "4.3.2");
    }
    let (_, a) = api.get(&app).await;
    assert_eq!(a["spec"]["version"], 5);

    // Uninstall: 201 + operation, then the App is gone; a missing App is 404.
    let (s, _) = api
        .post(
            &format!("{app}?action=uninstall"),
            json!({"timeout": "60s"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    api.until(&app, |v| v["code"] == "NotFound").await;
    let (s, _) = api
        .post(&format!("{app}?action=uninstall"), json!({}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stuck_release_blocks_further_operations() {
    let api = SimApi::new().await;
    api.sim.update_faults(|f| f.stuck_pending_install = true);
    let repo = |a: &str| format!("{B}/catalog.cattle.io.clusterrepos/stable?action={a}");
    let (_, out) = api
        .post(&repo("install"), install_body("ns2", "4.3.2", json!({})))
        .await;
    let op_path = format!(
        "{B}/catalog.cattle.io.operations/ns2/{}",
        out["operationName"].as_str().unwrap()
    );
    api.until(&op_path, |v| {
        v["status"]["conditions"][0]["status"] == "False"
    })
    .await;
    let (_, a) = api
        .get(&format!("{B}/catalog.cattle.io.apps/ns2/influxdb"))
        .await;
    assert_eq!(a["spec"]["info"]["status"], "pending-install");
    assert_eq!(a["status"]["summary"]["transitioning"], true);
    api.sim.set_faults(Faults::default());
    let (_, out) = api
        .post(
            &repo("upgrade"),
            install_body("ns2", "4.3.2", json!({"x": 1})),
        )
        .await;
    let op_path = format!(
        "{B}/catalog.cattle.io.operations/ns2/{}",
        out["operationName"].as_str().unwrap()
    );
    api.until(&op_path, |v| {
        v["status"]["conditions"][1]["status"] == "True"
    })
    .await;
    let (_, logs) = api
        .call(reqwest::Method::GET, &format!("{op_path}?link=logs"), None)
        .await;
    assert!(
        logs.contains("another operation (install/upgrade/rollback) is in progress"),
        "{logs}"
    );
}
