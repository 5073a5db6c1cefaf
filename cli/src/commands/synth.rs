//! `infra synth STACK`: the stack's JSON, which every other command accepts in place of the
//! `.rs` file. It holds secret values the stack declares, like the stack file itself.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    /// The stack: a `.rs` stack file or a `.json` file written by `infra synth`.
    pub stack: PathBuf,
    #[command(flatten)]
    pub vars: super::Vars,
    /// Write the JSON to this file instead of stdout.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let stack = ctx.load(&args.stack, &args.vars)?;
    let json = stack.to_json() + "\n";
    match args.out {
        Some(path) => {
            std::fs::write(&path, json)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            ctx.shell.status(
                "Wrote",
                infra_cli::shell::Style::Green,
                format!("stack `{}` to {}", stack.name, path.display()),
            );
        }
        None => print!("{json}"),
    }
    Ok(ExitCode::SUCCESS)
}
