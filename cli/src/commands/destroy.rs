//! `infra destroy STACK`: delete everything the stack owns, in reverse dependency order.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use infra_core::engine::{PlanMode, PlanOptions};

use super::apply::Execute;
use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    /// The stack: a `.rs` stack file or a `.json` file written by `infra synth`.
    pub stack: PathBuf,
    #[command(flatten)]
    pub vars: super::Vars,
    /// Do not ask before deleting.
    #[arg(long)]
    pub auto_approve: bool,
    /// Allow deleting resources that hold data (databases, non-empty buckets).
    #[arg(long)]
    pub allow_data_loss: bool,
    /// Most deletions in flight at once.
    #[arg(long, value_name = "N", default_value_t = infra_core::engine::DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let stack = ctx.load(&args.stack, &args.vars)?;
    let options = PlanOptions {
        mode: PlanMode::Destroy,
        allow_data_loss: args.allow_data_loss,
    };
    let execute = Execute {
        auto_approve: args.auto_approve,
        concurrency: args.concurrency.into(),
        no_wait: false,
    };
    super::apply::plan_and_apply(ctx, &stack, options, &execute)
}
