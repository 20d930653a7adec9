//! Runnable examples of hive-resilience, and the governance flows it began with; the
//! README's example is compiled and run here.
//!
//! * `cargo run -p hive-examples --example fleet` (the demo): three models on the
//!   misbehaving provider, over real HTTP, behind a `ModelManager`, as a timeline.
//! * `cargo run -p hive-examples --example flaky_model`: a simulated flaky model driven
//!   through retry and circuit breaker, printed as a timeline.
//! * `cargo run -p hive-examples --example vote_round`: a real CMMV-Hive vote round that
//!   reaches quorum while voters fail, and its vote chain.
//!
//! The layers in the services users have, each example's code in a module here (its `run`
//! is what the example prints, and what `tests/examples.rs` checks):
//!
//! * `cargo run -p hive-examples --example axum_routes` ([`axum_routes`]): an axum app with
//!   a different stack per route over per-model stacks the routes share.
//! * `cargo run -p hive-examples --example grpc_channel` ([`grpc_channel`]): a tonic client
//!   channel behind the layers, and the tiny model service it calls.
//! * `cargo run -p hive-examples --example hyper_client` ([`hyper_client`]): a plain hyper
//!   client behind the layers, calling a flaky hyper server.
#![doc = include_str!("../../README.md")]

pub mod axum_routes;
pub mod governance;
pub mod grpc_channel;
pub mod hyper_client;
