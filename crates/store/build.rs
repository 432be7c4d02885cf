// The migrations are embedded at compile time: rebuild when one is added or
// changed, without needing a clean build.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
