//! The YAML configuration of the hive gateway.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
