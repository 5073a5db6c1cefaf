//! Text that carries values of other resources: `${NAME}` placeholders filled, at apply time,
//! with attributes of the stack's own resources (a database's endpoint, a bucket's name).
//!
//! A placeholder is a graph edge: the resource holding the text is created after the one it
//! names, and changes (a new launch-template version, rolled out) when the value changes.

use std::collections::BTreeMap;

use super::Resource;
use crate::stack::Output;

/// User data for a launch template: plain text, or a template whose `${NAME}` placeholders are
/// filled from other resources' attributes.
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// # let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
/// # let a = s.add("a", Subnet::private(&vpc, "10.0.1.0/24", "ap-northeast-2a"));
/// # let c = s.add("c", Subnet::private(&vpc, "10.0.2.0/24", "ap-northeast-2c"));
/// # let subnets = s.add("db", DbSubnetGroup::new("database subnets", &[&a, &c]));
/// let db = s.add("db", DbInstance::mysql("8.0", "db.t3.micro", &subnets));
/// let api = LaunchTemplate::new(Image::amazon_linux_2023(), "t3.micro").user_data(
///     UserData::template("docker run -e DB_HOST=${DB_HOST} -e DB_SECRET_ARN=${DB_SECRET} app")
///         .var("DB_HOST", db.endpoint())
///         .var("DB_SECRET", db.master_user_secret_arn()),
/// );
/// ```
///
/// Only attributes go in, never a secret: a [`crate::Sensitive`] is not an [`Output`].
///
/// ```compile_fail
/// use infra_core::prelude::*;
///
/// UserData::template("PASSWORD=${P}").var("P", Sensitive::new("hunter2"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserData {
    pub(crate) text: String,
    pub(crate) vars: BTreeMap<String, Output>,
}

impl UserData {
    /// `text` with `${NAME}` placeholders, each filled by a [`UserData::var`] of that name.
    /// Placeholders without a var (a shell's own `${HOME}`) are left as they are.
    pub fn template(text: impl Into<String>) -> Self {
        UserData {
            text: text.into(),
            vars: BTreeMap::new(),
        }
    }

    /// Fill `${name}` with an attribute of another resource of the stack (known after apply).
    /// `name` is letters, digits and `_`, starting with a letter or `_`, and appears in the
    /// text as `${name}` (`E0409`).
    pub fn var(mut self, name: impl Into<String>, value: Output) -> Self {
        self.vars.insert(name.into(), value);
        self
    }
}

impl From<String> for UserData {
    fn from(text: String) -> Self {
        UserData::template(text)
    }
}

impl From<&str> for UserData {
    fn from(text: &str) -> Self {
        UserData::template(text)
    }
}

impl Resource {
    /// This resource with its placeholders filled by `value` and no vars left (and a role's
    /// grants written out as statements): what is sent to AWS, and what AWS reports back.
    pub fn filled(&self, mut value: impl FnMut(&Output) -> String) -> Resource {
        let mut out = self.clone();
        if let Resource::LaunchTemplate(t) = &mut out {
            if let Some(text) = &t.user_data {
                t.user_data = Some(render(text, &t.user_data_vars, &mut value));
            }
            t.user_data_vars.clear();
        }
        if let Resource::Role(r) = &mut out {
            r.fill_grants(value);
        }
        out
    }
}

/// The names of the `${NAME}` placeholders in `text`, in order, repeats included.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        names.push(&after[..end]);
        rest = &after[end + 1..];
    }
    names
}

/// `text` with each `${NAME}` that `vars` names replaced by `value` of its output, in one pass
/// (a value that itself holds `${...}` is not filled again).
pub fn render(
    text: &str,
    vars: &BTreeMap<String, Output>,
    mut value: impl FnMut(&Output) -> String,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let filled = after
            .find('}')
            .and_then(|end| vars.get(&after[..end]).map(|output| (end, output)));
        match filled {
            Some((end, output)) => {
                out.push_str(&rest[..start]);
                out.push_str(&value(output));
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `name` can be a placeholder's name: a letter or `_`, then letters, digits and `_`.
pub fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refs::{Address, Kind};

    fn endpoint() -> Output {
        Output::new(Address::new(Kind::DbInstance, "db"), "endpoint")
    }

    #[test]
    fn render_fills_named_placeholders_and_leaves_the_others() {
        let vars = BTreeMap::from([("DB_HOST".to_string(), endpoint())]);
        let text = "H=${DB_HOST} HOME=${HOME} again=${DB_HOST} open=${";
        let rendered = render(text, &vars, |o| format!("<{}>", o.resource()));
        assert_eq!(
            rendered,
            "H=<rds_db_instance.db> HOME=${HOME} again=<rds_db_instance.db> open=${"
        );
    }

    #[test]
    fn a_value_holding_a_placeholder_is_not_filled_again() {
        let vars = BTreeMap::from([("A".to_string(), endpoint())]);
        assert_eq!(render("${A}", &vars, |_| "${A}".into()), "${A}");
    }

    #[test]
    fn placeholders_and_names() {
        assert_eq!(placeholders("a ${X} b ${Y_1}${X} ${"), ["X", "Y_1", "X"]);
        assert!(is_var_name("DB_HOST") && is_var_name("_x1"));
        assert!(!is_var_name("") && !is_var_name("1A") && !is_var_name("DB-HOST"));
    }
}
