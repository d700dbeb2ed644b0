#![allow(dead_code)]

use std::path::PathBuf;

use berth_blueprint::{ClusterFacts, RenderContext, Secrets, UnitInputs};

pub fn templates_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../templates")
}

/// The secrets the AWS stage hands over for a unit, with awkward characters on purpose.
pub fn sample_secrets() -> Secrets {
    [
        ("registry_server", "registry.seaview.example"),
        ("registry_username", "robot$trucking"),
        ("registry_password", "eyJhdXRocyI6e319: #not-a-comment"),
        ("db_username", "trucking_admin"),
        (
            "db_password",
            "p@ss: w0rd # \"quoted\" 'single'\nsecond line",
        ),
        ("oauth_client_id", "berth-trucking"),
        ("oauth_client_secret", "s3cr3t/with\\backslash"),
        ("s3_access_key_id", "AKIAEXAMPLE"),
        ("s3_bucket", "seaview-berth-data"),
        ("s3_prefix", "trucking/"),
        (
            "s3_secret_access_key",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ),
    ]
    .into_iter()
    .collect()
}

pub fn sample_context() -> RenderContext {
    RenderContext {
        unit: UnitInputs::new(
            "SeaView",
            "Trucking: North #1",
            "trucking",
            berth_domain::Size::Medium,
        ),
        secrets: sample_secrets(),
        cluster: ClusterFacts {
            cluster_id: "c-m-berth001".into(),
            namespace: "seaview-trucking".into(),
            domain: "apps.seaview.example".into(),
        },
    }
}
