//! Text renderings the CLI prints besides the engine's plan: outputs, field diffs, summaries.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use infra_core::engine::{Action, FieldChange, Plan};
use infra_core::{Address, Sensitive};

/// `name = value` lines, values that are not known yet as `(not known yet)`. Multi-line values
/// (certificate validation records) are indented under their name.
pub fn outputs(outputs: &BTreeMap<String, Option<String>>) -> String {
    let mut out = String::new();
    for (name, value) in outputs {
        match value {
            None => {
                let _ = writeln!(out, "{name} = (not known yet)");
            }
            Some(v) if v.contains('\n') => {
                let _ = writeln!(out, "{name} =");
                for line in v.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
            Some(v) => {
                let _ = writeln!(out, "{name} = {v}");
            }
        }
    }
    out
}

fn value(v: &serde_json::Value, sensitive: bool) -> String {
    if sensitive {
        Sensitive::REDACTED.to_string()
    } else if v.is_null() {
        "(none)".to_string()
    } else {
        v.to_string()
    }
}

/// The fields in which an existing resource differs from its declaration, as `infra import`
/// shows them before adopting it: `~ field: existing -> declared`.
pub fn field_diff(address: &Address, fields: &[FieldChange]) -> String {
    let mut out = String::new();
    if fields.is_empty() {
        let _ = writeln!(
            out,
            "{address} matches its declaration: the next plan will show no changes for it."
        );
        return out;
    }
    let _ = writeln!(
        out,
        "{address} differs from its declaration; once adopted, the next apply will change:"
    );
    for field in fields {
        let _ = write!(
            out,
            "    ~ {}: {} -> {}",
            field.field,
            value(&field.before, field.sensitive),
            value(&field.after, field.sensitive)
        );
        if field.forces_replacement {
            out.push_str(" # forces replacement");
        }
        out.push('\n');
    }
    out
}

/// Counts of what an apply actually did, from the plan's actions for the completed addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Done {
    pub added: usize,
    pub changed: usize,
    pub destroyed: usize,
}

impl Done {
    pub fn from_completed(plan: &Plan, completed: &[Address]) -> Done {
        let mut done = Done::default();
        for address in completed {
            match plan.change(address).map(|c| c.action) {
                Some(Action::Create) => done.added += 1,
                Some(Action::Update) => done.changed += 1,
                Some(Action::Replace) => {
                    done.added += 1;
                    done.destroyed += 1;
                }
                Some(Action::Delete) => done.destroyed += 1,
                Some(Action::NoOp) | None => {}
            }
        }
        done
    }

    /// `23 added, 0 changed, 0 destroyed`
    pub fn counts(&self) -> String {
        format!(
            "{} added, {} changed, {} destroyed",
            self.added, self.changed, self.destroyed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infra_core::Kind;

    #[test]
    fn outputs_show_unknown_and_multiline_values() {
        let mut map = BTreeMap::new();
        map.insert(
            "alb_dns_name".to_string(),
            Some("closet-123.elb.amazonaws.com".into()),
        );
        map.insert("db_endpoint".to_string(), None);
        map.insert(
            "certificate_validation".to_string(),
            Some("_a.closet.example.com. CNAME _b.acm-validations.aws.\n_c. CNAME _d.".into()),
        );
        insta::assert_snapshot!(outputs(&map), @r"
        alb_dns_name = closet-123.elb.amazonaws.com
        certificate_validation =
            _a.closet.example.com. CNAME _b.acm-validations.aws.
            _c. CNAME _d.
        db_endpoint = (not known yet)
        ");
    }

    #[test]
    fn field_diff_redacts_secrets_and_marks_replacements() {
        let address = Address::new(Kind::Subnet, "public_a");
        let fields = vec![
            FieldChange {
                field: "cidr".into(),
                before: "10.0.9.0/24".into(),
                after: "10.0.1.0/24".into(),
                forces_replacement: true,
                sensitive: false,
            },
            FieldChange {
                field: "secret".into(),
                before: "hunter2".into(),
                after: "hunter3".into(),
                forces_replacement: false,
                sensitive: true,
            },
        ];
        insta::assert_snapshot!(field_diff(&address, &fields), @r#"
        ec2_subnet.public_a differs from its declaration; once adopted, the next apply will change:
            ~ cidr: "10.0.9.0/24" -> "10.0.1.0/24" # forces replacement
            ~ secret: (sensitive) -> (sensitive)
        "#);
    }
}
