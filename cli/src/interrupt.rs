//! Ctrl-C while an apply or destroy holds the stack's lock. As in Terraform, the first one
//! stops the run gracefully: the actions in progress finish, nothing new starts, the lock is
//! released, so nothing is left half made or locked. A second one ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use signal_hook::consts::SIGINT;

static RECEIVED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// From now on, for the rest of the process, the first Ctrl-C only sets [`received`]; the
/// second has Ctrl-C's default effect. (A handler, once installed, stays: this is for the end
/// of a command's life, where the lock is taken.)
pub fn catch() -> std::io::Result<()> {
    if RECEIVED.get().is_some() {
        return Ok(());
    }
    let flag = Arc::new(AtomicBool::new(false));
    // Checked before the flag is set: only a press after the first one ends the process.
    signal_hook::flag::register_conditional_default(SIGINT, Arc::clone(&flag))?;
    signal_hook::flag::register(SIGINT, Arc::clone(&flag))?;
    let _ = RECEIVED.set(flag);
    Ok(())
}

/// Whether Ctrl-C was pressed since [`catch`].
pub fn received() -> bool {
    RECEIVED.get().is_some_and(|f| f.load(Ordering::SeqCst))
}
