//! `infra lint STACK`: the lint findings, each with its id, help and matching controls, after
//! the validation errors if the stack has any (a stack that is not valid never lints clean).

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
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Lints the stack denies (raised to errors) fire.
#[derive(Debug, thiserror::Error)]
#[error("stack `{stack}` denies {count} of the lints found")]
pub struct Denied {
    pub stack: String,
    pub count: usize,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let stack = ctx.load(&args.stack, &args.vars)?;
    let invalid = infra_core::validate::validate(&stack).errors().count();
    let report = infra_core::validate::check(&stack);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    if invalid > 0 {
        return Err(super::Invalid {
            stack: stack.name,
            errors: invalid,
        }
        .into());
    }
    let denied = report.errors().count();
    if denied > 0 {
        return Err(Denied {
            stack: stack.name,
            count: denied,
        }
        .into());
    }
    Ok(ExitCode::SUCCESS)
}
