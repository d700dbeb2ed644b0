// The tests embed the workspace's migrations (sqlx::migrate!); rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
