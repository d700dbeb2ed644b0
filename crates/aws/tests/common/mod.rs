//! Shared helpers of the integration tests against the local AWS emulator (tools/aws-emulator/start.sh).
//!
//! The emulator is chosen through the standard variables only: `AWS_ENDPOINT_URL` (default
//! `http://127.0.0.1:5055` when unset), `AWS_REGION` (default `eu-central-1`) and the usual
//! credentials (dummy ones when none are set). Each test runs in its own moto account
//! (`x-moto-account-id` header), so tests run in parallel on one emulator.
//! When the emulator is not reachable, tests print a notice and return, except with
//! `CI=true`, where they fail.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_cloudformation::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_cloudformation::config::{ConfigBag, Credentials, Intercept, RuntimeComponents};
use aws_sdk_cloudformation::error::BoxError;
use berth_aws::{
    AwsSettings, AwsStage, EnsuredUnit, TagScheme, UnitIdentity, UnitParameters, WaitPolicy,
};
use secrecy::SecretString;

/// Sets moto's account header on every request: one isolated account per test.
#[derive(Debug, Clone)]
struct MotoAccount(String);

impl Intercept for MotoAccount {
    fn name(&self) -> &'static str {
        "MotoAccount"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context
            .request_mut()
            .headers_mut()
            .insert("x-moto-account-id", self.0.clone());
        Ok(())
    }
}

#[allow(unused_imports)] // not every test binary talks to the emulator
pub use berth_testkit::emulator::{emulator_available, endpoint};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A fresh 12-digit moto account per test.
pub fn account() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("{:012}", (nanos / 1000 + n * 7919) % 1_000_000_000_000)
}

/// SDK clients for the emulator, all in one moto account.
#[derive(Debug, Clone)]
pub struct Clients {
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
}

impl Clients {
    /// Clients in a fresh moto account.
    pub async fn new() -> Self {
        Self::in_account(&account(), |b| b).await
    }

    /// Clients in `account`, the CloudFormation one built through `tweak` (extra
    /// interceptors, retry settings).
    pub async fn in_account(
        account: &str,
        tweak: impl FnOnce(
            aws_sdk_cloudformation::config::Builder,
        ) -> aws_sdk_cloudformation::config::Builder,
    ) -> Self {
        let settings = AwsSettings {
            region: std::env::var("AWS_REGION")
                .ok()
                .or_else(|| Some("eu-central-1".into())),
            endpoint_url: Some(endpoint()),
            tag_scheme: TagScheme::default(),
        };
        let config = berth_aws::load_sdk_config(&settings).await.unwrap();
        let interceptor = MotoAccount(account.to_owned());
        let dummy = std::env::var("AWS_ACCESS_KEY_ID").is_err();
        let mut cfn =
            aws_sdk_cloudformation::config::Builder::from(&config).interceptor(interceptor.clone());
        let mut sm =
            aws_sdk_secretsmanager::config::Builder::from(&config).interceptor(interceptor);
        if dummy {
            let creds = Credentials::for_tests();
            cfn = cfn.credentials_provider(creds.clone());
            sm = sm.credentials_provider(creds);
        }
        Self {
            cloudformation: aws_sdk_cloudformation::Client::from_conf(tweak(cfn).build()),
            secretsmanager: aws_sdk_secretsmanager::Client::from_conf(sm.build()),
        }
    }

    pub fn stage(&self) -> AwsStage {
        AwsStage::from_clients(
            self.cloudformation.clone(),
            self.secretsmanager.clone(),
            TagScheme::default(),
            WaitPolicy::default(),
        )
    }
}

pub async fn stage() -> AwsStage {
    Clients::new().await.stage()
}

pub fn trucking() -> UnitIdentity {
    UnitIdentity::parse("seaview", "SeaView", "trucking", "Trucking").unwrap()
}

/// The Trucking unit with its stack made through `stage` from [`params`].
pub async fn create_trucking(stage: &AwsStage) -> (UnitIdentity, EnsuredUnit) {
    let unit = trucking();
    let created = stage
        .ensure_unit_stack(&unit, &params(), None)
        .await
        .unwrap();
    (unit, created)
}

pub const REGISTRY_PASSWORD: &str = "Registry-Pass\"word-7d1f";

pub fn params() -> UnitParameters {
    UnitParameters {
        registry_server: "registry.seaview.example".into(),
        registry_username: "puller".into(),
        registry_password: SecretString::from(REGISTRY_PASSWORD.to_owned()),
        oauth_client_id: "seaview-trucking".into(),
        db_username: "trucking".into(),
        kms_key_id: None,
        existing_bucket: None,
        permissions_boundary: None,
    }
}

/// The region the emulator tests use.
pub fn region() -> String {
    std::env::var("AWS_REGION").unwrap_or_else(|_| "eu-central-1".into())
}

/// Arms the emulator's fault switch (tools/aws-emulator/berth_moto_ext.py): the next update
/// of `stack_name` in `account` fails at `logical_id` with `reason` and rolls back
/// (`outcome` `rollback`) or fails its rollback too (`rollback_failed`). Panics when the
/// emulator refuses, e.g. an extension without the switch.
pub async fn fail_next_update(
    account: &str,
    stack_name: &str,
    logical_id: &str,
    reason: &str,
    outcome: &str,
) {
    use std::io::{Read, Write};

    let endpoint = endpoint();
    let authority = endpoint
        .strip_prefix("http://")
        .expect("the fault switch needs a plain http emulator endpoint")
        .trim_end_matches('/');
    let body = serde_json::json!({
        "region": region(),
        "stack_name": stack_name,
        "logical_id": logical_id,
        "reason": reason,
        "outcome": outcome,
    })
    .to_string();
    let request = format!(
        "POST /berth-emulator/fail-next-update HTTP/1.1\r\nHost: {authority}\r\n\
         x-moto-account-id: {account}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // One short local call: a blocking socket keeps the test free of an HTTP client.
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
        "fault switch refused: {response}"
    );
}
