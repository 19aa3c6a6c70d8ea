//! Project chores (`cargo run -p xtask -- help`).
fn main() {}
