//! `infra apply STACK|PLAN`: make AWS match the stack, or carry out a plan saved by
//! `infra plan --out` (refused when the stack or AWS changed since it was made).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use infra_cli::progress::{verbs, Progress};
use infra_cli::render::{self, Done};
use infra_cli::SavedPlan;
use infra_core::engine::{self, ApplyOptions, EngineError, Plan, PlanMode, PlanOptions};
use infra_core::{Address, Provider, ProviderError, Stack};

use super::{Ctx, Vars};

#[derive(clap::Args)]
pub struct Args {
    /// A `.rs` stack file, a `.json` stack written by `infra synth`, or a plan saved by
    /// `infra plan --out` (applied as planned, without asking again).
    pub stack: PathBuf,
    #[command(flatten)]
    pub vars: super::Vars,
    /// Do not ask before changing anything.
    #[arg(long)]
    pub auto_approve: bool,
    /// Allow replacing or deleting resources that hold data (databases, non-empty buckets).
    #[arg(long)]
    pub allow_data_loss: bool,
    /// Most actions in flight at once.
    #[arg(long, value_name = "N", default_value_t = infra_core::engine::DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Return once long operations (instance refreshes) have started instead of waiting.
    #[arg(long)]
    pub no_wait: bool,
}

/// How to carry out a plan.
pub struct Execute {
    pub auto_approve: bool,
    pub concurrency: usize,
    pub no_wait: bool,
}

/// One action of an apply failed.
#[derive(Debug, thiserror::Error)]
#[error("failed to {verb} {address}")]
pub struct ActionFailed {
    pub verb: &'static str,
    pub address: Address,
    #[source]
    pub source: ProviderError,
}

/// Errors specific to saved plans.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanRefused {
    #[error("saved plan `{}` is out of date: the stack or what exists in AWS changed since it was made{}; run `infra plan` again", path.display(), changed_note(changed))]
    Stale { path: PathBuf, changed: Vec<String> },
    #[error(
        "`{flag}` cannot change a saved plan: make a new plan with `infra plan {flag} --out FILE`"
    )]
    Flag { flag: &'static str },
    #[error("saved plan `{}` was made with {}, but this apply has {}: pass the same `--var` options as to `infra plan`", path.display(), var_list(saved), var_list(given))]
    Vars {
        path: PathBuf,
        saved: Vec<String>,
        given: Vec<String>,
    },
}

fn var_list(keys: &[String]) -> String {
    if keys.is_empty() {
        "no `--var`".to_string()
    } else {
        keys.iter()
            .map(|k| format!("`--var {k}=...`"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn changed_note(changed: &[String]) -> String {
    if changed.is_empty() {
        String::new()
    } else {
        format!(" (now different: {})", changed.join(", "))
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let execute = Execute {
        auto_approve: args.auto_approve,
        concurrency: args.concurrency.into(),
        no_wait: args.no_wait,
    };
    if is_saved_plan(&args.stack) {
        if args.allow_data_loss {
            return Err(SavedPlanRefused::Flag {
                flag: engine::ALLOW_DATA_LOSS_FLAG,
            }
            .into());
        }
        return apply_saved(ctx, &args.stack, &args.vars, &execute);
    }
    let stack = ctx.load(&args.stack, &args.vars)?;
    let options = PlanOptions {
        mode: PlanMode::Normal,
        allow_data_loss: args.allow_data_loss,
    };
    plan_and_apply(ctx, &stack, options, &execute)
}

fn is_saved_plan(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "json")
        && std::fs::read_to_string(path).is_ok_and(|text| SavedPlan::is_saved_plan(&text))
}

/// Plan, show the plan, ask, then carry it out.
pub fn plan_and_apply(
    ctx: &Ctx,
    stack: &Stack,
    options: PlanOptions,
    execute: &Execute,
) -> Result<ExitCode> {
    ctx.check(stack)?;
    super::runtime()?.block_on(async {
        let provider = super::provider(stack).await?;
        let plan = engine::plan(stack, &provider, &options).await?;
        print!("{}", engine::render_plan(&plan, ctx.shell.color_out()));
        if !plan.refusals.is_empty() {
            return Err(EngineError::Refused(plan.refusals).into());
        }
        if !plan.has_changes() {
            if plan.mode == PlanMode::Normal {
                print_outputs(stack, &prior_state(&plan));
            }
            return Ok(ExitCode::SUCCESS);
        }
        let what = match plan.mode {
            PlanMode::Normal => "apply",
            PlanMode::Destroy => "destroy",
        };
        ctx.confirm(
            what,
            "Do you want to perform these actions?",
            execute.auto_approve,
        )?;
        // The lock is taken once there is something to do (a no-change apply writes nothing),
        // then the plan is made again under it: what is carried out is what was shown.
        super::locked(&provider, stack, what, async {
            let current = engine::plan(stack, &provider, &options).await?;
            let changed = plan.differences(&current);
            if !changed.is_empty() {
                return Err(ChangedSincePlan { changed }.into());
            }
            carry_out(ctx, &current, stack, &provider, execute).await
        })
        .await
    })
}

/// What exists changed between showing the plan and taking the lock.
#[derive(Debug, thiserror::Error)]
#[error("what exists in AWS changed after the plan was shown (now different: {}); nothing was changed, run the command again", changed.join(", "))]
pub struct ChangedSincePlan {
    pub changed: Vec<String>,
}

fn apply_saved(ctx: &Ctx, path: &Path, vars: &Vars, execute: &Execute) -> Result<ExitCode> {
    let saved = SavedPlan::read(path)?;
    if vars.keys() != saved.var_keys {
        return Err(SavedPlanRefused::Vars {
            path: path.to_path_buf(),
            saved: saved.var_keys,
            given: vars.keys(),
        }
        .into());
    }
    // Different values make a different stack: the fingerprint check below refuses it.
    let stack = ctx.load(&saved.stack_file, vars)?;
    ctx.check(&stack)?;
    if !saved.plan.refusals.is_empty() {
        return Err(EngineError::Refused(saved.plan.refusals.clone()).into());
    }
    super::runtime()?.block_on(async {
        let provider = super::provider(&stack).await?;
        if !saved.plan.has_changes() {
            let fresh = engine::plan(&stack, &provider, &saved.options).await?;
            check_fresh(path, &saved.plan, &fresh)?;
            println!("No changes: the saved plan has nothing to do.");
            return Ok(ExitCode::SUCCESS);
        }
        let what = match saved.plan.mode {
            PlanMode::Normal => "apply",
            PlanMode::Destroy => "destroy",
        };
        super::locked(&provider, &stack, what, async {
            let fresh = engine::plan(&stack, &provider, &saved.options).await?;
            check_fresh(path, &saved.plan, &fresh)?;
            carry_out(ctx, &saved.plan, &stack, &provider, execute).await
        })
        .await
    })
}

/// Refuse a saved plan when the stack or what exists changed since it was made.
fn check_fresh(path: &Path, saved: &Plan, fresh: &Plan) -> Result<()> {
    if fresh.fingerprint != saved.fingerprint {
        return Err(SavedPlanRefused::Stale {
            path: path.to_path_buf(),
            changed: saved.differences(fresh),
        }
        .into());
    }
    Ok(())
}

/// Walk the plan with live progress, then report failures and the summary.
pub async fn carry_out(
    ctx: &Ctx,
    plan: &Plan,
    stack: &Stack,
    provider: &dyn Provider,
    execute: &Execute,
) -> Result<ExitCode> {
    let hook = Progress::new(ctx.shell);
    let options = ApplyOptions {
        concurrency: execute.concurrency,
        no_wait: execute.no_wait,
    };
    let apply = engine::apply(plan, stack, provider, &options, &hook);
    tokio::pin!(apply);
    // The engine hears of an interrupt when it would start an action; say so at once.
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    let result = loop {
        tokio::select! {
            result = &mut apply => break result?,
            _ = tick.tick() => {
                hook.interrupted();
            }
        }
    };
    let done = Done::from_completed(plan, &result.completed);
    let what = match plan.mode {
        PlanMode::Normal => "Apply",
        PlanMode::Destroy => "Destroy",
    };
    if result.is_success() {
        println!("\n{what} complete: {}.", done.counts());
        if plan.mode == PlanMode::Normal {
            print_outputs(stack, &result.state);
        }
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!();
    for (address, error) in &result.failed {
        let verb = plan.change(address).map_or("change", |c| verbs(c.action).2);
        ctx.shell.error(&ActionFailed {
            verb,
            address: address.clone(),
            source: error.clone(),
        });
    }
    // Interrupted: what failed meanwhile (often because the interrupt cut its waits short) is
    // listed above; the exit code still says Ctrl-C ended the run.
    if hook.interrupted() {
        let failed = match result.failed.len() {
            0 => String::new(),
            n => format!("{n} failed, "),
        };
        println!(
            "\n{what} interrupted: {}; {failed}{} not started. Run it again to finish.",
            done.counts(),
            result.skipped.len()
        );
        // 128 + SIGINT, as a shell reports a command Ctrl-C ended.
        return Ok(ExitCode::from(130));
    }
    println!(
        "\n{what} failed: {}; {} failed, {} not started.",
        done.counts(),
        result.failed.len(),
        result.skipped.len()
    );
    Ok(ExitCode::FAILURE)
}

/// What a plan with no changes saw: the prior state of every resource.
fn prior_state(plan: &Plan) -> Vec<infra_core::Observed> {
    plan.changes
        .iter()
        .filter_map(|c| c.prior.clone())
        .collect()
}

fn print_outputs(stack: &Stack, state: &[infra_core::Observed]) {
    if stack.outputs.is_empty() {
        return;
    }
    let outputs = engine::outputs(stack, state);
    print!("\nOutputs:\n\n{}", render::outputs(&outputs));
}
