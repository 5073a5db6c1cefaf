//! The plan as data: what apply will do, per resource, and in which order. Built by
//! [`super::plan`], carried out by [`super::apply`], shown by [`render_plan`].

use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::EngineError;
use crate::model::Declared;
use crate::provider::{DeleteOptions, Observed};
use crate::refs::Address;
use crate::secret::Sensitive;

/// Version of the JSON that [`Plan::to_json`] writes and [`Plan::from_json`] reads.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// What happens to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Replace,
    Delete,
}

impl Action {
    pub fn is_replace(&self) -> bool {
        matches!(self, Action::Replace)
    }

    /// The symbol Terraform users know: `+`, `~`, `-/+`, `-` (empty for a no-op).
    pub fn symbol(&self) -> &'static str {
        match self {
            Action::NoOp => "",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }

    /// Whether this action creates or changes a resource (it has a create/update step).
    pub(crate) fn has_create_step(&self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Replace)
    }

    /// Whether this action deletes the existing resource (it has a delete step).
    pub(crate) fn has_delete_step(&self) -> bool {
        matches!(self, Action::Replace | Action::Delete)
    }
}

/// How a replacement is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplaceMode {
    /// Create the new resource, repoint what depends on it, then delete the old one.
    CreateBeforeDestroy,
    /// The old and the new cannot coexist (same name, same CIDR): delete first, then create.
    DeleteBeforeCreate,
}

/// One changed top-level field of a resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    pub forces_replacement: bool,
    /// Shown as `(sensitive)`; `before`/`after` never hold the secret itself.
    pub sensitive: bool,
}

/// The planned action for one resource address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    pub action: Action,
    /// Only the changed fields; empty for no-op, create and delete.
    pub fields: Vec<FieldChange>,
    /// The declared resource, secrets redacted. `None` for a delete.
    pub desired: Option<Declared>,
    /// What exists now. `None` for a create.
    pub prior: Option<Observed>,
    /// `Some` only for a replace.
    pub replace_mode: Option<ReplaceMode>,
    /// For display only.
    pub reason: Option<String>,
    /// How the existing resource is deleted; `Some` for a delete and a replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_options: Option<DeleteOptions>,
}

/// Whether a plan reconciles the stack or tears it down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanMode {
    #[default]
    Normal,
    Destroy,
}

/// A change the engine will not make without an explicit flag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub address: Address,
    pub message: String,
    /// The command-line flag that allows it, e.g. `--allow-data-loss`.
    pub flag: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (pass {} to allow it)",
            self.address, self.message, self.flag
        )
    }
}

/// Everything apply will do, as data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub stack: String,
    pub region: String,
    pub mode: PlanMode,
    /// Dependency order, then address.
    pub changes: Vec<Change>,
    /// `(from, to)`: change `to` starts only after change `from` finished. A create-before-destroy
    /// replacement counts as finished once its new resource exists; its old resource is deleted
    /// only after every change with an edge from it is done.
    pub edges: Vec<(usize, usize)>,
    /// Non-empty: apply refuses the whole plan.
    pub refusals: Vec<Refusal>,
    /// sha256 over the stack's JSON (secrets redacted) and the observed state.
    pub fingerprint: String,
}

/// Counts for the summary line. A replace counts as one add and one destroy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Plan: {} to add, {} to change, {} to destroy.",
            self.add, self.change, self.destroy
        )
    }
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::NoOp => {}
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
                Action::Delete => s.destroy += 1,
            }
        }
        s
    }

    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }

    /// The change for `address`, if the plan has one.
    pub fn change(&self, address: &Address) -> Option<&Change> {
        self.changes.iter().find(|c| &c.address == address)
    }

    /// Addresses whose planned change differs in `fresh`, a plan of the same stack made later.
    /// Changes are matched by address and the id of what they act on: an interrupted
    /// replacement leaves two changes under one address (keep one, delete the other).
    pub fn differences(&self, fresh: &Plan) -> Vec<String> {
        fn by_key(plan: &Plan) -> HashMap<(&Address, Option<&str>), &Change> {
            plan.changes
                .iter()
                .map(|c| {
                    (
                        (&c.address, c.prior.as_ref().map(|p| p.physical_id.as_str())),
                        c,
                    )
                })
                .collect()
        }
        let (old, new) = (by_key(self), by_key(fresh));
        let mut out: Vec<String> = Vec::new();
        for (key, change) in &new {
            let same = old.get(key).is_some_and(|o| {
                o.action == change.action
                    && o.fields == change.fields
                    && o.desired == change.desired
            });
            if !same {
                out.push(change.address.to_string());
            }
        }
        out.extend(
            old.iter()
                .filter(|(key, _)| !new.contains_key(*key))
                .map(|(_, c)| c.address.to_string()),
        );
        out.sort();
        out.dedup();
        out
    }

    /// Pretty JSON with `format_version`; secrets are already redacted in a plan.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan always serializes")
    }

    pub fn from_json(s: &str) -> Result<Plan, EngineError> {
        #[derive(Deserialize)]
        struct Header {
            format_version: u32,
        }
        let header: Header = serde_json::from_str(s)?;
        if header.format_version != PLAN_FORMAT_VERSION {
            return Err(EngineError::PlanVersion {
                found: header.format_version,
                expected: PLAN_FORMAT_VERSION,
            });
        }
        Ok(serde_json::from_str(s)?)
    }
}

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";

fn action_color(action: Action) -> &'static str {
    match action {
        Action::NoOp => "",
        Action::Create => "\x1b[32m",
        Action::Update => "\x1b[33m",
        Action::Replace => "\x1b[35m",
        Action::Delete => "\x1b[31m",
    }
}

/// The lines showing one changed field: a list as the elements added and removed, an object as
/// its changed keys, anything else as `before -> after`.
fn field_lines(field: &FieldChange) -> Vec<(&'static str, String, String)> {
    use serde_json::Value;
    let whole = |name: String, before: &Value, after: &Value| {
        let sym = if before.is_null() {
            "+"
        } else if after.is_null() {
            "-"
        } else {
            "~"
        };
        let text = format!(
            "{} -> {}",
            show_value(before, field.sensitive),
            show_value(after, field.sensitive)
        );
        (sym, name, text)
    };
    if field.sensitive {
        return vec![whole(field.field.clone(), &field.before, &field.after)];
    }
    match (&field.before, &field.after) {
        (Value::Array(before), Value::Array(after)) if before != after => {
            let removed = before.iter().filter(|v| !after.contains(v));
            let added = after.iter().filter(|v| !before.contains(v));
            let lines: Vec<_> = removed
                .map(|v| ("-", field.field.clone(), v.to_string()))
                .chain(added.map(|v| ("+", field.field.clone(), v.to_string())))
                .collect();
            if lines.is_empty() {
                vec![whole(field.field.clone(), &field.before, &field.after)]
            } else {
                lines
            }
        }
        (Value::Object(before), Value::Object(after)) if before != after => {
            let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .filter(|k| before.get(*k) != after.get(*k))
                .map(|k| {
                    let null = Value::Null;
                    whole(
                        format!("{}.{k}", field.field),
                        before.get(k).unwrap_or(&null),
                        after.get(k).unwrap_or(&null),
                    )
                })
                .collect()
        }
        _ => vec![whole(field.field.clone(), &field.before, &field.after)],
    }
}

fn show_value(value: &serde_json::Value, sensitive: bool) -> String {
    if sensitive {
        return Sensitive::REDACTED.to_string();
    }
    match value {
        serde_json::Value::Null => "(none)".to_string(),
        v => v.to_string(),
    }
}

/// The plan for people, Terraform-style: `+` create, `~` update with only the changed fields,
/// `-/+` replace with the field that forces it, `-` delete; ends with the summary line.
pub fn render_plan(plan: &Plan, color: bool) -> String {
    let paint = |code: &str, text: &str| {
        if color && !code.is_empty() {
            format!("{code}{text}{RESET}")
        } else {
            text.to_string()
        }
    };
    let mut out = String::new();
    let changed: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .collect();
    if changed.is_empty() {
        let _ = writeln!(
            out,
            "No changes. Stack `{}` in {} matches what exists.",
            plan.stack, plan.region
        );
    } else {
        let what = match plan.mode {
            PlanMode::Normal => "apply",
            PlanMode::Destroy => "destroy",
        };
        let _ = writeln!(
            out,
            "Stack `{}` in {}: {what} will perform these actions:\n",
            plan.stack, plan.region
        );
    }
    for change in changed {
        let code = action_color(change.action);
        let symbol = change.action.symbol();
        let mut head = format!("{symbol:>5} {}", change.address);
        if color {
            head = format!(
                "{} {BOLD}{}{RESET}",
                paint(code, &format!("{symbol:>5}")),
                change.address
            );
        }
        let note = match (change.action, change.replace_mode) {
            (Action::Replace, Some(ReplaceMode::CreateBeforeDestroy)) => {
                Some("create the new one, then delete the old one".to_string())
            }
            (Action::Replace, Some(ReplaceMode::DeleteBeforeCreate)) => {
                Some("delete the old one first: both cannot exist at once".to_string())
            }
            _ => None,
        };
        out.push_str(&head);
        if let Some(note) = note {
            let _ = write!(out, " ({note})");
        }
        out.push('\n');
        if let Some(reason) = &change.reason {
            let _ = writeln!(out, "        # {reason}");
        }
        for field in &change.fields {
            let forces = if field.forces_replacement {
                paint(action_color(Action::Delete), " # forces replacement")
            } else {
                String::new()
            };
            for (sym, name, value) in field_lines(field) {
                let code = match sym {
                    "+" => action_color(Action::Create),
                    "-" => action_color(Action::Delete),
                    _ => action_color(Action::Update),
                };
                let _ = writeln!(out, "        {} {name}: {value}{forces}", paint(code, sym));
            }
        }
    }
    if !plan.refusals.is_empty() {
        out.push('\n');
        for refusal in &plan.refusals {
            let _ = writeln!(out, "{}: {refusal}", paint("\x1b[31m", "refused"));
        }
    }
    out.push('\n');
    out.push_str(&plan.summary().to_string());
    out.push('\n');
    out
}
