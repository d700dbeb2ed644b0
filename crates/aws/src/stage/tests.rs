use super::*;

fn params(password: &str) -> UnitParameters {
    UnitParameters {
        registry_server: "registry.example.com".into(),
        registry_username: "puller".into(),
        registry_password: SecretString::from(password.to_owned()),
        oauth_client_id: "seaview-trucking".into(),
        db_username: "trucking".into(),
        kms_key_id: None,
        existing_bucket: None,
        permissions_boundary: None,
    }
}

const VERSION: &str = "0b7e2a4c-5f0e-4c8e-9d61-1f2a3b4c5d6e";

/// The password is no parameter at all, only the version of the secret holding it.
#[test]
fn the_password_is_no_parameter_only_its_version() {
    let unit = UnitIdentity::parse("seaview", "SeaView", "trucking", "Trucking").unwrap();
    let tag = TagScheme::default().unit_tag(&unit).unwrap();
    let list = params("a\"b\\c-pw")
        .template_parameters(&unit, &tag, VERSION)
        .unwrap();
    assert!(list.iter().all(|(_, v)| match v {
        ParameterValue::Plain(v) | ParameterValue::SecretVersion(v) => !v.contains("-pw"),
        ParameterValue::Secret(_) => false,
    }));
    assert!(list.iter().any(|(k, v)| k == "RegistryPasswordVersion"
        && *v == ParameterValue::SecretVersion(VERSION.into())));
    assert!(!format!("{list:?} {:?}", params("a\"b\\c-pw")).contains("-pw"));
    // The template reads it from the secret the stage writes, at that version.
    assert!(BUSINESS_UNIT_TEMPLATE.contains(&format!(
        "{{{{resolve:secretsmanager:{}:SecretString:password_json::${{RegistryPasswordVersion}}}}}}",
        crate::secrets::registry_password_secret_name("${CompanySlug}")
    )));
    assert!(!BUSINESS_UNIT_TEMPLATE.contains("NoEcho"));
}

/// Every parameter Berth passes is declared by the template (CloudFormation refuses unknown
/// ones), and the permissions boundary reaches it.
#[test]
fn parameters_match_the_template() {
    let unit = UnitIdentity::parse("seaview", "SeaView", "trucking", "Trucking").unwrap();
    let tag = TagScheme::default().unit_tag(&unit).unwrap();
    let boundary = "arn:aws:iam::123456789012:policy/berth/seaview/boundary";
    let list = UnitParameters {
        permissions_boundary: Some(boundary.into()),
        ..params("pw")
    }
    .template_parameters(&unit, &tag, VERSION)
    .unwrap();
    for (key, _) in &list {
        assert!(
            BUSINESS_UNIT_TEMPLATE.contains(&format!("\n  {key}:\n")),
            "{key} is not a template parameter"
        );
    }
    assert!(list.iter().any(|(k, v)| k == "PermissionsBoundaryArn"
        && matches!(v, ParameterValue::Plain(p) if p == boundary)));
}

#[test]
fn template_is_compiled_in() {
    assert!(BUSINESS_UNIT_TEMPLATE.contains("AWS::SecretsManager::Secret"));
    for key in [
        "RegistrySecretArn",
        "DatabaseSecretArn",
        "S3CredentialsSecretArn",
    ] {
        assert!(BUSINESS_UNIT_TEMPLATE.contains(key), "{key}");
    }
}

/// A stage whose clients are never called.
fn offline_stage() -> AwsStage {
    let config = SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-central-1"))
        .build();
    AwsStage::from_sdk_config(&config, TagScheme::default(), WaitPolicy::default())
}

#[test]
fn the_desired_fingerprint_follows_what_approvers_see() {
    let stage = offline_stage();
    let unit = UnitIdentity::parse("seaview", "SeaView", "trucking", "Trucking").unwrap();
    let fingerprint = stage
        .desired_fingerprint(&unit, &params("pw"), None)
        .unwrap();
    assert_eq!(
        fingerprint,
        stage
            .desired_stack_at(&unit, &params("pw"), Some("id"), VERSION)
            .unwrap()
            .fingerprint(),
        "neither the recorded stack id nor the password's version count"
    );
    assert_eq!(
        stage
            .desired_fingerprint(&unit, &params("other"), None)
            .unwrap(),
        fingerprint,
        "secrets are not part of it"
    );
    let mut changed = params("pw");
    changed.db_username = "trucking2".into();
    assert_ne!(
        stage.desired_fingerprint(&unit, &changed, None).unwrap(),
        fingerprint
    );
    let other = UnitIdentity::parse("seaview", "SeaView", "trucking", "Haulage").unwrap();
    assert_ne!(
        stage
            .desired_fingerprint(&other, &params("pw"), None)
            .unwrap(),
        fingerprint,
        "the unit tag changed"
    );
    assert!(matches!(
        stage.desired_fingerprint(&unit, &params(""), None),
        Err(AwsError::InvalidInput(_))
    ));
}

#[test]
fn quotes_in_plain_values_are_refused() {
    let unit = UnitIdentity::parse("seaview", "SeaView", "trucking", "Trucking").unwrap();
    let tag = TagScheme::default().unit_tag(&unit).unwrap();
    let mut p = params("x");
    p.registry_username = "pu\"ller".into();
    assert!(p.template_parameters(&unit, &tag, VERSION).is_err());
}
