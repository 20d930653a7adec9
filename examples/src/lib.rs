//! Runnable examples of hive-resilience; the README's example is compiled and run here.
//!
//! * `cargo run -p hive-examples --example flaky_model`: a simulated flaky model driven
//!   through retry and circuit breaker, printed as a timeline.
#![doc = include_str!("../../README.md")]
