//! Carry out a plan: walk its steps concurrently, each starting the moment what it waits on is
//! done; after a failure start nothing new, let what runs finish, and report.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};

use super::diff::redact;
use super::plan::{Action, Change, Plan};
use super::steps::{StepKind, Steps};
use super::{ApplyOptions, ApplyResult, EngineError, Hook, Outcome};
use crate::model::Declared;
use crate::provider::{Context, Observed, Progress, Provider, ProviderError, Resolved};
use crate::refs::Address;
use crate::stack::Stack;

/// Forwards a provider's progress to the hook, each distinct notice once.
struct HookProgress<'a> {
    hook: &'a dyn Hook,
    noticed: Mutex<HashSet<(Address, String)>>,
}

impl<'a> HookProgress<'a> {
    fn new(hook: &'a dyn Hook) -> Self {
        HookProgress {
            hook,
            noticed: Mutex::default(),
        }
    }
}

impl Progress for HookProgress<'_> {
    fn waiting(&self, address: &Address, status: &str, elapsed: Duration) {
        self.hook.waiting(address, status, elapsed);
    }

    fn notice(&self, address: &Address, text: &str) {
        let first = self
            .noticed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((address.clone(), text.to_string()));
        if first {
            self.hook.notice(address, text);
        }
    }
}

type StepFuture<'a> = BoxFuture<'a, (usize, Result<Option<Observed>, ProviderError>)>;

/// Carry out `plan` against `provider`. `stack` must be the stack the plan was made from: secret
/// values, which the plan does not hold, come from it.
///
/// Errors only before anything starts (refusals, a plan for another stack or an older version of
/// this one); failures of single actions are in the result.
pub async fn apply(
    plan: &Plan,
    stack: &Stack,
    provider: &dyn Provider,
    options: &ApplyOptions,
    hook: &dyn Hook,
) -> Result<ApplyResult, EngineError> {
    if plan.stack != stack.name {
        return Err(EngineError::StackMismatch {
            plan: plan.stack.clone(),
            stack: stack.name.clone(),
        });
    }
    if !plan.refusals.is_empty() {
        return Err(EngineError::Refused(plan.refusals.clone()));
    }
    let stack = &stack.derived();
    let declared = declared_for(plan, stack)?;
    let steps = Steps::build(&plan.changes);
    steps.order().map_err(|stuck| {
        EngineError::StepCycle(
            stuck
                .into_iter()
                .map(|i| plan.changes[i].address.clone())
                .collect(),
        )
    })?;

    let n = steps.steps.len();
    let mut waiting_on = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(before, after) in &steps.edges {
        waiting_on[after] += 1;
        dependents[before].push(after);
    }
    let mut steps_left: Vec<usize> = vec![0; plan.changes.len()];
    for s in &steps.steps {
        steps_left[s.change] += 1;
    }

    // Leftovers of an interrupted replacement (deletes sharing an address with a kept resource)
    // go in first, so the kept one is what references resolve to.
    let mut resolved = Resolved::default();
    let (deletes, kept): (Vec<&Change>, Vec<&Change>) = plan
        .changes
        .iter()
        .filter(|c| c.prior.is_some())
        .partition(|c| c.action == Action::Delete);
    for change in deletes.into_iter().chain(kept) {
        resolved.insert(change.prior.clone().expect("filtered on prior"));
    }
    let mut resolved = Arc::new(resolved);
    let progress = HookProgress::new(hook);
    let concurrency = options.concurrency.max(1);

    let mut ready: BTreeSet<usize> = (0..n).filter(|&s| waiting_on[s] == 0).collect();
    let mut started: Vec<Option<Instant>> = vec![None; plan.changes.len()];
    let mut failed_changes: Vec<bool> = vec![false; plan.changes.len()];
    let mut result = ApplyResult::default();
    let mut running: FuturesUnordered<StepFuture<'_>> = FuturesUnordered::new();
    let mut stopped = false;

    loop {
        while !stopped && running.len() < concurrency && !ready.is_empty() {
            if hook.should_stop() {
                stopped = true;
                break;
            }
            let Some(s) = ready.pop_first() else { break };
            let step = steps.steps[s];
            let change = &plan.changes[step.change];
            if started[step.change].is_none() {
                started[step.change] = Some(Instant::now());
                hook.before(change);
            }
            let snapshot = Arc::clone(&resolved);
            let desired = declared[step.change];
            let progress = &progress;
            running.push(Box::pin(async move {
                let ctx = Context {
                    stack: &stack.name,
                    region: &stack.region,
                    resolved: &snapshot,
                    progress,
                    no_wait: options.no_wait,
                };
                (
                    s,
                    run_step(provider, &ctx, change, step.kind, desired).await,
                )
            }));
        }
        let Some((s, outcome)) = running.next().await else {
            break;
        };
        let step = steps.steps[s];
        let change = &plan.changes[step.change];
        let elapsed = started[step.change]
            .map(|t| t.elapsed())
            .unwrap_or_default();
        match outcome {
            Ok(observed) => {
                let state = Arc::make_mut(&mut resolved);
                match observed {
                    Some(new) => state.insert(new),
                    None => {
                        // Deleted: forget it, unless the address now resolves to something else
                        // (the new half of a replacement, the resource kept over a leftover).
                        let deleted = change.prior.as_ref().map(|p| p.physical_id.as_str());
                        let current = state.get(&change.address).map(|o| o.physical_id.as_str());
                        if current == deleted {
                            state.remove(&change.address);
                        }
                    }
                }
                steps_left[step.change] -= 1;
                if steps_left[step.change] == 0 {
                    hook.after(change, &Outcome::Done, elapsed);
                    result.completed.push(change.address.clone());
                }
                for &d in &dependents[s] {
                    waiting_on[d] -= 1;
                    if waiting_on[d] == 0 {
                        ready.insert(d);
                    }
                }
            }
            Err(error) => {
                stopped = true;
                failed_changes[step.change] = true;
                hook.after(change, &Outcome::Failed(error.clone()), elapsed);
                result.failed.push((change.address.clone(), error));
            }
        }
    }

    for (i, change) in plan.changes.iter().enumerate() {
        if steps_left[i] > 0 && !failed_changes[i] {
            hook.after(change, &Outcome::Skipped, Duration::ZERO);
            result.skipped.push(change.address.clone());
        }
    }
    let mut state: Vec<Observed> = resolved.iter().cloned().collect();
    state.sort_by(|a, b| a.address.cmp(&b.address));
    result.state = state;
    Ok(result)
}

/// The stack's declared resource (with its secrets) for every change that creates or updates,
/// checked against the plan's redacted copy.
fn declared_for<'s>(
    plan: &Plan,
    stack: &'s Stack,
) -> Result<Vec<Option<&'s Declared>>, EngineError> {
    plan.changes
        .iter()
        .map(
            |change| match (&change.desired, change.action.has_create_step()) {
                (Some(planned), true) => match stack.get(&change.address) {
                    Some(declared) if redact(declared) == *planned => Ok(Some(declared)),
                    _ => Err(EngineError::StalePlan {
                        address: change.address.clone(),
                    }),
                },
                _ => Ok(None),
            },
        )
        .collect()
}

/// The declared resource with its placeholders filled from what exists now: everything it refers
/// to is done before its step starts.
fn filled(declared: &Declared, resolved: &Resolved) -> Result<Declared, ProviderError> {
    let mut missing = None;
    let resource = declared.resource.filled(|value| {
        match resolved.attribute(value.resource(), value.attribute()) {
            Ok(v) => v.to_string(),
            Err(err) => {
                missing.get_or_insert(err);
                String::new()
            }
        }
    });
    match missing {
        Some(err) => Err(err),
        None => Ok(Declared {
            id: declared.id.clone(),
            resource,
        }),
    }
}

async fn run_step(
    provider: &dyn Provider,
    ctx: &Context<'_>,
    change: &Change,
    kind: StepKind,
    desired: Option<&Declared>,
) -> Result<Option<Observed>, ProviderError> {
    match kind {
        StepKind::Delete => {
            let prior = change.prior.as_ref().expect("a delete step has a prior");
            provider
                .delete(ctx, prior, change.delete_options.unwrap_or_default())
                .await?;
            Ok(None)
        }
        StepKind::Put => {
            let declared = desired.expect("a create or update step has a declared resource");
            let desired = &filled(declared, ctx.resolved)?;
            let observed = match (change.action, &change.prior) {
                (Action::Update, Some(prior)) => {
                    let changed: Vec<String> =
                        change.fields.iter().map(|f| f.field.clone()).collect();
                    provider.update(ctx, desired, prior, &changed).await?
                }
                _ => provider.create(ctx, desired).await?,
            };
            Ok(Some(provider.wait_ready(ctx, &observed).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refs::Kind;

    #[derive(Default)]
    struct Notices(Mutex<Vec<String>>);

    impl Hook for Notices {
        fn notice(&self, address: &Address, text: &str) {
            self.0.lock().unwrap().push(format!("{address}: {text}"));
        }
    }

    #[test]
    fn each_distinct_notice_reaches_the_hook_once() {
        let hook = Notices::default();
        let progress = HookProgress::new(&hook);
        let site = Address::new(Kind::Certificate, "site");
        let other = Address::new(Kind::Certificate, "other");
        for _ in 0..3 {
            progress.notice(&site, "records\na CNAME b");
        }
        progress.notice(&other, "records\na CNAME b");
        progress.notice(&site, "records\nc CNAME d");
        assert_eq!(
            *hook.0.lock().unwrap(),
            [
                "acm_certificate.site: records\na CNAME b",
                "acm_certificate.other: records\na CNAME b",
                "acm_certificate.site: records\nc CNAME d",
            ]
        );
    }
}
