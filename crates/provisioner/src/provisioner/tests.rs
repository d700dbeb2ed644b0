use super::*;

#[test]
fn namespace_names() {
    assert_eq!(
        Provisioner::namespace_of("seaview", "trucking").unwrap(),
        "seaview-trucking"
    );
    assert!(Provisioner::namespace_of(&"a".repeat(40), &"b".repeat(40)).is_err());
}

fn unit(name: &str, slug: &str) -> UnitInfo {
    UnitInfo {
        environment_id: uuid::Uuid::nil(),
        company_slug: "seaview".into(),
        company_name: "SeaView".into(),
        unit_slug: slug.into(),
        unit_name: name.into(),
        incarnation: None,
        size: "small".into(),
        overrides: Default::default(),
    }
}

/// A name the request form accepts provisions: its tags are what AWS accepts.
#[test]
fn every_name_the_form_accepts_gets_an_aws_identity() {
    for name in ["Ben & Jerry's (EU), North", "Trucking (EU)", "R&D, Munich"] {
        let spec = berth_domain::RequestSpec::parse(
            name,
            "",
            "",
            "jane@seaview.example",
            "insight",
            "small",
        )
        .unwrap_or_else(|e| panic!("the form refused {name:?}: {e:?}"));
        let identity = Provisioner::identity_of(&unit(spec.name.as_str(), spec.slug.as_str()))
            .unwrap_or_else(|e| panic!("{name:?} cannot be provisioned: {e}"));
        let tag = berth_aws::TagScheme::default().unit_tag(&identity).unwrap();
        assert!(
            berth_domain::is_aws_tag_text(&tag.value, 256),
            "{name:?}: {tag}"
        );
    }
    assert_eq!(
        Provisioner::identity_of(&unit("Ben & Jerry's (EU), North", "ben-jerry-s-eu-north"))
            .unwrap()
            .unit_name(),
        "Ben and Jerrys EU North"
    );
}

/// Every secret the unit has lands in one of the workload Secrets, and a missing one is an
/// error naming it (never its value).
#[test]
fn workload_secrets_carry_every_unit_secret() {
    let all: Secrets = UNIT_SECRET_NAMES
        .iter()
        .map(|n| (*n, format!("value-of-{n}")))
        .collect();
    let ks = workload_secrets("trucking", &all).unwrap();
    let names: Vec<&str> = ks.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "trucking-registry",
            "trucking-db",
            "trucking-oauth",
            "trucking-s3"
        ]
    );
    let mut held = String::new();
    for k in &ks {
        for key in k.keys() {
            held.push_str(k.value(key).unwrap().expose_secret());
        }
    }
    for n in UNIT_SECRET_NAMES {
        assert!(
            held.contains(&format!("value-of-{n}")),
            "{n} is in no Secret"
        );
    }
    let mut partial = Secrets::new();
    partial.insert("registry_server", "r");
    let err = workload_secrets("trucking", &partial).unwrap_err();
    assert!(err.to_string().contains("registry_username"), "{err}");
}

#[test]
fn cache_is_bounded() {
    let mut cache = SecretsCache::default();
    for _ in 0..MAX_CACHED_RUNS + 5 {
        cache.insert(RunId(uuid::Uuid::new_v4()), Arc::new(Secrets::new()));
    }
    assert_eq!(cache.by_run.len(), MAX_CACHED_RUNS);
    let first = cache.order[0];
    cache.remove(first);
    assert_eq!(cache.by_run.len(), MAX_CACHED_RUNS - 1);
}
