//! The `hive` binary.

fn main() {}
