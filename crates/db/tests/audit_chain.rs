//! The tamper-evident history (issue 15): events are hash-chained per company by the
//! database, verification finds the first row that was changed, deleted or moved (done here as
//! the owner role, with the append-only trigger off), and the runtime role may only insert and
//! read events. Each test gets a fresh database.

mod common;

mod audit_chain {
    mod chain;
    mod roles;
    mod support;
    mod tampering;
}
