//! The hive gateway: an OpenAI-compatible server over per-model resilience stacks, run from
//! a YAML config with hot reload.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod admin;
pub mod alerts;
mod cluster;
mod console;
pub mod dashboard;
pub mod demo;
pub mod drill;
pub mod fleet;
pub mod history;
pub mod http;
mod reload;
pub mod report;
pub mod server;
pub mod story;
pub mod workers;
