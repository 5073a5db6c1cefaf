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
    /// The changed fields: for a create, every setting of the new resource; empty for no-op and
    /// delete.
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
        // The flag is named once, by the error that ends the command.
        write!(f, "{}: {}", self.address, self.message)
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

/// One line of a rendered field: its symbol (`+`, `-`, `~`; empty for the lines of a new
/// multi-line string) and its text. `nested` lines are a multi-line string's own lines, shown
/// 4 spaces deeper than the field's line.
struct FieldLine {
    sym: &'static str,
    text: String,
    nested: bool,
}

impl FieldLine {
    /// The field's own line: `~ name: value`.
    fn field(sym: &'static str, text: String) -> FieldLine {
        FieldLine {
            sym,
            text,
            nested: false,
        }
    }

    /// A line of a multi-line string, under its field's line.
    fn nested(sym: &'static str, text: &str) -> FieldLine {
        FieldLine {
            sym,
            text: text.to_string(),
            nested: true,
        }
    }
}

/// The lines showing one setting of a new resource: `+ name: value`, or a multi-line string
/// (user data) as `+ name:` with the text's lines under it, unescaped.
fn created_field_lines(field: &FieldChange) -> Vec<FieldLine> {
    match &field.after {
        serde_json::Value::String(text) if !field.sensitive && text.contains('\n') => {
            std::iter::once(FieldLine::field("+", format!("{}:", field.field)))
                .chain(text.lines().map(|line| FieldLine::nested("", line)))
                .collect()
        }
        after => vec![FieldLine::field(
            "+",
            format!("{}: {}", field.field, show_value(after, field.sensitive)),
        )],
    }
}

/// The lines showing one changed field: a list as the elements added and removed, an object as
/// its changed keys, a multi-line string as its changed lines, anything else as
/// `before -> after`.
fn field_lines(field: &FieldChange) -> Vec<FieldLine> {
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
            "{name}: {} -> {}",
            show_value(before, field.sensitive),
            show_value(after, field.sensitive)
        );
        FieldLine::field(sym, text)
    };
    if field.sensitive {
        return vec![whole(field.field.clone(), &field.before, &field.after)];
    }
    match (&field.before, &field.after) {
        (Value::Array(before), Value::Array(after)) if before != after => {
            let removed = before.iter().filter(|v| !after.contains(v));
            let added = after.iter().filter(|v| !before.contains(v));
            let lines: Vec<_> = removed
                .map(|v| FieldLine::field("-", format!("{}: {v}", field.field)))
                .chain(added.map(|v| FieldLine::field("+", format!("{}: {v}", field.field))))
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
        (Value::String(before), Value::String(after))
            if before.contains('\n') || after.contains('\n') =>
        {
            text_diff_lines(&field.field, before, after)
                .unwrap_or_else(|| vec![whole(field.field.clone(), &field.before, &field.after)])
        }
        _ => vec![whole(field.field.clone(), &field.before, &field.after)],
    }
}

/// A multi-line string's changed lines under `~ name:`, `-` removed and `+` added. `None` when
/// no line differs (only a trailing newline or the line endings changed): `before -> after`
/// shows that better.
fn text_diff_lines(name: &str, before: &str, after: &str) -> Option<Vec<FieldLine>> {
    let changed = line_diff(before, after);
    if changed.is_empty() {
        return None;
    }
    let lines = std::iter::once(FieldLine::field("~", format!("{name}:")))
        .chain(
            changed
                .into_iter()
                .map(|(sym, line)| FieldLine::nested(sym, line)),
        )
        .collect();
    Some(lines)
}

/// The lines removed from `before` (`-`) and added in `after` (`+`), in text order, from a
/// longest common subsequence of lines. Quadratic in the lines left once the equal first and
/// last lines are set aside; fine for user data (16 KB at most).
fn line_diff<'a>(before: &'a str, after: &'a str) -> Vec<(&'static str, &'a str)> {
    let mut a: Vec<&str> = before.lines().collect();
    let mut b: Vec<&str> = after.lines().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    a.drain(..prefix);
    b.drain(..prefix);
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    a.truncate(a.len() - suffix);
    b.truncate(b.len() - suffix);
    // lcs[i * width + j]: the length of a longest common subsequence of a[i..] and b[j..].
    let width = b.len() + 1;
    let mut lcs = vec![0u32; (a.len() + 1) * width];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i * width + j] = if a[i] == b[j] {
                lcs[(i + 1) * width + j + 1] + 1
            } else {
                lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j == b.len()
            || (i < a.len() && lcs[(i + 1) * width + j] >= lcs[i * width + j + 1])
        {
            out.push(("-", a[i]));
            i += 1;
        } else {
            out.push(("+", b[j]));
            j += 1;
        }
    }
    out
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

/// `text` in the terminal colour `code` when `color` is on.
fn paint(color: bool, code: &str, text: &str) -> String {
    if color && !code.is_empty() {
        format!("{code}{text}{RESET}")
    } else {
        text.to_string()
    }
}

/// The colour of a field line's symbol: `+` green, `-` red, `~` yellow.
fn symbol_color(sym: &str) -> &'static str {
    match sym {
        "" => "",
        "+" => action_color(Action::Create),
        "-" => action_color(Action::Delete),
        _ => action_color(Action::Update),
    }
}

/// The plan for people, Terraform-style: `+` create with its settings, `~` update with only the
/// changed fields, `-/+` replace with the field that forces it, `-` delete; ends with the
/// summary line.
pub fn render_plan(plan: &Plan, color: bool) -> String {
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
        render_change(&mut out, change, color);
    }
    if !plan.refusals.is_empty() {
        out.push('\n');
        for refusal in &plan.refusals {
            let _ = writeln!(out, "{}: {refusal}", paint(color, "\x1b[31m", "refused"));
        }
    }
    out.push('\n');
    out.push_str(&plan.summary().to_string());
    out.push('\n');
    out
}

/// One change: its symbol and address (with how a replacement is carried out), the reason,
/// then its fields.
fn render_change(out: &mut String, change: &Change, color: bool) {
    let symbol = format!("{:>5}", change.action.symbol());
    if color {
        let symbol = paint(color, action_color(change.action), &symbol);
        let _ = write!(out, "{symbol} {BOLD}{}{RESET}", change.address);
    } else {
        let _ = write!(out, "{symbol} {}", change.address);
    }
    match (change.action, change.replace_mode) {
        (Action::Replace, Some(ReplaceMode::CreateBeforeDestroy)) => {
            out.push_str(" (create the new one, then delete the old one)");
        }
        (Action::Replace, Some(ReplaceMode::DeleteBeforeCreate)) => {
            out.push_str(" (delete the old one first: both cannot exist at once)");
        }
        _ => {}
    }
    out.push('\n');
    if let Some(reason) = &change.reason {
        let _ = writeln!(out, "        # {reason}");
    }
    for field in &change.fields {
        render_field(out, field, change.action, color);
    }
}

/// One field of a change: `sym name: value` lines, with `# forces replacement` where it does;
/// a multi-line string's lines 4 spaces deeper (their trailing spaces trimmed: they would not
/// show).
fn render_field(out: &mut String, field: &FieldChange, action: Action, color: bool) {
    let forces = if field.forces_replacement {
        paint(color, action_color(Action::Delete), " # forces replacement")
    } else {
        String::new()
    };
    let lines = if action == Action::Create {
        created_field_lines(field)
    } else {
        field_lines(field)
    };
    for line in lines {
        let sym = paint(color, symbol_color(line.sym), line.sym);
        if !line.nested {
            let _ = writeln!(out, "        {sym} {}{forces}", line.text);
        } else if line.sym.is_empty() {
            let _ = writeln!(out, "{}", format!("            {}", line.text).trim_end());
        } else {
            let _ = writeln!(
                out,
                "{}",
                format!("            {sym} {}", line.text).trim_end()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::refs::Kind;

    fn field(name: &str, before: Value, after: Value) -> FieldChange {
        FieldChange {
            field: name.to_string(),
            before,
            after,
            forces_replacement: false,
            sensitive: false,
        }
    }

    fn change(kind: Kind, id: &str, action: Action, fields: Vec<FieldChange>) -> Change {
        Change {
            address: Address::new(kind, id),
            action,
            fields,
            desired: None,
            prior: None,
            replace_mode: None,
            reason: None,
            delete_options: None,
        }
    }

    fn plan(changes: Vec<Change>) -> Plan {
        Plan {
            format_version: PLAN_FORMAT_VERSION,
            stack: "closet".to_string(),
            region: "ap-northeast-2".to_string(),
            mode: PlanMode::Normal,
            changes,
            edges: Vec::new(),
            refusals: Vec::new(),
            fingerprint: String::new(),
        }
    }

    const SCRIPT: &str = "#!/bin/bash\nset -eu\ndnf install -y nginx\nsystemctl enable nginx\nsystemctl start nginx\n";

    #[test]
    fn create_shows_each_setting_user_data_as_lines() {
        let create = |name: &str, after: Value| field(name, Value::Null, after);
        let password = FieldChange {
            sensitive: true,
            ..create("master_password", json!(Sensitive::REDACTED))
        };
        let p = plan(vec![
            change(
                Kind::DbInstance,
                "db",
                Action::Create,
                vec![
                    create("engine", json!("mysql")),
                    create("allocated_storage_gib", json!(20)),
                    password,
                ],
            ),
            change(
                Kind::LaunchTemplate,
                "web",
                Action::Create,
                vec![
                    create("instance_type", json!("t4g.small")),
                    create("user_data", json!(SCRIPT)),
                    create("security_groups", json!(["web"])),
                    create("metadata_options", json!({"http_tokens": "required"})),
                ],
            ),
        ]);
        insta::assert_snapshot!(render_plan(&p, false), @r#"
        Stack `closet` in ap-northeast-2: apply will perform these actions:

            + rds_db_instance.db
                + engine: "mysql"
                + allocated_storage_gib: 20
                + master_password: (sensitive)
            + ec2_launch_template.web
                + instance_type: "t4g.small"
                + user_data:
                    #!/bin/bash
                    set -eu
                    dnf install -y nginx
                    systemctl enable nginx
                    systemctl start nginx
                + security_groups: ["web"]
                + metadata_options: {"http_tokens":"required"}

        Plan: 2 to add, 0 to change, 0 to destroy.
        "#);
    }

    #[test]
    fn update_of_user_data_shows_only_the_changed_line() {
        let p = plan(vec![change(
            Kind::LaunchTemplate,
            "web",
            Action::Update,
            vec![
                field("instance_type", json!("t4g.small"), json!("t4g.medium")),
                field(
                    "user_data",
                    json!(SCRIPT),
                    json!(SCRIPT.replace("install -y nginx", "install -y nginx-1.24")),
                ),
            ],
        )]);
        insta::assert_snapshot!(render_plan(&p, false), @r#"
        Stack `closet` in ap-northeast-2: apply will perform these actions:

            ~ ec2_launch_template.web
                ~ instance_type: "t4g.small" -> "t4g.medium"
                ~ user_data:
                    - dnf install -y nginx
                    + dnf install -y nginx-1.24

        Plan: 0 to add, 1 to change, 0 to destroy.
        "#);
        let colored = render_plan(&p, true);
        assert!(colored.contains("\x1b[31m-\x1b[0m dnf install -y nginx\n"));
        assert!(colored.contains("\x1b[32m+\x1b[0m dnf install -y nginx-1.24\n"));
        assert!(colored.contains("\x1b[33m~\x1b[0m user_data:\n"));
    }

    #[test]
    fn replace_shows_the_field_that_forces_it() {
        let forcing = FieldChange {
            forces_replacement: true,
            ..field("port", json!(8080), json!(8081))
        };
        let replace = Change {
            replace_mode: Some(ReplaceMode::CreateBeforeDestroy),
            reason: Some("`port` forces replacement".to_string()),
            ..change(
                Kind::TargetGroup,
                "backend",
                Action::Replace,
                vec![
                    field("health_check", json!({"port": 8080}), json!({"port": 8081})),
                    forcing,
                ],
            )
        };
        insta::assert_snapshot!(render_plan(&plan(vec![replace]), false), @r#"
        Stack `closet` in ap-northeast-2: apply will perform these actions:

          -/+ elbv2_target_group.backend (create the new one, then delete the old one)
                # `port` forces replacement
                ~ health_check.port: 8080 -> 8081
                ~ port: 8080 -> 8081 # forces replacement

        Plan: 1 to add, 0 to change, 1 to destroy.
        "#);
    }

    #[test]
    fn line_diff_keeps_text_order() {
        let diff = line_diff("a\nb\nc\nd\n", "a\nx\nc\nd\ne\n");
        assert_eq!(diff, vec![("-", "b"), ("+", "x"), ("+", "e")]);
        assert_eq!(line_diff("a\nb\n", "b\na\n"), vec![("-", "a"), ("+", "a")]);
        // Only the trailing newline differs: no line does, so the escaped strings show it.
        let lines = field_lines(&field("user_data", json!("a\nb"), json!("a\nb\n")));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text, r#"user_data: "a\nb" -> "a\nb\n""#);
    }
}
