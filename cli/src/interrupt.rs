//! Ctrl-C while an apply or destroy holds the stack's lock. As in Terraform, the first one
//! stops the run gracefully: nothing new starts, the calls in flight get their answers but are
//! not retried, waits end, the lock is released, so nothing is left locked. A second one ends
//! the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use signal_hook::consts::SIGINT;

static RECEIVED: OnceLock<Arc<AtomicBool>> = OnceLock::new();
static CAUGHT: OnceLock<()> = OnceLock::new();

/// The flag the first Ctrl-C sets (after [`catch`]), for whatever must stop on it: the AWS
/// provider's retries (`infra_aws::Stop::on`).
pub fn flag() -> Arc<AtomicBool> {
    Arc::clone(RECEIVED.get_or_init(Arc::default))
}

/// From now on, for the rest of the process, the first Ctrl-C only sets [`received`]; the
/// second has Ctrl-C's default effect. (A handler, once installed, stays: this is for the end
/// of a command's life, where the lock is taken.)
pub fn catch() -> std::io::Result<()> {
    if CAUGHT.get().is_some() {
        return Ok(());
    }
    let flag = flag();
    // Checked before the flag is set: only a press after the first one ends the process.
    signal_hook::flag::register_conditional_default(SIGINT, Arc::clone(&flag))?;
    signal_hook::flag::register(SIGINT, flag)?;
    let _ = CAUGHT.set(());
    Ok(())
}

/// Whether Ctrl-C was pressed since [`catch`].
pub fn received() -> bool {
    RECEIVED.get().is_some_and(|f| f.load(Ordering::SeqCst))
}
