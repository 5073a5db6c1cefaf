//! The steps apply runs and the order between them, derived from a plan's changes.
//!
//! Every change is one or two steps: a create/update step (`Create`, `Update`, the new half of a
//! `Replace`) and a delete step (`Delete`, the old half of a `Replace`). Rules:
//! - a replace runs its halves in its [`ReplaceMode`]'s order;
//! - a create/update step waits for the create/update steps of what it refers to;
//! - a delete step waits until nothing refers to the old resource any more: the delete steps of
//!   the old resources that referred to it, or the updates that stopped referring to it;
//! - the old half of a create-before-destroy replacement also waits for the changes that point
//!   at the new one (a listener rule moved to the new target group);
//! - the old half of a delete-before-create replacement cannot wait for the updates that point
//!   at the new half: those run after it, and the cloud may refuse the delete while the old
//!   resource is in use (documented in docs/replacement.md).

use std::collections::HashMap;

use super::graph::topo_indices;
use super::plan::{Action, Change, ReplaceMode};
use crate::refs::Address;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum StepKind {
    /// Create, update, or create the replacement.
    Put,
    /// Delete the existing resource.
    Delete,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    pub change: usize,
    pub kind: StepKind,
}

pub(crate) struct Steps {
    pub steps: Vec<Step>,
    /// `(before, after)` step indices, sorted and without duplicates.
    pub edges: Vec<(usize, usize)>,
}

impl Steps {
    pub fn build(changes: &[Change]) -> Steps {
        let mut steps = Vec::new();
        let mut put: Vec<Option<usize>> = vec![None; changes.len()];
        let mut del: Vec<Option<usize>> = vec![None; changes.len()];
        for (i, c) in changes.iter().enumerate() {
            if c.action.has_create_step() {
                put[i] = Some(steps.len());
                steps.push(Step {
                    change: i,
                    kind: StepKind::Put,
                });
            }
            if c.action.has_delete_step() {
                del[i] = Some(steps.len());
                steps.push(Step {
                    change: i,
                    kind: StepKind::Delete,
                });
            }
        }
        // An address has two changes when an interrupted replacement left a second resource.
        let mut index: HashMap<&Address, Vec<usize>> = HashMap::new();
        for (i, c) in changes.iter().enumerate() {
            index.entry(&c.address).or_default().push(i);
        }
        let none = Vec::new();
        let mut edges = Vec::new();
        for (j, c) in changes.iter().enumerate() {
            if let (Some(p), Some(d)) = (put[j], del[j]) {
                match c.replace_mode {
                    Some(ReplaceMode::DeleteBeforeCreate) => edges.push((d, p)),
                    _ => edges.push((p, d)),
                }
            }
            if let (Some(pj), Some(desired)) = (put[j], &c.desired) {
                let deps = desired.resource.references();
                for &i in deps.iter().flat_map(|dep| index.get(dep).unwrap_or(&none)) {
                    if i == j {
                        continue;
                    }
                    if let Some(pi) = put[i] {
                        edges.push((pi, pj));
                    }
                    let repoint = changes[i].action == Action::Replace
                        && changes[i].replace_mode == Some(ReplaceMode::CreateBeforeDestroy)
                        && del[j].is_none();
                    if let (true, Some(di)) = (repoint, del[i]) {
                        edges.push((pj, di));
                    }
                }
            }
            if let Some(prior) = &c.prior {
                let still_refers = |dep: &Address| {
                    c.desired
                        .as_ref()
                        .is_some_and(|d| d.resource.references().contains(dep))
                };
                for dep in prior.resource.references() {
                    for &i in index.get(&dep).unwrap_or(&none) {
                        let Some(di) = del[i] else { continue };
                        if i == j {
                            continue;
                        }
                        // An update can only let go of a delete-before-create replacement after its
                        // new half exists, which comes after the delete: nothing to wait for then.
                        let dbc = changes[i].replace_mode == Some(ReplaceMode::DeleteBeforeCreate);
                        let release = match del[j] {
                            Some(dj) => Some(dj),
                            None if dbc && still_refers(&dep) => None,
                            None => put[j],
                        };
                        if let Some(r) = release {
                            edges.push((r, di));
                        }
                    }
                }
            }
        }
        edges.sort_unstable();
        edges.dedup();
        Steps { steps, edges }
    }

    /// A topological order of the steps, or the changes stuck on a cycle.
    pub fn order(&self) -> Result<Vec<usize>, Vec<usize>> {
        topo_indices(self.steps.len(), &self.edges, |a, b| a.cmp(&b)).map_err(|stuck| {
            let mut changes: Vec<usize> = stuck.iter().map(|&s| self.steps[s].change).collect();
            changes.sort_unstable();
            changes.dedup();
            changes
        })
    }

    /// Change-level edges for the plan: every step edge between two changes, except the ones
    /// holding back the old half of a replacement (the plan's edge semantics cover those).
    pub fn change_edges(&self, changes: &[Change]) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = self
            .edges
            .iter()
            .filter_map(|&(a, b)| {
                let (sa, sb) = (self.steps[a], self.steps[b]);
                let old_half =
                    sb.kind == StepKind::Delete && changes[sb.change].action == Action::Replace;
                (sa.change != sb.change && !old_half).then_some((sa.change, sb.change))
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}
