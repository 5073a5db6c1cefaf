//! `infra force-unlock STACK LOCK_ID`: release a stack lock left behind by a run that crashed or
//! was killed. The id comes from the error that names the holder, so nobody releases a lock by
//! accident; nothing else is changed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use infra_cli::shell::Style;
use infra_core::{LockError, StackLock};

use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    /// The stack: a `.rs` stack file or a `.json` file written by `infra synth`.
    pub stack: PathBuf,
    #[command(flatten)]
    pub vars: super::Vars,
    /// The lock's id, as the error about the held lock printed it.
    pub lock_id: String,
    /// Do not ask before releasing.
    #[arg(long)]
    pub auto_approve: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let stack = ctx.load(&args.stack, &args.vars)?;
    super::runtime()?.block_on(async {
        let provider = super::provider(&stack).await?;
        let holder = provider
            .holder(&stack)
            .await?
            .ok_or_else(|| LockError::NotLocked {
                stack: stack.name.clone(),
            })?;
        if holder.id != args.lock_id {
            return Err(LockError::WrongId {
                stack: stack.name.clone(),
                given: args.lock_id.clone(),
                holder,
            }
            .into());
        }
        println!(
            "Stack `{}` is locked by {} (`infra {}`, pid {}) since {}.",
            stack.name,
            holder.who,
            holder.operation,
            holder.pid,
            holder.since()
        );
        ctx.confirm(
            "force-unlock",
            "Release it? Only do this when that run is no longer running.",
            args.auto_approve,
        )?;
        provider.unlock(&stack, &args.lock_id).await?;
        ctx.shell.status(
            "Unlocked",
            Style::Green,
            format!("stack `{}` (lock {})", stack.name, args.lock_id),
        );
        Ok(ExitCode::SUCCESS)
    })
}
