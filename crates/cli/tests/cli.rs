//! The `berth` binary against the real Berth: the app on port 0 over a fresh database (its
//! worker off), the plan worker and a scripted engine running in this process, and the CLI as a
//! subprocess with service accounts' tokens.

mod cli {
    mod requests;
    mod session;
    mod support;
}
