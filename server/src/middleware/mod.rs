//! Cross-cutting HTTP protections applied to every response.

pub mod csrf;
pub mod headers;
pub mod timeout;
