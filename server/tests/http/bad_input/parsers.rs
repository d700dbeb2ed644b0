//! The domain's parsers fed the suite's text directly.

use std::panic::AssertUnwindSafe;

use reqwest::StatusCode;

use super::{inputs::nasty_text, Tally};

/// The domain's parsers, fed the same text directly: a refusal is a message, never a panic.
pub(super) fn domain_parsers() -> Tally {
    use berth_domain::notify::{parse_event_types, parse_webhook_description};
    use berth_domain::token::{parse_max_token_days, NewServiceAccount, NewToken, PresentedSecret};
    use berth_domain::{
        ApprovalTerms, BlueprintName, BlueprintVersion, Decision, Description, EnvironmentStatus,
        EventType, OwnerContact, PlanHash, RequestSpec, Role, Size, UnitName, UnitSlug, WebhookUrl,
    };
    type Check = fn(&str) -> Result<(), String>;
    fn refusal<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<(), String> {
        r.map(|_| ()).map_err(|e| e.to_string())
    }
    let parsers: Vec<(&str, Check)> = vec![
        ("UnitName", |s| refusal(UnitName::parse(s))),
        ("UnitSlug", |s| refusal(UnitSlug::parse(s))),
        ("Description", |s| refusal(Description::parse(s))),
        ("OwnerContact", |s| refusal(OwnerContact::parse(s))),
        ("BlueprintVersion", |s| refusal(BlueprintVersion::parse(s))),
        ("PlanHash", |s| refusal(PlanHash::parse(s))),
        ("WebhookUrl", |s| refusal(WebhookUrl::parse(s))),
        ("webhook description", |s| {
            refusal(parse_webhook_description(s))
        }),
        ("event types", |s| {
            refusal(parse_event_types(&[s.to_owned()]))
        }),
        ("max token days", |s| {
            parse_max_token_days(s).map(|_| ()).map_err(|e| e.message)
        }),
        ("approval terms", |s| {
            refusal(ApprovalTerms::parse(s, true, s))
        }),
        ("decision", |s| refusal(Decision::parse(s, s))),
        ("presented token", |s| {
            PresentedSecret::parse(s)
                .map(|_| ())
                .ok_or_else(|| "not a token".into())
        }),
        ("new token", |s| {
            NewToken::parse(s, s, &[s.to_owned()], &[Role::Manager], 90)
                .map(|_| ())
                .map_err(|e| messages(&e))
        }),
        ("new service account", |s| {
            NewServiceAccount::parse(s, &[s.to_owned()])
                .map(|_| ())
                .map_err(|e| messages(&e))
        }),
        ("request spec", |s| {
            RequestSpec::parse(s, s, s, s, s, s)
                .map(|_| ())
                .map_err(|e| messages(&e.0))
        }),
        ("size", |s| refusal(s.parse::<Size>())),
        ("role", |s| refusal(s.parse::<Role>())),
        ("blueprint", |s| refusal(s.parse::<BlueprintName>())),
        ("environment status", |s| {
            refusal(s.parse::<EnvironmentStatus>())
        }),
        ("event type", |s| refusal(s.parse::<EventType>())),
    ];
    let mut tally = Tally::default();
    for text in nasty_text() {
        for (name, parse) in &parsers {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| parse(&text)));
            let answer = match outcome {
                // A panic here is counted by the hook (this is the test's thread) and shown.
                Err(_) => Err("panicked".to_owned()),
                Ok(Ok(())) => Ok((StatusCode::OK, String::new())),
                Ok(Err(message)) => Ok((StatusCode::UNPROCESSABLE_ENTITY, message)),
            };
            tally.record(&format!("{name} of {text:.40?}"), answer);
        }
    }
    tally
}

/// A parser's field errors as one text.
fn messages(fields: &[berth_domain::FieldError]) -> String {
    fields
        .iter()
        .map(|f| f.message.clone())
        .collect::<Vec<_>>()
        .join(" ")
}
