//! Runnable examples of hive-resilience, and the governance flows it began with; the
//! README's example is compiled and run here.
//!
//! * `cargo run -p hive-examples --example fleet` (the demo): three models on the
//!   misbehaving provider, over real HTTP, behind a `ModelManager`, as a timeline.
//! * `cargo run -p hive-examples --example flaky_model`: a simulated flaky model driven
//!   through retry and circuit breaker, printed as a timeline.
//! * `cargo run -p hive-examples --example vote_round`: a real CMMV-Hive vote round that
//!   reaches quorum while voters fail, and its vote chain.
#![doc = include_str!("../../README.md")]

pub mod governance;
