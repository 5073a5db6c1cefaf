//! `infra validate STACK`: every error in the stack, without calling AWS.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    /// The stack: a `.rs` stack file or a `.json` file written by `infra synth`.
    pub stack: PathBuf,
    #[command(flatten)]
    pub vars: super::Vars,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let stack = ctx.load(&args.stack, &args.vars)?;
    let report = infra_core::validate::check(&stack);
    ctx.print_diagnostics(report.errors());
    let errors = report.errors().count();
    if errors > 0 {
        return Err(super::Invalid {
            stack: stack.name,
            errors,
        }
        .into());
    }
    let warnings = report.warnings().count();
    let note = match warnings {
        0 => String::new(),
        1 => " (1 lint warning: see `infra lint`)".to_string(),
        n => format!(" ({n} lint warnings: see `infra lint`)"),
    };
    println!(
        "stack `{}` is valid: {} resources in {}{note}",
        stack.name,
        stack.resources.len(),
        stack.region
    );
    Ok(ExitCode::SUCCESS)
}
