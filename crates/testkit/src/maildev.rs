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
    let url = web_url();
    let hostport = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let reachable = std::net::TcpStream::connect(&hostport)
        .and_then(|mut stream| {
            use std::io::{Read, Write};
            stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
            write!(
                stream,
                "GET /api/email HTTP/1.0\r\nHost: {hostport}\r\n\r\n"
            )?;
            let mut head = [0u8; 12];
            stream.read_exact(&mut head)?;
            Ok(head.starts_with(b"HTTP/1.0 200") || head.starts_with(b"HTTP/1.1 200"))
        })
        .unwrap_or(false);
    if reachable {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("maildev not reachable at {url} (CI=true): tools/test.sh starts it (start_maildev in tools/lib.sh)");
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: maildev not reachable at {url}; tools/test.sh starts it"
    );
    false
}
