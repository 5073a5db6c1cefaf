//! `infra`: plan and apply AWS stacks written as Rust files.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use infra_cli::shell::Shell;

#[derive(Parser)]
#[command(
    name = "infra",
    version,
    about = "Plan and apply AWS stacks written as Rust files",
    long_about = "Plan and apply AWS stacks written as Rust files.\n\n\
        STACK is a `.rs` file defining `pub fn stack() -> infra_core::Stack` (compiled once and \
        cached) or a `.json` file written by `infra synth`. AWS endpoint, credentials and \
        profile come from the standard AWS environment and config (AWS_ENDPOINT_URL, \
        AWS_PROFILE, ...); the stack names its region."
)]
struct Cli {
    /// Debug logs on stderr: -v for infra and the AWS SDK (calls, retries), -vv adds the SDK's
    /// HTTP runtime.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Never colour the output (colour is only used on a terminal anyway).
    #[arg(long, global = true)]
    no_color: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a stack for errors, without calling AWS.
    Validate(commands::validate::Args),
    /// Show the lint findings of a stack, with their ids.
    Lint(commands::lint::Args),
    /// Print the stack's JSON.
    Synth(commands::synth::Args),
    /// Show what apply would change.
    Plan(commands::plan::Args),
    /// Create, update or replace resources so AWS matches the stack (or apply a saved plan).
    Apply(commands::apply::Args),
    /// Delete every resource the stack owns.
    Destroy(commands::destroy::Args),
    /// Print the stack's outputs (load balancer DNS name, database endpoint, ...).
    Output(commands::output::Args),
    /// Print the dependency graph.
    Graph(commands::graph::Args),
    /// Adopt an existing AWS resource into the stack by tagging it.
    Import(commands::import::Args),
    /// Release the stack lock left behind by a run that crashed or was killed.
    ForceUnlock(commands::force_unlock::Args),
}

fn main() -> ExitCode {
    // Usage errors exit 1, not clap's 2: `plan --detailed-exitcode` reserves 2 for "changes".
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let shell = Shell::new(cli.no_color);
    init_logging(cli.verbose, shell.color_err());
    let ctx = commands::Ctx::new(shell);
    let result = match cli.command {
        Command::Validate(args) => commands::validate::run(&ctx, args),
        Command::Lint(args) => commands::lint::run(&ctx, args),
        Command::Synth(args) => commands::synth::run(&ctx, args),
        Command::Plan(args) => commands::plan::run(&ctx, args),
        Command::Apply(args) => commands::apply::run(&ctx, args),
        Command::Destroy(args) => commands::destroy::run(&ctx, args),
        Command::Output(args) => commands::output::run(&ctx, args),
        Command::Graph(args) => commands::graph::run(&ctx, args),
        Command::Import(args) => commands::import::run(&ctx, args),
        Command::ForceUnlock(args) => commands::force_unlock::run(&ctx, args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            report(&shell, &error, cli.verbose);
            // An error after the first Ctrl-C (a plan cut short under the lock) is its doing.
            if infra_cli::interrupt::received() {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Print a failed command's error Cargo-style. The first call's failure carries the AWS SDK's
/// error as its cause: shown with `-v` only, its message says everything else.
fn report(shell: &Shell, error: &anyhow::Error, verbose: u8) {
    match error.downcast_ref::<infra_aws::AccessError>() {
        Some(access) if verbose == 0 => {
            shell.error_brief(access);
            shell.note("`-v` shows the AWS SDK's error");
        }
        _ => shell.error(error.as_ref()),
    }
}

/// `-v`: infra and the AWS SDK at debug (API calls, retries); `-vv`: also the SDK's HTTP
/// runtime; `-vvv`: trace. `RUST_LOG` overrides.
fn init_logging(verbose: u8, color: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = match (std::env::var("RUST_LOG"), verbose) {
        (Ok(spec), _) if !spec.is_empty() => EnvFilter::new(spec),
        (_, 0) => return,
        (_, 1) => EnvFilter::new(
            "infra=debug,aws=debug,aws_smithy_runtime=info,aws_smithy_runtime::client::retries=debug",
        ),
        (_, 2) => EnvFilter::new("infra=debug,aws=debug"),
        _ => EnvFilter::new("infra=trace,aws=trace,hyper=debug"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .init();
}
