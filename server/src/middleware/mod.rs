//! Cross-cutting HTTP protections applied to every response.

pub mod client_addr;
pub mod csrf;
pub mod headers;
pub mod timeout;
