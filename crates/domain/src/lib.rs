//! Berth's domain: business-unit names and slugs, requests and their state machine, roles and the
//! authorization policy. Pure code with no I/O so the browser (WASM) and the server share one
//! definition of what is valid.

pub mod policy;
pub mod request;
pub mod unit;

pub use policy::{Action, Actor, Denied, Role};
pub use request::{Blueprint, Decision, RequestStatus, Size, TransitionError};
pub use unit::{
    Description, FieldError, OwnerContact, RequestSpec, SpecErrors, UnitName, UnitSlug,
};
