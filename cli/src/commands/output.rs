//! `infra output STACK [NAME]`: the stack's outputs, read from what exists now.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use infra_core::engine;

use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    /// The stack: a `.rs` stack file or a `.json` file written by `infra synth`.
    pub stack: PathBuf,
    #[command(flatten)]
    pub vars: super::Vars,
    /// Print only this output's value, for scripts (`$(infra output stack.rs db_endpoint)`).
    pub name: Option<String>,
    /// Print the outputs as a JSON object (`null` where not known yet).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("stack `{stack}` has no output `{name}` (its outputs: {valid})")]
    Unknown {
        stack: String,
        name: String,
        valid: String,
    },
    #[error("output `{name}` of stack `{stack}` is not known yet: its resource does not exist (run `infra apply` first)")]
    NotKnown { stack: String, name: String },
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let stack = ctx.load(&args.stack, &args.vars)?;
    let outputs = super::runtime()?.block_on(async {
        let provider = super::provider(&stack).await?;
        anyhow::Ok(engine::read_outputs(&stack, &provider).await?)
    })?;
    if let Some(name) = args.name {
        return match outputs.get(&name) {
            None => Err(OutputError::Unknown {
                stack: stack.name.clone(),
                name,
                valid: outputs.keys().cloned().collect::<Vec<_>>().join(", "),
            }
            .into()),
            Some(None) => Err(OutputError::NotKnown {
                stack: stack.name.clone(),
                name,
            }
            .into()),
            Some(Some(value)) => {
                println!("{value}");
                Ok(ExitCode::SUCCESS)
            }
        };
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outputs)?);
    } else if outputs.is_empty() {
        println!("Stack `{}` declares no outputs.", stack.name);
    } else {
        print!("{}", infra_cli::render::outputs(&outputs));
    }
    Ok(ExitCode::SUCCESS)
}
