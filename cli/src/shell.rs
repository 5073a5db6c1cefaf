//! Cargo-style terminal output: right-aligned status verbs, `error:`/`warning:` prefixes,
//! `Caused by:` chains, colour only on a terminal.

use std::error::Error;
use std::fmt::Display;
use std::io::{self, IsTerminal, Write};

/// Width of the right-aligned status verb column, as in Cargo.
pub const VERB_WIDTH: usize = 12;

/// ANSI styles used by the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Green,
    Yellow,
    Red,
    Cyan,
    Bold,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Green => "\x1b[1;32m",
            Style::Yellow => "\x1b[1;33m",
            Style::Red => "\x1b[1;31m",
            Style::Cyan => "\x1b[1;36m",
            Style::Bold => "\x1b[1m",
        }
    }
}

/// Where the CLI writes, and whether it may use colour and redraw lines.
#[derive(Clone, Copy, Debug)]
pub struct Shell {
    color_out: bool,
    color_err: bool,
    err_is_terminal: bool,
    in_is_terminal: bool,
}

impl Shell {
    /// Colour when the stream is a terminal, `--no-color` was not given and `NO_COLOR` is unset.
    pub fn new(no_color: bool) -> Shell {
        let allowed = !no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Shell {
            color_out: allowed && io::stdout().is_terminal(),
            color_err: allowed && io::stderr().is_terminal(),
            err_is_terminal: io::stderr().is_terminal(),
            in_is_terminal: io::stdin().is_terminal(),
        }
    }

    /// Whether stdout may carry colour.
    pub fn color_out(&self) -> bool {
        self.color_out
    }

    /// Whether stderr may carry colour.
    pub fn color_err(&self) -> bool {
        self.color_err
    }

    /// Whether stderr is a terminal (live redrawn lines instead of log lines).
    pub fn err_is_terminal(&self) -> bool {
        self.err_is_terminal
    }

    /// Whether a question can be asked on stdin.
    pub fn can_prompt(&self) -> bool {
        self.in_is_terminal
    }

    pub fn paint_err(&self, style: Style, text: &str) -> String {
        paint(self.color_err, style, text)
    }

    pub fn paint_out(&self, style: Style, text: &str) -> String {
        paint(self.color_out, style, text)
    }

    /// `   Compiling stacks/closet.rs` on stderr.
    pub fn status(&self, verb: &str, style: Style, message: impl Display) {
        eprintln!("{}", self.status_line(verb, style, message));
    }

    pub fn status_line(&self, verb: &str, style: Style, message: impl Display) -> String {
        let verb = format!("{verb:>VERB_WIDTH$}");
        format!("{} {message}", self.paint_err(style, &verb))
    }

    /// `error: MESSAGE` on stderr, leaving out the error's causes.
    pub fn error_brief(&self, message: impl Display) {
        eprintln!("{}: {message}", self.paint_err(Style::Red, "error"));
    }

    /// `note: MESSAGE` on stderr.
    pub fn note(&self, message: impl Display) {
        eprintln!("{}: {message}", self.paint_err(Style::Bold, "note"));
    }

    pub fn warn(&self, message: impl Display) {
        eprintln!("{}: {message}", self.paint_err(Style::Yellow, "warning"));
    }

    /// `error: MESSAGE` followed by the error's sources as `Caused by:` lines.
    pub fn error(&self, error: &(dyn Error + 'static)) {
        eprint!("{}", render_error(error, self.color_err));
    }

    /// Print raw text on stderr (pre-rendered diagnostics).
    pub fn err_text(&self, text: &str) {
        let mut err = io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }
}

fn paint(color: bool, style: Style, text: &str) -> String {
    if color {
        format!("{}{text}\x1b[0m", style.code())
    } else {
        text.to_string()
    }
}

/// Cargo-style error text: `error: MESSAGE`, then each source under `Caused by:`.
pub fn render_error(error: &(dyn Error + 'static), color: bool) -> String {
    let mut out = format!("{}: {error}\n", paint(color, Style::Red, "error"));
    let mut source = error.source();
    if source.is_some() {
        out.push_str("\nCaused by:\n");
    }
    while let Some(cause) = source {
        for (i, line) in cause.to_string().lines().enumerate() {
            out.push_str(if i == 0 { "  " } else { "    " });
            out.push_str(line);
            out.push('\n');
        }
        source = cause.source();
    }
    out
}

/// Seconds with one decimal under a minute, else minutes and seconds: `1.2s`, `3m05s`.
pub fn elapsed(d: std::time::Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// Loading reports: a `Compiling` status line, then the compiler's diagnostics as they are, and
/// the stack program's own stderr as [`program_stderr`] shows it.
impl crate::stack_file::LoadReporter for Shell {
    fn compiling(&self, path: &std::path::Path) {
        self.status(
            "Compiling",
            Style::Green,
            format!("{} (cached until it changes)", path.display()),
        );
    }

    fn compiler_output(&self, text: &str) {
        self.err_text(text);
    }

    fn program_stderr(&self, path: &std::path::Path, text: &str) {
        self.err_text(&program_stderr(path, text));
    }
}

/// What a stack program printed on stderr, so it reads as the stack file's: `warning: ...`
/// (and `error:`, `note:`, `help:`) lines as they are, other lines after the file's path
/// (`stacks/closet.rs: 3 subnets`), blank lines kept blank.
pub fn program_stderr(path: &std::path::Path, text: &str) -> String {
    let levels = ["warning", "error", "note", "help"];
    let mut out = String::new();
    for line in text.trim_end().lines() {
        let diagnostic = levels.iter().any(|level| {
            line.strip_prefix(level)
                .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('['))
        });
        if !diagnostic && !line.trim().is_empty() {
            out.push_str(&format!("{}: ", path.display()));
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to create ec2_subnet.public_a")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("ec2:CreateSubnet: InvalidSubnet.Range: The CIDR '10.1.0.0/24' is invalid.")]
    struct Inner;

    #[test]
    fn errors_print_their_chain_cargo_style() {
        assert_eq!(
            render_error(&Outer(Inner), false),
            "error: failed to create ec2_subnet.public_a\n\nCaused by:\n  ec2:CreateSubnet: InvalidSubnet.Range: The CIDR '10.1.0.0/24' is invalid.\n"
        );
    }

    #[test]
    fn program_stderr_keeps_diagnostics_and_names_the_file_on_other_lines() {
        let text = "warning: hello from the stack\n3 subnets\n\nerror[X1]: no\nwarnings: 2\n";
        assert_eq!(
            program_stderr(std::path::Path::new("stacks/closet.rs"), text),
            "warning: hello from the stack\nstacks/closet.rs: 3 subnets\n\nerror[X1]: no\nstacks/closet.rs: warnings: 2\n"
        );
    }

    #[test]
    fn elapsed_is_short() {
        assert_eq!(elapsed(std::time::Duration::from_millis(1234)), "1.2s");
        assert_eq!(elapsed(std::time::Duration::from_secs(185)), "3m05s");
    }

    #[test]
    fn status_verbs_are_right_aligned_in_twelve_columns() {
        let shell = Shell {
            color_out: false,
            color_err: false,
            err_is_terminal: false,
            in_is_terminal: false,
        };
        assert_eq!(
            shell.status_line("Creating", Style::Green, "ec2_vpc.main"),
            "    Creating ec2_vpc.main"
        );
    }
}
