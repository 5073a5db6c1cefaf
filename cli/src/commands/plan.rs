//! `infra plan STACK`: what apply would change, for people or (`--json`) for programs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use infra_cli::shell::Style;
use infra_cli::SavedPlan;
use infra_core::engine::{self, EngineError, PlanMode, PlanOptions};

use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    /// The stack: a `.rs` stack file or a `.json` file written by `infra synth`.
    pub stack: PathBuf,
    #[command(flatten)]
    pub vars: super::Vars,
    /// Print the plan as JSON (versioned, never holds a secret value).
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when there is nothing to change, 2 when there are changes, 1 on errors.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan to FILE, for `infra apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Plan the deletion of everything the stack owns.
    #[arg(long)]
    pub destroy: bool,
    /// Allow replacing or deleting resources that hold data (databases, non-empty buckets).
    #[arg(long)]
    pub allow_data_loss: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let stack = ctx.load(&args.stack, &args.vars)?;
    ctx.check(&stack)?;
    let options = PlanOptions {
        mode: if args.destroy {
            PlanMode::Destroy
        } else {
            PlanMode::Normal
        },
        allow_data_loss: args.allow_data_loss,
    };
    let plan = super::runtime()?.block_on(async {
        let provider = super::provider(&stack).await?;
        anyhow::Ok(engine::plan(&stack, &provider, &options).await?)
    })?;
    if args.json {
        println!("{}", plan.to_json());
    } else {
        print!("{}", engine::render_plan(&plan, ctx.shell.color_out()));
    }
    if let Some(out) = &args.out {
        SavedPlan::new(
            super::absolute(&args.stack)?,
            args.vars.keys(),
            options,
            plan.clone(),
        )
        .write(out)?;
        ctx.shell.status(
            "Saved",
            Style::Green,
            format!(
                "the plan to {}: apply it with `infra apply {}`",
                out.display(),
                out.display()
            ),
        );
    }
    if !plan.refusals.is_empty() {
        return Err(EngineError::Refused(plan.refusals).into());
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
