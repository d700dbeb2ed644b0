//! Finding the local AWS emulator from tests (berth-aws's and the provisioner's suites and benches).

/// The emulator's URL: `AWS_ENDPOINT_URL`, else the default port of tools/aws-emulator/start.sh.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5055".into())
}

/// Whether the emulator answers on its health URL; panics under CI when it does not, and
/// prints a SKIPPED notice otherwise.
pub fn emulator_available(test: &str) -> bool {
    crate::probe::service_available(
        test,
        "AWS emulator",
        &endpoint(),
        "/moto-api/",
        "start it with tools/aws-emulator/start.sh",
    )
}
