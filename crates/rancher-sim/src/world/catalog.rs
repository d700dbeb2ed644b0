//! Cluster repos and their charts, and the seed repo with the `insight` blueprint's charts.

use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct ChartVersion {
    pub name: String,
    pub version: String,
    pub app_version: String,
    /// `catalog.cattle.io/kube-version`: versions whose constraint does not fit are hidden from
    /// the index unless `skipFilter=true`.
    pub kube_version: Option<String>,
    pub fits: bool,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub name: String,
    pub url: String,
    /// Newest first per chart.
    pub charts: BTreeMap<String, Vec<ChartVersion>>,
}

/// The `stable` repo with the charts of Berth's `insight` blueprint (and a few extra versions,
/// including one hidden by the Kubernetes-version filter, and `influxdb` 4.4.0 and `dsm` 2.8.0 to
/// upgrade to).
pub fn insight_repo() -> Repo {
    let v = |name: &str, version: &str, app: &str| ChartVersion {
        name: name.into(),
        version: version.into(),
        app_version: app.into(),
        kube_version: None,
        fits: true,
    };
    let mut charts = BTreeMap::new();
    charts.insert(
        "foundation".to_string(),
        vec![
            v("foundation", "0.3.1", "0.3.1"),
            v("foundation", "0.3.0", "0.3.0"),
        ],
    );
    charts.insert(
        "certs".to_string(),
        vec![v("certs", "1.2.0", "1.14.4"), v("certs", "1.1.0", "1.13.2")],
    );
    let mut too_new = v("influxdb", "4.12.5", "1.8.10");
    too_new.kube_version = Some(">= 1.99.0-0".into());
    too_new.fits = false;
    charts.insert(
        "influxdb".to_string(),
        vec![
            too_new,
            v("influxdb", "4.4.0", "1.8.0"),
            v("influxdb", "4.3.2", "1.7.9"),
            v("influxdb", "4.3.1", "1.7.9"),
        ],
    );
    charts.insert(
        "dsm".to_string(),
        vec![
            v("dsm", "2.8.0", "2.8.0"),
            v("dsm", "2.7.0", "2.7.0"),
            v("dsm", "2.6.3", "2.6.3"),
        ],
    );
    Repo {
        name: "stable".into(),
        url: "https://charts.helm.sh/stable".into(),
        charts,
    }
}
