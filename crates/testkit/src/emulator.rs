//! Finding the local AWS emulator from tests (berth-aws's and the provisioner's suites and benches).

/// The emulator's URL: `AWS_ENDPOINT_URL`, else the default port of tools/aws-emulator/start.sh.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5055".into())
}

/// Whether the emulator answers on its health URL; panics under CI when it does not, and
/// prints a SKIPPED notice otherwise.
pub fn emulator_available(test: &str) -> bool {
    let url = endpoint();
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
                "GET /moto-api/ HTTP/1.0\r\nHost: {hostport}\r\n\r\n"
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
        panic!("AWS emulator not reachable at {url} (CI=true): start it with tools/aws-emulator/start.sh");
    }
    // Written to stderr directly: the test harness captures eprintln! of passing tests.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: AWS emulator not reachable at {url}; start it with tools/aws-emulator/start.sh"
    );
    false
}
