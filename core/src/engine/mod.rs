//! The reconciliation engine: dependency graph, diff, plan, apply and destroy.
//!
//! ```no_run
//! # async fn demo(stack: infra_core::Stack, provider: &dyn infra_core::Provider) -> Result<(), infra_core::engine::EngineError> {
//! use infra_core::engine::{self, ApplyOptions, NoHook, PlanOptions};
//!
//! let plan = engine::plan(&stack, provider, &PlanOptions::default()).await?;
//! print!("{}", engine::render_plan(&plan, false));
//! let result = engine::apply(&plan, &stack, provider, &ApplyOptions::default(), &NoHook).await?;
//! assert!(result.is_success());
//! # Ok(()) }
//! ```

mod apply;
pub mod diff;
mod graph;
mod plan;
mod planner;
mod steps;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use apply::apply;
pub use graph::{CycleError, Graph};
pub use plan::{
    render_plan, Action, Change, FieldChange, Plan, PlanMode, Refusal, ReplaceMode, Summary,
    PLAN_FORMAT_VERSION,
};
pub use planner::plan;

use crate::provider::{Observed, Provider, ProviderError};
use crate::refs::Address;
use crate::stack::Stack;
use crate::validate::Report;

/// The flag that allows losing data.
pub const ALLOW_DATA_LOSS_FLAG: &str = "--allow-data-loss";

/// What to plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOptions {
    pub mode: PlanMode,
    /// Allow replacing or deleting databases and non-empty buckets.
    pub allow_data_loss: bool,
}

/// How to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyOptions {
    /// Most actions in flight at once (at least 1).
    pub concurrency: usize,
    /// Return as soon as long operations (instance refreshes) have started.
    pub no_wait: bool,
}

/// Default of [`ApplyOptions::concurrency`]. The provider paces calls to each service's rate
/// limit, so this only bounds what is in flight: at 10, actions waiting for EC2 tokens held every
/// slot while load-balancer and Auto Scaling work could have run (see docs/performance.md).
pub const DEFAULT_CONCURRENCY: u16 = 32;

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            concurrency: usize::from(DEFAULT_CONCURRENCY),
            no_wait: false,
        }
    }
}

/// Progress of an apply, for the CLI or an embedder. The engine never prints.
pub trait Hook: Send + Sync {
    /// An action starts.
    fn before(&self, change: &Change) {
        let _ = change;
    }
    /// An action ended (or was skipped: then `elapsed` is zero and `before` was not called).
    fn after(&self, change: &Change, outcome: &Outcome, elapsed: Duration) {
        let _ = (change, outcome, elapsed);
    }
    /// Still waiting on `address`; `status` is what the cloud reports.
    fn waiting(&self, address: &Address, status: &str, elapsed: Duration) {
        let _ = (address, status, elapsed);
    }
    /// Something about `address` the user has to act on (a headline, then detail lines), such
    /// as the DNS records a certificate waits for. Each distinct notice comes once per apply.
    fn notice(&self, address: &Address, text: &str) {
        let _ = (address, text);
    }
    /// Asked before each action starts. `true` stops the apply as a failure does: the actions
    /// in progress finish, nothing new starts, the rest is skipped (an interrupt, say).
    fn should_stop(&self) -> bool {
        false
    }
}

/// A hook that ignores everything.
pub struct NoHook;

impl Hook for NoHook {}

/// How one action ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "error", rename_all = "snake_case")]
pub enum Outcome {
    Done,
    Failed(ProviderError),
    /// Not started: a dependency failed, or apply stopped after a failure or when asked to.
    Skipped,
}

/// What an apply achieved, also when it failed half way.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ApplyResult {
    pub completed: Vec<Address>,
    pub failed: Vec<(Address, ProviderError)>,
    pub skipped: Vec<Address>,
    /// What exists after the run, by address.
    pub state: Vec<Observed>,
}

impl ApplyResult {
    pub fn is_success(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }
}

/// Errors of plan and apply. Failures of single actions during an apply are not errors: they are
/// in [`ApplyResult::failed`].
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the stack is not valid: {} error(s)", .0.errors().count())]
    Invalid(Report),
    #[error("discovering what the stack owns failed")]
    Provider(#[source] ProviderError),
    #[error("{}", refused_summary(.0))]
    Refused(Vec<Refusal>),
    #[error("the plan is for stack `{plan}`, not `{stack}`")]
    StackMismatch { plan: String, stack: String },
    #[error("the plan does not match the stack any more at {address}; plan again")]
    StalePlan { address: Address },
    #[error("the plan has format version {found}; this infra reads version {expected}")]
    PlanVersion { found: u32, expected: u32 },
    #[error("plan JSON is not valid")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Cycle(#[from] CycleError),
    #[error("the planned actions cannot be ordered: {} wait on each other", display_addresses(.0))]
    StepCycle(Vec<Address>),
}

/// `2 changes would lose data (a, b); nothing was changed: pass `--allow-data-loss` to allow
/// them`: each flag named once.
fn refused_summary(refusals: &[Refusal]) -> String {
    let addresses: Vec<String> = refusals.iter().map(|r| r.address.to_string()).collect();
    let mut flags: Vec<&str> = refusals.iter().map(|r| r.flag.as_str()).collect();
    flags.sort_unstable();
    flags.dedup();
    let (count, them) = match refusals.len() {
        1 => ("1 change would".to_string(), "it"),
        n => (format!("{n} changes would"), "them"),
    };
    format!(
        "{count} lose data ({}); nothing was changed: pass `{}` to allow {them}",
        addresses.join(", "),
        flags.join("` and `")
    )
}

fn display_addresses(addresses: &[Address]) -> String {
    addresses
        .iter()
        .map(Address::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The stack's outputs from a known state: `None` where the resource or attribute is not there
/// (yet).
pub fn outputs(stack: &Stack, state: &[Observed]) -> BTreeMap<String, Option<String>> {
    stack
        .outputs
        .iter()
        .map(|(name, output)| {
            let value = state
                .iter()
                .find(|o| &o.address == output.resource())
                .and_then(|o| o.attributes.get(output.attribute()))
                .cloned();
            (name.clone(), value)
        })
        .collect()
}

/// The stack's outputs from what exists now.
pub async fn read_outputs(
    stack: &Stack,
    provider: &dyn Provider,
) -> Result<BTreeMap<String, Option<String>>, EngineError> {
    let state = provider
        .discover(stack)
        .await
        .map_err(EngineError::Provider)?;
    Ok(outputs(stack, &state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refs::Kind;

    fn refusal(id: &str) -> Refusal {
        Refusal {
            address: Address::new(Kind::DbInstance, id),
            message: "replacing the database loses its data".into(),
            flag: ALLOW_DATA_LOSS_FLAG.into(),
        }
    }

    #[test]
    fn a_refusal_names_what_and_the_flag_once() {
        let one = EngineError::Refused(vec![refusal("db")]).to_string();
        assert_eq!(
            one,
            "1 change would lose data (rds_db_instance.db); nothing was changed: pass \
             `--allow-data-loss` to allow it"
        );
        let two = EngineError::Refused(vec![refusal("a"), refusal("b")]).to_string();
        assert_eq!(two.matches("--allow-data-loss").count(), 1, "{two}");
        assert!(two.starts_with("2 changes would lose data (rds_db_instance.a, rds_db_instance.b)"));
        assert!(!refusal("db").to_string().contains("--allow-data-loss"));
    }
}
