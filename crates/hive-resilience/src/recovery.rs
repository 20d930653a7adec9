//! Automatic recovery: when the health checks see a model back, its open breaker goes
//! half-open at once and traffic ramps back over its slow start.

use hive_health::HealthChange;
use tokio::sync::broadcast::{Receiver, error::RecvError};

use crate::control::ModelControl;

/// Runs until the registry is gone: every change the checks report as a recovery recovers
/// that model.
pub(crate) async fn recover_on_checks(
    mut changes: Receiver<HealthChange>,
    controls: Vec<ModelControl>,
    duty: Option<std::sync::Arc<dyn hive_core::ProbeDuty>>,
) {
    loop {
        match changes.recv().await {
            // The checks say the model is back (its breaker, still open, may keep it
            // degraded until recovery half-opens it).
            Ok(change) if change.checks_recovered() => {
                // In a cluster, the replica that checks the model tries it again; the
                // others close on its verdict (one trial, not one per replica).
                if duty.as_ref().is_some_and(|d| !d.mine(change.model)) {
                    continue;
                }
                if let Some(control) = controls.iter().find(|c| c.model == change.model) {
                    control.recovered();
                }
            }
            Ok(_) => {}
            Err(RecvError::Lagged(skipped)) => {
                tracing::warn!(skipped, "recovery fell behind health changes");
            }
            Err(RecvError::Closed) => return,
        }
    }
}
