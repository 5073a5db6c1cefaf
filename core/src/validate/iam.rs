//! IAM roles: validation (E06xx) and lints (INFRA-IAM-*). Documented in docs/rules.md.

use crate::model::*;
use crate::refs::{Address, Kind};
use crate::stack::attributes;

use super::index::Index;
use super::lints::{IAM_MISSING_GRANT, IAM_SERVICE_WIDE, IAM_WRITE_ANYWHERE};
use super::rules::error;
use super::Diagnostic;

/// IAM's limit on role names.
const ROLE_NAME_MAX: usize = 64;

/// E06xx for one role.
pub(crate) fn role(index: &Index<'_>, a: &Address, r: &Role, out: &mut Vec<Diagnostic>) {
    let name = role_name(&index.stack.name, &index.stack.region, &a.id);
    if name.len() > ROLE_NAME_MAX {
        out.push(
            error("E0601", a, "id", format!("the role's name in AWS, `{name}`, is {} characters; IAM allows {ROLE_NAME_MAX}", name.len()))
                .with_help("shorten the role's id (the name is `{stack}-{region}-{id}`)"),
        );
    }
    trust(a, r, out);
    for (i, arn) in r.managed_policies.iter().enumerate() {
        if !is_policy_arn(arn) {
            out.push(
                error("E0603", a, &format!("managed_policies[{i}]"), format!("`{arn}` is not a managed policy ARN"))
                    .with_help("use `arn:aws:iam::aws:policy/NAME` (AWS managed) or `arn:aws:iam::ACCOUNT:policy/NAME`, e.g. Role::SSM_MANAGED_INSTANCE_CORE"),
            );
        }
    }
    for (i, s) in r.statements.iter().enumerate() {
        statement(a, &format!("statements[{i}]"), s, out);
    }
    for (i, grant) in r.grants.iter().enumerate() {
        grant_source(index, a, &format!("grants[{i}]"), grant, out);
    }
}

fn trust(a: &Address, r: &Role, out: &mut Vec<Diagnostic>) {
    if r.trusted_services.is_empty() {
        out.push(
            error(
                "E0602",
                a,
                "trusted_services",
                "no service may assume the role",
            )
            .with_help("use Role::ec2() or Role::for_service(\"lambda.amazonaws.com\")"),
        );
    }
    for (i, service) in r.trusted_services.iter().enumerate() {
        let host = service.strip_suffix(".amazonaws.com").unwrap_or_default();
        if host.is_empty()
            || !host
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        {
            out.push(
                error(
                    "E0602",
                    a,
                    &format!("trusted_services[{i}]"),
                    format!("`{service}` is not an AWS service principal"),
                )
                .with_help("use the service's principal, such as `ec2.amazonaws.com`"),
            );
        }
    }
    if r.instance_profile && !r.trusted_services.iter().any(|s| s == "ec2.amazonaws.com") {
        out.push(
            error(
                "E0602",
                a,
                "instance_profile",
                "the role has an instance profile but EC2 may not assume it",
            )
            .with_help("add `ec2.amazonaws.com` to trusted_services, or turn instance_profile off"),
        );
    }
}

/// `arn:PARTITION:iam::aws:policy/NAME` or `arn:PARTITION:iam::ACCOUNT:policy/PATH/NAME`.
fn is_policy_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && (*account == "aws" || (account.len() == 12 && account.bytes().all(|c| c.is_ascii_digit())))
            && resource.strip_prefix("policy/").is_some_and(|n| !n.is_empty()))
}

/// `service:Action`, with `*`/`?` wildcards in the action part.
fn is_action(action: &str) -> bool {
    let Some((service, name)) = action.split_once(':') else {
        return false;
    };
    !service.is_empty()
        && service
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'*' || c == b'?')
}

/// Elements a statement's `other` may not hold: they are fields of [`Statement`], or not valid
/// in a role's own policy.
const RESERVED: &[&str] = &[
    "Effect",
    "Action",
    "Resource",
    "NotAction",
    "NotResource",
    "Principal",
    "NotPrincipal",
];

/// E0604 for one hand-written statement.
fn statement(a: &Address, field: &str, s: &Statement, out: &mut Vec<Diagnostic>) {
    let mut bad = |what: String, help: &str| {
        out.push(error("E0604", a, field, what).with_help(help));
    };
    if s.actions.is_empty() {
        bad(
            "the statement names no action".into(),
            "list the actions, e.g. `s3:GetObject`",
        );
    }
    for action in &s.actions {
        if action == "*" && s.effect == Effect::Allow {
            bad(
                "the statement allows every action of every service (`*`)".into(),
                "name the actions the role needs (`s3:GetObject`), or use a grant (`bucket.read_write()`, `db.secret_read()`)",
            );
        } else if action != "*" && !is_action(action) {
            bad(
                format!("`{action}` is not an action"),
                "write `service:Action`, e.g. `s3:GetObject` (wildcards `*` and `?` in the action part)",
            );
        }
    }
    if s.resources.is_empty() {
        bad(
            "the statement names no resource".into(),
            "list ARNs, e.g. `arn:aws:s3:::bucket/*`",
        );
    }
    for resource in &s.resources {
        if resource != "*" && !resource.starts_with("arn:") {
            bad(
                format!("`{resource}` is not an ARN"),
                "write an ARN (`arn:aws:s3:::bucket/*`); a grant writes the stack's own ARNs for you",
            );
        }
    }
    for key in s.other.keys() {
        if RESERVED.contains(&key.as_str()) {
            bad(
                format!("element `{key}` cannot go in `other`"),
                "set effect, actions and resources through the statement's fields; principals belong in trust policies",
            );
        }
    }
}

/// E0605: a grant's resource has the ARN it names; E0607: a database user to connect as.
fn grant_source(
    index: &Index<'_>,
    a: &Address,
    field: &str,
    grant: &Grant,
    out: &mut Vec<Diagnostic>,
) {
    let on = &grant.on;
    let Some(source) = index.get(on.resource()) else {
        return; // E0904
    };
    if !attributes::provided(source).contains(&on.attribute()) {
        let (message, help) = match grant.access {
            Access::DbConnect { .. } => (
                format!("`{}` has IAM database authentication off, so no user can connect with an IAM token", on.resource()),
                "turn IAM database authentication on (the default) for `db.grant_connect(user)`",
            ),
            _ => (
                format!("`{}` has no `{}` to grant access to", on.resource(), on.attribute()),
                "a secret grant needs the AWS-managed master password (MasterPassword::Managed, the default)",
            ),
        };
        out.push(error("E0605", a, field, message).with_help(help));
    }
    if let (Access::DbConnect { user }, Resource::DbInstance(db)) = (&grant.access, source) {
        let max = match db.engine {
            DbEngine::Mysql | DbEngine::Mariadb => 32,
            DbEngine::Postgres => 63,
        };
        let ok = (1..=max).contains(&user.len())
            && user.as_bytes()[0].is_ascii_alphabetic()
            && user.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        if !ok {
            out.push(
                error("E0607", a, field, format!("`{user}` is not a database user name for {}", db.engine.as_str()))
                    .with_help(format!("use 1-{max} letters, digits and `_`, starting with a letter (one user per grant, no wildcard)")),
            );
        }
    }
}

/// E0606: a launch template's role can be put on an instance.
pub(crate) fn instance_role(
    index: &Index<'_>,
    a: &Address,
    t: &LaunchTemplate,
    out: &mut Vec<Diagnostic>,
) {
    let Some(role) = t.instance_role.as_ref() else {
        return;
    };
    if let Some(Resource::Role(r)) = index.get(&role.address()) {
        if !r.instance_profile {
            out.push(
                error(
                    "E0606",
                    a,
                    "instance_role",
                    format!(
                        "{} has no instance profile, so instances cannot use it",
                        role.address()
                    ),
                )
                .with_help("declare the role with Role::ec2()"),
            );
        }
    }
}

/// Read-only action names: what a statement may allow on `*` without a lint.
fn is_read_only(action: &str) -> bool {
    let name = action.split_once(':').map_or(action, |(_, n)| n);
    ["Get", "List", "Describe"]
        .iter()
        .any(|p| name.starts_with(p) && !name.contains('*'))
}

/// INFRA-IAM-001 and -002 for a role's hand-written statements.
pub(crate) fn role_lints(a: &Address, r: &Role, out: &mut Vec<Diagnostic>) {
    for (i, s) in r.statements.iter().enumerate() {
        if s.effect != Effect::Allow {
            continue;
        }
        let field = format!("statements[{i}]");
        if let Some(wide) = s
            .actions
            .iter()
            .find(|x| x.ends_with(":*") || x.starts_with("iam:"))
        {
            out.push(
                Diagnostic::warning(&IAM_SERVICE_WIDE, a, Some(&field), format!("the statement allows `{wide}`: every action of a service, or a change to IAM itself (a role that can change IAM can give itself anything)"))
                    .with_help("name the actions the app calls; leave IAM to the stack"),
            );
        }
        let writes = s.actions.iter().any(|x| !is_read_only(x));
        if writes && s.resources.iter().any(|r| r == "*") {
            out.push(
                Diagnostic::warning(
                    &IAM_WRITE_ANYWHERE,
                    a,
                    Some(&field),
                    "the statement allows write actions on every resource (`\"Resource\": \"*\"`)",
                )
                .with_help("name the resources' ARNs, or use a grant on the stack's resource"),
            );
        }
    }
}

/// INFRA-IAM-003: a launch template's user data is told where a bucket or a managed secret is,
/// and its role has no grant on it, so the app cannot use it on AWS.
pub(crate) fn missing_grants(
    index: &Index<'_>,
    a: &Address,
    t: &LaunchTemplate,
    out: &mut Vec<Diagnostic>,
) {
    let role = t
        .instance_role
        .as_ref()
        .and_then(|r| match index.get(&r.address()) {
            Some(Resource::Role(role)) => Some(role),
            _ => None,
        });
    for (name, value) in &t.user_data_vars {
        let needs = match value.resource().kind {
            Kind::Bucket => true,
            Kind::DbInstance => value.attribute() == attributes::MASTER_USER_SECRET_ARN,
            _ => false,
        };
        let granted =
            role.is_some_and(|r| r.grants.iter().any(|g| g.on.resource() == value.resource()));
        if needs && !granted {
            let help = match value.resource().kind {
                Kind::Bucket => {
                    "give the template a role with `.grant(bucket.read_write())` (or `.read()`)"
                }
                _ => "give the template a role with `.grant(db.secret_read())`",
            };
            out.push(
                Diagnostic::warning(&IAM_MISSING_GRANT, a, Some(&format!("user_data_vars.{name}")), format!("the instances are told about {} but their role has no grant on it, so on AWS the app cannot use it", value.resource()))
                    .with_help(help),
            );
        }
    }
}
