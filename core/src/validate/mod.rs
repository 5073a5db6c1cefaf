//! Validation (errors) and lints (warnings) of a stack, all before any API call.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::refs::Address;
use crate::stack::{LintSetting, Stack};

pub mod cidr;
mod dns;
mod iam;
mod index;
mod limits;
mod lints;
mod rules;
#[cfg(test)]
mod tests;

pub use lints::{LintInfo, LINTS};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A validation rule id (`E0102`) or a lint id (`INFRA-SG-001`).
    pub id: String,
    pub address: Option<Address>,
    pub field: Option<String>,
    pub message: String,
    pub help: Option<String>,
    /// Matching checkov / trivy / AWS Security Hub controls, for lints that have them.
    pub mapping: Option<String>,
}

impl Diagnostic {
    /// A validation error.
    pub fn error(
        id: &str,
        address: Option<&Address>,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            id: id.to_string(),
            address: address.cloned(),
            field: field.map(str::to_string),
            message: message.into(),
            help: None,
            mapping: None,
        }
    }

    /// A lint warning, with the controls it corresponds to.
    pub fn warning(
        lint: &LintInfo,
        address: &Address,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            id: lint.id.to_string(),
            address: Some(address.clone()),
            field: field.map(str::to_string),
            message: message.into(),
            help: None,
            mapping: lint.mapping.map(str::to_string),
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}[{}]: ", self.id)?;
        if let Some(address) = &self.address {
            write!(f, "{address}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Everything validation and linting found, in a stable order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    fn sorted(mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by(|a, b| {
            (&a.address, &a.id, &a.field, &a.message)
                .cmp(&(&b.address, &b.id, &b.field, &b.message))
        });
        diagnostics.dedup();
        Report { diagnostics }
    }

    /// Every diagnostic with its help and mapping lines, the way the CLI prints a report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            out.push_str(&d.to_string());
            out.push('\n');
            if let Some(help) = &d.help {
                out.push_str(&format!("  = help: {help}\n"));
            }
            if let Some(mapping) = &d.mapping {
                out.push_str(&format!("  = see: {mapping}\n"));
            }
        }
        let errors = self.errors().count();
        let warnings = self.warnings().count();
        out.push_str(&format!(
            "{errors} error{}, {warnings} warning{}\n",
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" }
        ));
        out
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
}

/// Structural rules: every error in the stack, not just the first.
pub fn validate(stack: &Stack) -> Report {
    Report::sorted(rules::check(stack))
}

/// Lints, with the stack's allow/deny settings applied.
pub fn lint(stack: &Stack) -> Report {
    let diagnostics = lints::check(stack)
        .into_iter()
        .filter_map(|mut d| match stack.lints.get(&d.id) {
            Some(LintSetting::Allow { .. }) => None,
            Some(LintSetting::Deny) => {
                d.severity = Severity::Error;
                Some(d)
            }
            None => Some(d),
        })
        .collect();
    Report::sorted(diagnostics)
}

/// Validation and lints together: what plan and apply run first.
pub fn check(stack: &Stack) -> Report {
    let mut diagnostics = validate(stack).diagnostics;
    diagnostics.extend(lint(stack).diagnostics);
    Report::sorted(diagnostics)
}
