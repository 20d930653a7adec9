//! The hive gateway: an OpenAI-compatible server over per-model resilience stacks.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
