//! One module per subcommand; shared plumbing (loading, checking, connecting, prompting) here.

pub mod apply;
pub mod destroy;
pub mod force_unlock;
pub mod graph;
pub mod import;
pub mod lint;
pub mod output;
pub mod plan;
pub mod synth;
pub mod validate;

use std::future::Future;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use infra_aws::{AccessError, AwsOptions, AwsProvider, Stop};
use infra_cli::shell::{Shell, Style};
use infra_cli::stack_file::{Loader, Var};
use infra_core::validate::{Diagnostic, Report, Severity};
use infra_core::{LockError, Stack};

/// A stack that failed validation; its diagnostics were printed already.
#[derive(Debug, thiserror::Error)]
#[error("stack `{stack}` is not valid: {errors} error{}", if *errors == 1 { "" } else { "s" })]
pub struct Invalid {
    pub stack: String,
    pub errors: usize,
}

/// The user did not confirm, or could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum NotConfirmed {
    #[error("{what} cancelled: only `yes` confirms")]
    Declined { what: &'static str },
    #[error("refusing to {what} without confirmation: stdin is not a terminal (pass --auto-approve to {what} without asking)")]
    NoTerminal { what: &'static str },
}

/// `--var KEY=VALUE`, for every command that loads a stack file.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Vars {
    /// Set a variable the stack file reads with `Stack::var("KEY")`, such as `--var
    /// env=staging` (repeatable; a later value for the same KEY wins). Only for `.rs` stacks.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<Var>,
}

impl Vars {
    /// The keys given, sorted, each once.
    pub fn keys(&self) -> Vec<String> {
        let keys: std::collections::BTreeSet<&String> = self.vars.iter().map(|v| &v.key).collect();
        keys.into_iter().cloned().collect()
    }
}

/// What every command needs.
pub struct Ctx {
    pub shell: Shell,
}

impl Ctx {
    pub fn new(shell: Shell) -> Ctx {
        Ctx { shell }
    }

    /// The stack in a `.rs` file, run with `vars`, or in a `.json` file.
    pub fn load(&self, path: &Path, vars: &Vars) -> Result<Stack> {
        let loader = Loader::from_env()?
            .with_color(self.shell.color_err())
            .with_vars(vars.vars.iter().cloned());
        Ok(loader.load(path, &self.shell)?)
    }

    /// Run validation and lints: print every finding on stderr, fail on errors.
    pub fn check(&self, stack: &Stack) -> Result<Report> {
        let report = infra_core::validate::check(stack);
        self.print_diagnostics(report.diagnostics.iter());
        let errors = report.errors().count();
        if errors > 0 {
            return Err(Invalid {
                stack: stack.name.clone(),
                errors,
            }
            .into());
        }
        Ok(report)
    }

    /// Diagnostics the way rustc prints them: `error[ID]: ...` with `= help:` lines.
    pub fn print_diagnostics<'a>(&self, diagnostics: impl Iterator<Item = &'a Diagnostic>) {
        let mut text = String::new();
        for d in diagnostics {
            text.push_str(&self.diagnostic(d));
        }
        self.shell.err_text(&text);
    }

    fn diagnostic(&self, d: &Diagnostic) -> String {
        let line = d.to_string();
        let (level, style) = match d.severity {
            Severity::Error => ("error", Style::Red),
            Severity::Warning => ("warning", Style::Yellow),
        };
        let mut out = match line.strip_prefix(level) {
            Some(rest) => format!("{}{rest}\n", self.shell.paint_err(style, level)),
            None => format!("{line}\n"),
        };
        if let Some(help) = &d.help {
            out.push_str(&format!("  = help: {help}\n"));
        }
        if let Some(mapping) = &d.mapping {
            out.push_str(&format!("  = see: {mapping}\n"));
        }
        out
    }

    /// Ask `question`; true only for `yes`. Without a terminal, fail unless `auto_approve`.
    pub fn confirm(&self, what: &'static str, question: &str, auto_approve: bool) -> Result<()> {
        if auto_approve {
            return Ok(());
        }
        if !self.shell.can_prompt() {
            return Err(NotConfirmed::NoTerminal { what }.into());
        }
        print!("\n{question} (yes/no) ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() == "yes" {
            Ok(())
        } else {
            Err(NotConfirmed::Declined { what }.into())
        }
    }
}

/// A runtime for the AWS calls.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The AWS provider for the stack's region, from the standard AWS environment
/// (`AWS_MAX_ATTEMPTS` included), once its first call showed that calls can work. Its actions
/// stop retrying at the first Ctrl-C (see [`infra_cli::interrupt`]).
pub async fn provider(stack: &Stack) -> Result<AwsProvider, AccessError> {
    let options = AwsOptions {
        stop: Stop::on(infra_cli::interrupt::flag()),
        ..AwsOptions::from_env()
    };
    let provider = AwsProvider::connect(&stack.region, options).await;
    provider.check_access().await?;
    Ok(provider)
}

/// The absolute form of a path the user gave, for recording in saved plans.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path)
        .map_err(|e| anyhow::anyhow!(e).context(format!("cannot find `{}`", path.display())))
}

/// Take the stack's lock for `operation`, run `work`, then release the lock whatever `work`
/// returned. A lock someone else holds fails at once, naming the holder. From here on a first
/// Ctrl-C stops the work gracefully (see [`infra_cli::interrupt`]), so the lock is released.
pub async fn locked<T>(
    provider: &AwsProvider,
    stack: &Stack,
    operation: &str,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    infra_cli::interrupt::catch()?;
    infra_core::lock::locked(provider, stack, operation, work)
        .await
        .map_err(Locked::from_error)
}

/// The lock is held by someone else: the holder, and how to release a lock left by a crash.
#[derive(Debug, thiserror::Error)]
#[error("{held}\n\nhelp: if that run is no longer running, release its lock with `infra force-unlock STACK {id}`")]
pub struct Locked {
    pub id: String,
    pub held: LockError,
}

impl Locked {
    /// A lock held by someone else gets the help line; any other error stays as it is.
    fn from_error(error: anyhow::Error) -> anyhow::Error {
        match error.downcast::<LockError>() {
            Ok(LockError::Held { stack, holder }) => Locked {
                id: holder.id.clone(),
                held: LockError::Held { stack, holder },
            }
            .into(),
            Ok(other) => other.into(),
            Err(error) => error,
        }
    }
}
