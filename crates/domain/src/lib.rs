//! Berth's domain: business-unit names and slugs, requests and their state machine, the states of
//! provisioning runs and steps, roles and the authorization policy. Pure code with no I/O so the
//! browser (WASM) and the server share one definition of what is valid. The `sqlx` feature (server
//! side only) maps the status enums to their text columns; the WASM build leaves it off.

pub mod lifecycle;
pub mod notify;
pub mod plan;
pub mod policy;
pub mod request;
pub mod run;
pub mod tag;
pub mod token;
pub mod unit;

pub use lifecycle::{
    AppOverrides, BlueprintVersion, ChangeForm, EnvironmentStatus, RequestKind,
    NOTHING_WOULD_CHANGE,
};
pub use notify::{EventType, MailKind, WebhookUrl};
pub use plan::{ApprovalTerms, PlanDocument, PlanHash, PlanRefusal, PlanStatus, Quota};
pub use policy::{Action, Actor, Denied, Role};
pub use request::{BlueprintName, Decision, RequestStatus, Size, TransitionError};
pub use run::{RunStatus, StepStatus};
pub use tag::{aws_tag_text, aws_tag_text_or, is_aws_tag_char, is_aws_tag_text};
pub use unit::{
    Description, FieldError, OwnerContact, RequestSpec, SpecErrors, UnitName, UnitSlug,
};

/// The variant of a strum enum whose stored name is `s`, for the `FromStr` impls, which each word
/// their own error for the person who typed it.
pub(crate) fn variant_named<T>(s: &str) -> Option<T>
where
    T: strum::IntoEnumIterator + Into<&'static str> + Copy,
{
    T::iter().find(|v| Into::<&'static str>::into(*v) == s)
}
