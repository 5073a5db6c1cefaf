//! Apply progress on the terminal: one status line per resource as it starts and finishes,
//! live waits (a redrawn spinner line on a terminal, `Still waiting` lines otherwise).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use infra_core::engine::{Action, Change, Hook, Outcome};
use infra_core::{Address, ProviderError};

use crate::shell::{elapsed, Shell, Style, VERB_WIDTH};

/// How often a non-terminal log repeats a wait on the same resource.
const LOG_WAIT_EVERY: Duration = Duration::from_secs(10);
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// The verbs for an action: (starting, finished, noun for errors).
pub fn verbs(action: Action) -> (&'static str, &'static str, &'static str) {
    match action {
        Action::NoOp => ("Checking", "Unchanged", "check"),
        Action::Create => ("Creating", "Created", "create"),
        Action::Update => ("Updating", "Updated", "update"),
        Action::Replace => ("Replacing", "Replaced", "replace"),
        Action::Delete => ("Destroying", "Destroyed", "destroy"),
    }
}

#[derive(Default)]
struct State {
    /// Last `Still waiting` line logged per address (non-terminal output).
    logged: HashMap<Address, Instant>,
    /// A spinner line is on screen and must be cleared before the next line.
    spinner_shown: bool,
    frame: usize,
    /// The interrupt was announced.
    interrupted: bool,
}

/// The CLI's [`Hook`]: status lines on stderr.
pub struct Progress {
    shell: Shell,
    state: Mutex<State>,
}

impl Progress {
    pub fn new(shell: Shell) -> Progress {
        Progress {
            shell,
            state: Mutex::new(State::default()),
        }
    }

    fn line(&self, text: String) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.spinner_shown {
            eprint!("\r\x1b[2K");
            state.spinner_shown = false;
        }
        eprintln!("{text}");
    }

    /// Whether Ctrl-C was pressed (see [`crate::interrupt`]); says what happens next the first
    /// time it sees it.
    pub fn interrupted(&self) -> bool {
        if !crate::interrupt::received() {
            return false;
        }
        let first = !std::mem::replace(
            &mut self
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .interrupted,
            true,
        );
        if first {
            self.line(format!(
                "\n{} nothing new starts, and the actions in progress end without retrying or \
                 waiting. Press Ctrl-C again to stop at once (the lock then stays held).",
                self.shell.paint_err(Style::Yellow, "Interrupted:")
            ));
        }
        true
    }
}

impl Hook for Progress {
    fn should_stop(&self) -> bool {
        self.interrupted()
    }

    fn before(&self, change: &Change) {
        if change.action == Action::NoOp {
            return;
        }
        let (verb, _, _) = verbs(change.action);
        self.line(self.shell.status_line(verb, Style::Cyan, &change.address));
    }

    fn after(&self, change: &Change, outcome: &Outcome, took: Duration) {
        if change.action == Action::NoOp {
            return;
        }
        let (_, done, noun) = verbs(change.action);
        let text = match outcome {
            Outcome::Done => self.shell.status_line(
                done,
                Style::Green,
                format!("{} ({})", change.address, elapsed(took)),
            ),
            Outcome::Failed(ProviderError::Interrupted(_)) => self.shell.status_line(
                "Interrupted",
                Style::Yellow,
                format!("{noun} {} ({})", change.address, elapsed(took)),
            ),
            Outcome::Failed(_) => self.shell.status_line(
                "Failed",
                Style::Red,
                format!("to {noun} {} ({})", change.address, elapsed(took)),
            ),
            Outcome::Skipped => {
                let why = if crate::interrupt::received() {
                    "interrupted"
                } else {
                    "an earlier action failed"
                };
                self.shell.status_line(
                    "Skipped",
                    Style::Yellow,
                    format!("{} (not started: {why})", change.address),
                )
            }
        };
        if let Ok(mut state) = self.state.lock() {
            state.logged.remove(&change.address);
        }
        self.line(text);
    }

    fn notice(&self, address: &Address, text: &str) {
        self.line(notice_block(&self.shell, address, text));
    }

    fn waiting(&self, address: &Address, status: &str, took: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if self.shell.err_is_terminal() {
            let frame = SPINNER[state.frame % SPINNER.len()];
            state.frame += 1;
            eprint!(
                "\r\x1b[2K{}",
                self.shell.status_line(
                    &frame.to_string(),
                    Style::Cyan,
                    format!("{address}: {status} ({})", elapsed(took))
                )
            );
            state.spinner_shown = true;
            return;
        }
        let now = Instant::now();
        let due = state
            .logged
            .get(address)
            .is_none_or(|last| now.duration_since(*last) >= LOG_WAIT_EVERY);
        if due {
            state.logged.insert(address.clone(), now);
            eprintln!(
                "{}",
                self.shell.status_line(
                    "Still",
                    Style::Cyan,
                    format!("waiting for {address}: {status} ({})", elapsed(took))
                )
            );
        }
    }
}

/// A notice as a status block: `Note ADDRESS: HEADLINE`, then each detail line under the
/// message column.
fn notice_block(shell: &Shell, address: &Address, text: &str) -> String {
    let mut lines = text.lines();
    let headline = lines.next().unwrap_or_default();
    let mut block = shell.status_line("Note", Style::Yellow, format!("{address}: {headline}"));
    for line in lines {
        block.push('\n');
        block.push_str(&" ".repeat(VERB_WIDTH + 1));
        block.push_str(line);
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;
    use infra_core::Kind;

    #[test]
    fn a_notice_is_a_status_line_with_its_details_under_the_message() {
        let block = notice_block(
            &Shell::new(true),
            &Address::new(Kind::Certificate, "site"),
            "create these DNS records:\n_a.example.com. CNAME _x.acm-validations.aws.",
        );
        assert_eq!(
            block,
            "        Note acm_certificate.site: create these DNS records:\n             _a.example.com. CNAME _x.acm-validations.aws."
        );
    }
}
