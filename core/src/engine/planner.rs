//! discover -> diff -> plan.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::diff::{self, field_value, redact, reference_fields, replace_mode};
use super::graph::{topo_indices, Graph};
use super::plan::{
    Action, Change, FieldChange, Plan, PlanMode, Refusal, ReplaceMode, PLAN_FORMAT_VERSION,
};
use super::steps::Steps;
use super::{EngineError, PlanOptions, ALLOW_DATA_LOSS_FLAG};
use crate::model::{Certificate, Declared, FinalSnapshot, Resource};
use crate::provider::{DeleteOptions, Observed, Provider};
use crate::refs::{Address, Kind};
use crate::stack::{attributes, Output, Stack};

/// Validate the stack, discover what it owns, and plan the changes that reconcile the two (or,
/// in [`PlanMode::Destroy`], delete everything it owns).
pub async fn plan(
    stack: &Stack,
    provider: &dyn Provider,
    options: &PlanOptions,
) -> Result<Plan, EngineError> {
    let report = crate::validate::check(stack);
    if report.has_errors() {
        return Err(EngineError::Invalid(report));
    }
    let stack = &stack.derived();
    let order = Graph::from_stack(stack).topo_order()?;
    let observed = provider
        .discover(stack)
        .await
        .map_err(EngineError::Provider)?;
    build_plan(stack, &order, observed, options)
}

/// The plan from a stack (its resources in dependency order) and what exists.
pub(crate) fn build_plan(
    stack: &Stack,
    order: &[Address],
    observed: Vec<Observed>,
    options: &PlanOptions,
) -> Result<Plan, EngineError> {
    let fingerprint = fingerprint(stack, &observed);
    let declared_by: HashMap<Address, &Declared> =
        stack.resources.iter().map(|d| (d.address(), d)).collect();
    let mut existing: BTreeMap<Address, Vec<Observed>> = BTreeMap::new();
    for o in observed {
        existing.entry(o.address.clone()).or_default().push(o);
    }
    // Two resources under one address are what an interrupted replacement leaves behind: keep
    // the one that matches the declaration (else the first by id, so that planning twice keeps
    // the same one), delete the others, and point the dependents at the one kept.
    let mut leftovers: Vec<Observed> = Vec::new();
    if options.mode == PlanMode::Normal {
        for (address, found) in existing.iter_mut().filter(|(_, f)| f.len() > 1) {
            found.sort_by(|a, b| a.physical_id.cmp(&b.physical_id));
            let keep = declared_by
                .get(address)
                .and_then(|d| {
                    let desired = redact(d);
                    found
                        .iter()
                        .position(|o| diff::diff(&desired.resource, &o.resource).is_empty())
                })
                .unwrap_or(0);
            let kept = found.swap_remove(keep);
            leftovers.append(found);
            found.push(kept);
        }
    }
    let duplicated: HashSet<Address> = leftovers.iter().map(|o| o.address.clone()).collect();
    let mut changes: Vec<Change> = Vec::with_capacity(order.len() + existing.len());
    let mut index: HashMap<Address, usize> = HashMap::with_capacity(order.len());

    if options.mode == PlanMode::Normal {
        for address in order {
            let Some(declared) = declared_by.get(address) else {
                continue;
            };
            let prior = existing.remove(address).and_then(|mut v| v.pop());
            let change = plan_declared(declared, prior, &changes, &index, &duplicated);
            index.insert(address.clone(), changes.len());
            changes.push(change);
        }
    }
    let undeclared = existing.into_values().flatten().map(|prior| {
        let reason = match options.mode {
            PlanMode::Normal => Some("no longer declared in the stack".to_string()),
            PlanMode::Destroy => None,
        };
        (prior, reason)
    });
    let leftovers = leftovers.into_iter().map(|prior| {
        let reason = format!(
            "`{}` is left over from an interrupted replacement",
            prior.physical_id
        );
        (prior, Some(reason))
    });
    for (prior, reason) in undeclared.chain(leftovers) {
        // A certificate managed elsewhere is never deleted.
        if matches!(
            prior.resource,
            Resource::Certificate(Certificate::Existing { .. })
        ) {
            continue;
        }
        changes.push(Change {
            address: prior.address.clone(),
            action: Action::Delete,
            fields: Vec::new(),
            desired: None,
            prior: Some(prior),
            replace_mode: None,
            reason,
            delete_options: None,
        });
    }

    let mut refusals = Vec::new();
    for change in &mut changes {
        if change.action.has_delete_step() {
            let declared = declared_by.get(&change.address).copied();
            let (options, refusal) = data_safety(change, declared, options.allow_data_loss);
            change.delete_options = Some(options);
            refusals.extend(refusal);
        }
    }

    let (changes, edges) = order_changes(changes)?;
    Ok(Plan {
        format_version: PLAN_FORMAT_VERSION,
        stack: stack.name.clone(),
        region: stack.region.clone(),
        mode: options.mode,
        changes,
        edges,
        refusals,
        fingerprint,
    })
}

/// The change for one declared resource, given the changes already planned for what it refers
/// to (the stack's dependency order guarantees they are).
fn plan_declared(
    declared: &Declared,
    prior: Option<Observed>,
    planned: &[Change],
    index: &HashMap<Address, usize>,
    duplicated: &HashSet<Address>,
) -> Change {
    let desired = redact(declared);
    let filled = desired
        .resource
        .filled(|value| known_value(value, planned, index));
    let Some(mut prior) = prior else {
        return Change {
            address: declared.address(),
            action: Action::Create,
            fields: diff::settings(&filled),
            desired: Some(desired),
            prior: None,
            replace_mode: None,
            reason: None,
            delete_options: None,
        };
    };
    diff::redact_resource(&mut prior.resource);
    let mut fields = diff::diff(&filled, &prior.resource);
    let mut reason = fields
        .iter()
        .find(|f| f.forces_replacement)
        .map(|f| format!("`{}` forces replacement", f.field));
    let mut action = if reason.is_some() {
        Action::Replace
    } else if fields.is_empty() {
        Action::NoOp
    } else {
        Action::Update
    };
    let mut mode = replace_mode(declared);

    // A dependency created anew or replaced gets a new physical id: whatever refers to it must be
    // pointed at the new one, by an update or, where that field cannot change, a replacement.
    for (field, dep) in reference_fields(&desired.resource) {
        let Some(dep_change) = index.get(&dep).map(|&i| &planned[i]) else {
            continue;
        };
        let forces = diff::replacement_fields(desired.resource.kind()).contains(&field);
        let new_id = matches!(dep_change.action, Action::Create | Action::Replace);
        if new_id {
            if dep_change.replace_mode == Some(ReplaceMode::DeleteBeforeCreate) {
                mode = ReplaceMode::DeleteBeforeCreate;
            }
            if forces && action != Action::Replace {
                action = Action::Replace;
                reason = Some(format!(
                    "{dep} is replaced and `{field}` cannot change in place"
                ));
            } else if action == Action::NoOp {
                action = Action::Update;
                reason = Some(format!("{dep} gets a new id: `{field}` must point at it"));
            }
        } else if duplicated.contains(&dep) && !forces {
            if action == Action::NoOp {
                action = Action::Update;
                reason = Some(format!(
                    "{dep} exists twice: `{field}` must point at the one kept"
                ));
            }
        } else if let Some(rollout) = rollout(&prior, field, &dep, dep_change) {
            if action == Action::NoOp {
                action = Action::Update;
            }
            if reason.is_none() {
                reason = Some(rollout.reason);
            }
            if !fields.iter().any(|f| f.field == field) {
                fields.push(FieldChange {
                    field: field.to_string(),
                    before: Value::String(rollout.before),
                    after: Value::String(rollout.after),
                    forces_replacement: false,
                    sensitive: false,
                });
            }
            continue;
        } else {
            continue;
        }
        if !fields.iter().any(|f| f.field == field) {
            fields.push(FieldChange {
                field: field.to_string(),
                before: field_value(&prior.resource, field),
                after: field_value(&desired.resource, field),
                forces_replacement: forces,
                sensitive: false,
            });
        }
    }
    fields.sort_by(|a, b| a.field.cmp(&b.field));
    Change {
        address: declared.address(),
        action,
        fields: if action == Action::NoOp {
            Vec::new()
        } else {
            fields
        },
        desired: Some(desired),
        prior: Some(prior),
        replace_mode: (action == Action::Replace).then_some(mode),
        reason,
        delete_options: None,
    }
}

/// What the plan knows of another resource's attribute: what its declaration fixes (a bucket's
/// name), its value when the resource exists and keeps its id, else a marker naming it.
fn known_value(value: &Output, planned: &[Change], index: &HashMap<Address, usize>) -> String {
    let change = index.get(value.resource()).map(|&i| &planned[i]);
    let declared = change
        .and_then(|c| c.desired.as_ref())
        .and_then(|d| attributes::declared(&d.resource, value.attribute()));
    let existing = || {
        change
            .filter(|c| !matches!(c.action, Action::Create | Action::Replace))
            .and_then(|c| c.prior.as_ref())
            .and_then(|prior| prior.attributes.get(value.attribute()))
            .cloned()
    };
    declared
        .or_else(existing)
        .unwrap_or_else(|| format!("(known after apply: {})", value.reference()))
}

/// An Auto Scaling Group rolling its instances onto a new version of its launch template: why,
/// and the versions shown as the `launch_template` field's change.
struct Rollout {
    reason: String,
    before: String,
    after: String,
}

/// Whether a group must roll out: its template gets a new version in this plan, or the group is
/// not pinned to the template's current version (an apply stopped between the two steps).
fn rollout(
    group: &Observed,
    field: &str,
    template: &Address,
    template_change: &Change,
) -> Option<Rollout> {
    if group.address.kind != Kind::AutoScalingGroup || field != "launch_template" {
        return None;
    }
    let pinned = group.attributes.get(attributes::LAUNCH_TEMPLATE_VERSION);
    let latest = template_change
        .prior
        .as_ref()
        .and_then(|t| t.attributes.get(attributes::LATEST_VERSION));
    let version = |v: Option<&String>| match v {
        Some(v) => format!("{} version {v}", template.id),
        None => template.id.clone(),
    };
    if template_change.action == Action::Update {
        return Some(Rollout {
            reason: format!("{template} gets a new version: instance refresh"),
            before: version(pinned),
            after: format!("{} new version", template.id),
        });
    }
    let (pinned, latest) = (pinned?, latest?);
    (pinned != latest).then(|| Rollout {
        reason: format!(
            "runs version {pinned} of {template}, whose current version is {latest}: instance refresh"
        ),
        before: version(Some(pinned)),
        after: version(Some(latest)),
    })
}

/// How the existing resource is deleted, and whether that is refused without
/// `--allow-data-loss`.
fn data_safety(
    change: &Change,
    declared: Option<&Declared>,
    allow: bool,
) -> (DeleteOptions, Option<Refusal>) {
    let prior = change
        .prior
        .as_ref()
        .expect("a delete or replace has a prior");
    let verb = if change.action == Action::Replace {
        "replacing"
    } else {
        "deleting"
    };
    let resource = declared.map(|d| &d.resource).unwrap_or(&prior.resource);
    let mut options = DeleteOptions::default();
    let mut refusal = None;
    match (resource, &prior.resource) {
        (Resource::DbInstance(db), Resource::DbInstance(old)) => {
            options.final_snapshot = db.final_snapshot;
            options.disable_deletion_protection = allow && old.deletion_protection;
            let snapshot = match db.final_snapshot {
                FinalSnapshot::Take => "a final snapshot is taken first",
                FinalSnapshot::Skip => "no final snapshot is taken",
            };
            let protection = if old.deletion_protection {
                " and turns its deletion protection off"
            } else {
                ""
            };
            refusal = (!allow)
                .then(|| format!("{verb} the database loses its data{protection} ({snapshot})"));
        }
        (Resource::Bucket(bucket), _) => {
            options.empty_bucket = prior.holds_data && (bucket.force_destroy || allow);
            refusal = (prior.holds_data && !bucket.force_destroy && !allow).then(|| {
                format!("{verb} the bucket deletes the objects in it (force_destroy is not set)")
            });
        }
        _ => {}
    }
    let refusal = refusal.map(|message| Refusal {
        address: change.address.clone(),
        message,
        flag: ALLOW_DATA_LOSS_FLAG.into(),
    });
    (options, refusal)
}

/// Changes in their final order, with the plan's edges between them.
type Ordered = (Vec<Change>, Vec<(usize, usize)>);

/// Sort changes in dependency order (then by address) and compute the plan's edges.
fn order_changes(changes: Vec<Change>) -> Result<Ordered, EngineError> {
    let steps = Steps::build(&changes);
    if let Err(stuck) = steps.order() {
        return Err(EngineError::StepCycle(
            stuck
                .into_iter()
                .map(|i| changes[i].address.clone())
                .collect(),
        ));
    }
    let edges = steps.change_edges(&changes);
    let order = topo_indices(changes.len(), &edges, |a, b| {
        changes[a].address.cmp(&changes[b].address)
    })
    .map_err(|stuck| {
        EngineError::StepCycle(
            stuck
                .into_iter()
                .map(|i| changes[i].address.clone())
                .collect(),
        )
    })?;
    let mut position = vec![0; changes.len()];
    for (new, &old) in order.iter().enumerate() {
        position[old] = new;
    }
    let mut slots: Vec<Option<Change>> = changes.into_iter().map(Some).collect();
    let sorted: Vec<Change> = order.iter().filter_map(|&old| slots[old].take()).collect();
    let mut edges: Vec<(usize, usize)> = edges
        .into_iter()
        .map(|(a, b)| (position[a], position[b]))
        .collect();
    edges.sort_unstable();
    Ok((sorted, edges))
}

/// sha256 over the stack's JSON (secrets redacted) and the observed state, sorted by address.
fn fingerprint(stack: &Stack, observed: &[Observed]) -> String {
    let mut redacted = stack.clone();
    for declared in &mut redacted.resources {
        diff::redact_resource(&mut declared.resource);
    }
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(&redacted).expect("a stack always serializes"));
    let mut sorted: Vec<&Observed> = observed.iter().collect();
    sorted.sort_by(|a, b| a.address.cmp(&b.address));
    for o in sorted {
        let mut o = o.clone();
        diff::redact_resource(&mut o.resource);
        hasher.update(serde_json::to_vec(&o).expect("observed state always serializes"));
    }
    hex::encode(hasher.finalize())
}
