//! Whether a local service the tests need is up: one plain HTTP/1.0 GET, so the probe needs no
//! runtime. Under CI a missing service fails the test; elsewhere the test is skipped, said once.

/// `GET {url}{path}` answers 200; else panics under `CI=true`, or prints `SKIPPED {test}` (to
/// stderr directly: the harness captures `eprintln!` of passing tests) with how to start it.
pub fn service_available(test: &str, service: &str, url: &str, path: &str, start: &str) -> bool {
    let hostport = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let reachable = std::net::TcpStream::connect(&hostport)
        .and_then(|mut stream| {
            use std::io::{Read, Write};
            stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
            write!(stream, "GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n")?;
            let mut head = [0u8; 12];
            stream.read_exact(&mut head)?;
            Ok(head.starts_with(b"HTTP/1.0 200") || head.starts_with(b"HTTP/1.1 200"))
        })
        .unwrap_or(false);
    if reachable {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{service} not reachable at {url} (CI=true): {start}");
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {service} not reachable at {url}; {start}"
    );
    false
}
