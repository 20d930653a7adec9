//! hive-resilience: keep software that calls AI models alive when those models fail.
//!
//! This facade re-exports every layer and adds the [`ModelManager`], which builds each
//! model's stack — health gate → retry → circuit breaker → attempt timeout → model — puts a
//! [`FallbackRouter`](hive_fallback::FallbackRouter) in front, and recovers models: by hand
//! through [`ModelControl`] (each action an audit event), and automatically when the health
//! checker sees a model come back (its breaker goes half-open at once, and traffic ramps back
//! over a slow start).
//!
//! ```
//! use std::time::Duration;
//! use hive_resilience::{ModelManager, ModelSpec};
//! use tower::{ServiceExt, service_fn, util::BoxCloneService};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! type Model = BoxCloneService<String, String, std::io::Error>;
//! let down: Model = BoxCloneService::new(service_fn(|_: String| async {
//!     Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
//! }));
//! let up: Model = BoxCloneService::new(service_fn(|p: String| async move { Ok(format!("re: {p}")) }));
//! let manager = ModelManager::builder()
//!     .model(ModelSpec::new("gpt-4o", down).retry(|r| r.max_attempts(2)))
//!     .model(ModelSpec::new("claude-4-sonnet", up))
//!     .timeout(Duration::from_secs(30))
//!     .build()?;
//! let routed = manager.service().oneshot("BIP-01".to_string()).await?;
//! assert_eq!(routed.model.unwrap().as_str(), "claude-4-sonnet");
//! assert_eq!(manager.availability().up(), 2);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod control;
mod manager;
mod window;

pub use control::ModelControl;
pub use hive_breaker as breaker;
pub use hive_core as core;
pub use hive_fallback as fallback;
pub use hive_health as health;
pub use hive_retry as retry;
pub use manager::{
    Availability, ModelAvailability, ModelManager, ModelManagerBuilder, ModelSpec, ModelStack,
    Running,
};
