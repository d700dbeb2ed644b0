//! Finding the local mail catcher (maildev, started by tools/test.sh and tools/run.sh) from the
//! email tests: its SMTP URL and its web/REST address (`GET /api/email` lists what it caught).

/// The catcher's SMTP URL: `MAILDEV_SMTP_URL`, else tools/lib.sh's default port.
pub fn smtp_url() -> String {
    std::env::var("MAILDEV_SMTP_URL").unwrap_or_else(|_| "smtp://127.0.0.1:1025".into())
}

/// The catcher's web and REST address: `MAILDEV_URL`, else tools/lib.sh's default port.
pub fn web_url() -> String {
    std::env::var("MAILDEV_URL").unwrap_or_else(|_| "http://127.0.0.1:1080".into())
}

/// Whether the catcher answers `GET /api/email`; panics under CI when it does not, and prints a
/// SKIPPED notice otherwise (as the AWS emulator's probe does).
pub fn maildev_available(test: &str) -> bool {
    crate::probe::service_available(
        test,
        "maildev",
        &web_url(),
        "/api/email",
        "tools/test.sh starts it (start_maildev in tools/lib.sh)",
    )
}
