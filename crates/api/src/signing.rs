//! The server's timer for the therapy service's signing step.
//!
//! Submitting, reviewing and co-signing sign an approved command at once when the
//! device's status allows. A request approved while the status (or, for a high-risk
//! change, a fresh challenge) is missing waits until this timer finds it ready, and it
//! expires when the approval timeout passes first.

use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::error::ApiError;
use crate::state::ApiState;

/// Time between two runs of the signing step. The device keeps a challenge for 60 s and
/// the service signs with challenges up to 30 s old, so half a second costs little of
/// that window.
const SIGNING_INTERVAL: Duration = Duration::from_millis(500);

/// Runs the signing step every [`SIGNING_INTERVAL`] until the task is aborted. A failure
/// is logged when it starts and when it ends, not on every run.
pub(crate) async fn run(state: ApiState) {
    let mut interval = tokio::time::interval(SIGNING_INTERVAL);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        interval.tick().await;
        let result = state
            .blocking(|state| {
                let now_ms = state.now_ms();
                Ok(state.therapy()?.sign_pending(now_ms)?)
            })
            .await;
        match result {
            Ok(signed) => {
                if failing {
                    tracing::info!("signing approved change requests works again");
                    failing = false;
                }
                if signed > 0 {
                    tracing::debug!(signed, "signed approved change requests");
                }
            }
            Err(error) if !failing => {
                failing = true;
                let cause = match &error {
                    ApiError::Internal(cause) => cause.to_string(),
                    other => other.to_string(),
                };
                tracing::error!(
                    error = %cause,
                    interval_ms = SIGNING_INTERVAL.as_millis(),
                    "signing approved change requests failed; the timer keeps retrying"
                );
            }
            Err(_) => {}
        }
    }
}
