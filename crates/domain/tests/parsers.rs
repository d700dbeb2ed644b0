//! Every parser of outside input in the domain, fed arbitrary text (any Unicode, control
//! characters, huge numbers): none panics, every refusal is a message for a person (not empty,
//! no Rust `Debug` output), and what a parser accepts parses again to the same value.

use berth_domain::notify::{parse_event_types, parse_webhook_description};
use berth_domain::token::{parse_max_token_days, NewServiceAccount, NewToken, PresentedSecret};
use berth_domain::{
    ApprovalTerms, BlueprintName, BlueprintVersion, ChangeForm, Decision, Description,
    EnvironmentStatus, EventType, MailKind, OwnerContact, PlanHash, RequestKind, RequestSpec,
    RequestStatus, Role, RunStatus, Size, StepStatus, UnitName, UnitSlug, WebhookUrl,
};
use proptest::prelude::*;

/// Text as forms, query strings and JSON bodies may carry it.
fn input() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<char>(), 0..80).prop_map(String::from_iter),
        "[\\x00-\\x1f\\x7f \t\r\n]{0,12}",
        "-?[0-9]{1,40}",
        "[a-z0-9 .@:/_-]{0,40}",
        "(https?|ftp)://[a-z0-9.@:\\[\\]-]{0,30}(/[a-z?#=&%]{0,10})?",
        Just(String::new()),
    ]
}

/// Parts of Rust's `Debug` output that must never reach a person.
const DEBUG_MARKS: &[&str] = &[
    "Err(",
    "Ok(",
    "Some(",
    "None",
    "{ ",
    "\\u{",
    "\\\"",
    "Error {",
    "kind:",
    "ParseIntError",
];

/// A refusal people can read: something said, and no `Debug` output around what they typed.
fn assert_clear(message: &str, inputs: &[&str]) -> Result<(), TestCaseError> {
    prop_assert!(!message.trim().is_empty(), "empty refusal for {inputs:?}");
    // What they typed, longest first, stood in for by a character no mark contains (removing
    // it could join the text around it into one).
    let mut typed: Vec<&str> = inputs.iter().flat_map(|i| [*i, i.trim()]).collect();
    typed.sort_by_key(|t| std::cmp::Reverse(t.len()));
    let mut own = message.to_owned();
    for t in typed.into_iter().filter(|t| !t.is_empty()) {
        own = own.replace(t, "\u{0}");
    }
    for mark in DEBUG_MARKS {
        prop_assert!(
            !own.contains(mark),
            "refusal {message:?} shows {mark:?} (input {inputs:?})"
        );
    }
    Ok(())
}

fn strings(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn current() -> RequestSpec {
    RequestSpec::parse(
        "Trucking",
        "trucking",
        "Fleet telemetry",
        "jane@seaview.example",
        "insight",
        "small",
    )
    .unwrap()
}

proptest! {
    #[test]
    fn unit_fields(s in input()) {
        match UnitName::parse(&s) {
            Ok(name) => prop_assert_eq!(UnitName::parse(&name.to_string()), Ok(name.clone())),
            Err(e) => assert_clear(&e, &[&s])?,
        }
        match UnitSlug::parse(&s) {
            Ok(slug) => prop_assert_eq!(UnitSlug::parse(slug.as_str()), Ok(slug.clone())),
            Err(e) => assert_clear(&e, &[&s])?,
        }
        let suggested = UnitSlug::suggest(&s);
        prop_assert!(suggested.len() <= UnitSlug::MAX_LEN);
        match Description::parse(&s) {
            Ok(d) => prop_assert_eq!(Description::parse(d.as_str()), Ok(d.clone())),
            Err(e) => assert_clear(&e, &[&s])?,
        }
        match OwnerContact::parse(&s) {
            Ok(o) => prop_assert_eq!(OwnerContact::parse(o.as_str()), Ok(o.clone())),
            Err(e) => assert_clear(&e, &[&s])?,
        }
        match BlueprintVersion::parse(&s) {
            Ok(v) => prop_assert_eq!(BlueprintVersion::parse(v.as_str()), Ok(v.clone())),
            Err(e) => assert_clear(&e, &[&s])?,
        }
    }

    #[test]
    fn request_form(fields in prop::collection::vec(input(), 6)) {
        let f = strings(&fields);
        match RequestSpec::parse(f[0], f[1], f[2], f[3], f[4], f[5]) {
            Ok(spec) => {
                // Stored as JSON and read back through the same parsers.
                let json = serde_json::to_string(&spec).unwrap();
                prop_assert_eq!(serde_json::from_str::<RequestSpec>(&json).unwrap(), spec);
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in &errors.0 {
                    assert_clear(&e.message, &f)?;
                }
            }
        }
    }

    #[test]
    fn change_form(fields in prop::collection::vec(input(), 6)) {
        let f = strings(&fields);
        let form = ChangeForm {
            name: Some(f[0].to_owned()),
            slug: Some(f[1].to_owned()),
            description: f[2].to_owned(),
            owner_contact: f[3].to_owned(),
            size: f[4].to_owned(),
            blueprint_version: f[5].to_owned(),
            overrides: Default::default(),
        };
        if let Err(errors) = form.parse(&current()) {
            prop_assert!(!errors.is_empty());
            for e in &errors.0 {
                assert_clear(&e.message, &f)?;
            }
        }
    }

    #[test]
    fn named_values(s in input()) {
        macro_rules! round_trip {
            ($($t:ty),*) => {$(
                match s.parse::<$t>() {
                    Ok(v) => {
                        let name: &'static str = v.into();
                        prop_assert_eq!(name.parse::<$t>(), Ok(v));
                    }
                    Err(e) => assert_clear(&e, &[&s])?,
                }
            )*};
        }
        round_trip!(
            BlueprintName, Size, RequestStatus, RequestKind, EnvironmentStatus, EventType,
            MailKind, Role, berth_domain::token::Scope
        );
        // Stored columns, parsed by strum/serde: no panic either way.
        let _ = serde_json::from_value::<RunStatus>(serde_json::Value::String(s.clone()));
        let _ = serde_json::from_value::<StepStatus>(serde_json::Value::String(s.clone()));
    }

    #[test]
    fn decisions_and_approvals(decision in input(), note in input(), hash in input(), over in any::<bool>()) {
        match Decision::parse(&decision, &note) {
            Ok(d) => prop_assert!(d.note().is_some() || decision == "approve"),
            Err(e) => assert_clear(&e.to_string(), &[&decision, &note])?,
        }
        match PlanHash::parse(&hash) {
            Ok(h) => prop_assert_eq!(PlanHash::parse(h.as_str()), Ok(h.clone())),
            Err(e) => assert_clear(&e, &[&hash])?,
        }
        if let Err(e) = ApprovalTerms::parse(&hash, over, &note) {
            assert_clear(&e, &[&hash, &note])?;
        }
    }

    #[test]
    fn webhooks(url in input(), description in input(), events in prop::collection::vec(input(), 0..4)) {
        match WebhookUrl::parse(&url) {
            Ok(u) => {
                prop_assert_eq!(WebhookUrl::parse(u.as_str()), Ok(u.clone()));
                let _ = u.host_and_port();
            }
            Err(e) => assert_clear(&e, &[&url])?,
        }
        if let Err(e) = parse_webhook_description(&description) {
            assert_clear(&e, &[&description])?;
        }
        if let Err(e) = parse_event_types(&events) {
            assert_clear(&e, &strings(&events))?;
        }
    }

    #[test]
    fn tokens(name in input(), days in input(), scopes in prop::collection::vec(input(), 0..4), max in 0u32..1000) {
        let roles = [Role::Manager, Role::Admin];
        if let Err(errors) = NewToken::parse(&name, &days, &scopes, &roles, max) {
            prop_assert!(!errors.is_empty());
            let mut inputs = strings(&scopes);
            inputs.extend([name.as_str(), days.as_str()]);
            for e in &errors {
                assert_clear(&e.message, &inputs)?;
            }
        }
        if let Err(e) = parse_max_token_days(&days) {
            assert_clear(&e.message, &[&days])?;
        }
        if let Err(errors) = NewServiceAccount::parse(&name, &scopes) {
            let mut inputs = strings(&scopes);
            inputs.push(name.as_str());
            for e in &errors {
                assert_clear(&e.message, &inputs)?;
            }
        }
        // Shape only, never a panic; a well-formed secret is recognised.
        let _ = PresentedSecret::parse(&name);
        let _ = name.parse::<u32>();
    }

    #[test]
    fn well_formed_secrets_are_recognised(hex in "[0-9a-f]{64}") {
        let presented = format!("berth_pat_{hex}");
        let parsed = PresentedSecret::parse(&presented);
        prop_assert!(parsed.is_some());
        let too_long = format!("berth_pat_{hex}0");
        prop_assert!(PresentedSecret::parse(&too_long).is_none());
    }
}
