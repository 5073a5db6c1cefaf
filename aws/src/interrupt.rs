//! Stopping retries once a run is interrupted (the CLI's first Ctrl-C).
//!
//! Inside a provider action (create, update, delete, wait, discovery: see [`stoppable`]), once
//! the [`Stop`] is set, no call is retried and no wait goes on: the SDK's backoff between two
//! attempts ends at once and the next attempt is refused, infra's own retry loops and waits end
//! at their next pause, and the action fails with [`ProviderError::Interrupted`]. An attempt
//! already sent still gets its answer. Calls outside an action (the stack's lock) keep every
//! retry, so the lock is released after an interrupt as reliably as before.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sts::config::{AsyncSleep, Sleep};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, InterceptorContext,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use infra_core::ProviderError;

/// How often an interruptible pause looks at the flag.
const TICK: Duration = Duration::from_millis(100);

/// Set once the run should stop retrying; shared with whoever sets it (a signal handler).
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A stop set whenever `flag` is (a flag `signal_hook::flag::register` sets, say).
    pub fn on(flag: Arc<AtomicBool>) -> Stop {
        Stop(flag)
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

tokio::task_local! {
    /// The stop of the provider action this task is running, if any.
    static ACTION: Stop;
}

/// Run a provider action so that its retries and waits end once `stop` is set.
pub(crate) async fn stoppable<F: Future>(stop: &Stop, action: F) -> F::Output {
    ACTION.scope(stop.clone(), action).await
}

fn action_stop() -> Option<Stop> {
    ACTION.try_with(Stop::clone).ok()
}

/// Wait `delay` between two tries of infra's own retry loops and waits. Inside a stopped
/// action, fail at once with [`ProviderError::Interrupted`] saying `what` was cut short.
pub(crate) async fn pause(
    delay: Duration,
    what: impl FnOnce() -> String,
) -> Result<(), ProviderError> {
    match action_stop() {
        Some(stop) => sleep_unless(&stop, delay)
            .await
            .map_err(|Interrupted| ProviderError::Interrupted(what())),
        None => {
            tokio::time::sleep(delay).await;
            Ok(())
        }
    }
}

async fn sleep_unless(stop: &Stop, delay: Duration) -> Result<(), Interrupted> {
    let end = Instant::now() + delay;
    loop {
        if stop.is_set() {
            return Err(Interrupted);
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        tokio::time::sleep(left.min(TICK)).await;
    }
}

/// Why the SDK refused another attempt; found in a failed call's error chain by
/// [`is_interrupted`].
#[derive(Debug, thiserror::Error)]
#[error("not retried: the run is being interrupted")]
pub(crate) struct Interrupted;

/// Whether `err`'s chain holds [`Interrupted`].
pub(crate) fn is_interrupted(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if err.is::<Interrupted>() {
            return true;
        }
        next = err.source();
    }
    false
}

thread_local! {
    /// The retry strategy just decided to retry: the next sleep this thread makes is its backoff.
    static BACKOFF_NEXT: Cell<bool> = const { Cell::new(false) };
}

/// Marks a retry decision for [`BackoffSleep`], and forbids retrying an [`Interrupted`] attempt.
/// It runs after the SDK's own classifiers, so it sees their verdict.
#[derive(Debug)]
pub(crate) struct MarkBackoff;

impl ClassifyRetry for MarkBackoff {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.output_or_error() {
            Some(Err(err)) if is_interrupted(err) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn classify_retry_v2(&self, ctx: &InterceptorContext, previous: &RetryAction) -> RetryAction {
        let action = self.classify_retry(ctx);
        if action == RetryAction::NoActionIndicated && previous.should_retry() {
            // The orchestrator makes the backoff's sleep right after this verdict, on this
            // thread. If the budget is spent instead, the mark stays until the next sleep made
            // here; that sleep then ends early only in an action being stopped anyway.
            BACKOFF_NEXT.set(true);
        }
        action
    }

    fn name(&self) -> &'static str {
        "infra: mark backoff"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// The SDK's sleep: a backoff between attempts ends early once the action's stop is set; every
/// other sleep (connect timeouts, throughput checks) is a plain one.
#[derive(Debug)]
pub(crate) struct BackoffSleep;

impl AsyncSleep for BackoffSleep {
    fn sleep(&self, duration: Duration) -> Sleep {
        let backoff = BACKOFF_NEXT.replace(false);
        match action_stop().filter(|_| backoff) {
            Some(stop) => Sleep::new(async move {
                let _ = sleep_unless(&stop, duration).await;
            }),
            None => Sleep::new(tokio::time::sleep(duration)),
        }
    }
}

/// Refuses a retry attempt of a call inside a stopped action.
#[derive(Debug)]
pub(crate) struct RefuseRetry;

impl Intercept for RefuseRetry {
    fn name(&self) -> &'static str {
        "infra: refuse retries once stopped"
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let retry = cfg
            .load::<RequestAttempts>()
            .is_some_and(|a| a.attempts() > 1);
        if retry && action_stop().is_some_and(|stop| stop.is_set()) {
            return Err(Box::new(Interrupted));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pause_ends_at_once_in_a_stopped_action_and_only_there() {
        let stop = Stop::default();
        stop.0.store(true, Ordering::SeqCst);
        let long = Duration::from_secs(3600);
        let cut = stoppable(&stop, pause(long, || "waiting for x".into())).await;
        assert_eq!(cut.unwrap_err().to_string(), "interrupted: waiting for x");
        let outside = tokio::time::timeout(Duration::from_millis(50), pause(long, String::new));
        assert!(
            outside.await.is_err(),
            "outside an action a pause is a plain sleep"
        );
    }
}
