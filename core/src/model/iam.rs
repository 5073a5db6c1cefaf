//! IAM: a role the stack's instances (or another AWS service) act as, with its instance profile,
//! the managed policies attached to it, and an inline policy made from typed grants on the
//! stack's own resources.
//!
//! ```
//! use infra_core::prelude::*;
//!
//! let mut s = Stack::new("demo", "ap-northeast-2");
//! let uploads = s.add("uploads", Bucket::new("demo-uploads-7f3a"));
//! let role = s.add(
//!     "api",
//!     Role::ec2()
//!         .managed_policy(Role::SSM_MANAGED_INSTANCE_CORE)
//!         .grant(uploads.read_write()),
//! );
//! let api = LaunchTemplate::new(Image::amazon_linux_2023(), "t3.micro").instance_role(&role);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::refs::{Kind, ResourceKind};
use crate::stack::Output;

/// An IAM role, named `{stack}-{region}-{id}` under the path `/infra/{region}/{stack}/` (IAM is
/// global: the region keeps one stack's copies in two regions apart). That name is at most 64
/// characters (`E0601`).
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// let uploads = s.add("uploads", Bucket::new("demo-uploads-7f3a"));
/// let role = s.add("api", Role::ec2().grant(uploads.read()));
/// s.add("monitoring", Role::rds_monitoring());
/// s.output("api_role", role.role_name());
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Services that may assume the role (`ec2.amazonaws.com`).
    pub trusted_services: Vec<String>,
    /// Whether the role has an instance profile of the same name, so EC2 instances can use it
    /// (on by default for [`Role::ec2`]).
    pub instance_profile: bool,
    /// ARNs of managed policies attached to the role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_policies: Vec<String>,
    /// Access to the stack's own resources: statements of the role's inline policy, written
    /// once the resources' ARNs are known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<Grant>,
    /// Statements of the inline policy written by hand (checked by validation and lints).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<Statement>,
}

impl Role {
    /// AWS's policy for Session Manager: a shell on the instances without opening port 22.
    pub const SSM_MANAGED_INSTANCE_CORE: &'static str =
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore";

    /// AWS's policy for RDS enhanced monitoring: write OS metrics to the `RDSOSMetrics` logs.
    pub const RDS_ENHANCED_MONITORING: &'static str =
        "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole";

    /// The service that assumes a database's enhanced-monitoring role.
    pub const RDS_MONITORING_SERVICE: &'static str = "monitoring.rds.amazonaws.com";

    /// A role for EC2 instances (trusting `ec2.amazonaws.com`), with its instance profile; no
    /// policies.
    pub fn ec2() -> Self {
        Role {
            trusted_services: vec!["ec2.amazonaws.com".into()],
            instance_profile: true,
            managed_policies: Vec::new(),
            grants: Vec::new(),
            statements: Vec::new(),
        }
    }

    /// A role another service assumes (`lambda.amazonaws.com`; `NAME.amazonaws.com`, `E0602`),
    /// without an instance profile; no policies.
    pub fn for_service(service: impl Into<String>) -> Self {
        Role {
            trusted_services: vec![service.into()],
            instance_profile: false,
            ..Role::ec2()
        }
    }

    /// The role for [`DbInstance::enhanced_monitoring`](super::DbInstance::enhanced_monitoring):
    /// trusted by RDS's monitoring service, with [`Role::RDS_ENHANCED_MONITORING`].
    pub fn rds_monitoring() -> Self {
        Role::for_service(Role::RDS_MONITORING_SERVICE)
            .managed_policy(Role::RDS_ENHANCED_MONITORING)
    }

    /// Attach a managed policy by ARN ([`Role::SSM_MANAGED_INSTANCE_CORE`];
    /// `arn:aws:iam::aws:policy/NAME` or `arn:aws:iam::ACCOUNT:policy/NAME`, `E0603`). Call once
    /// per policy; default: none.
    pub fn managed_policy(mut self, arn: impl Into<String>) -> Self {
        self.managed_policies.push(arn.into());
        self
    }

    /// Access to a resource of the stack: `db.secret_read()`, `db.grant_connect(user)`,
    /// `bucket.read()`, `bucket.read_write()` (`E0605`, `E0607`). Call once per grant; default:
    /// none.
    pub fn grant(mut self, grant: Grant) -> Self {
        self.grants.push(grant);
        self
    }

    /// A statement written by hand: the escape hatch for what no grant covers (`E0604`; lints
    /// `INFRA-IAM-001` and `-002`). Call once per statement; default: none.
    pub fn statement(mut self, statement: Statement) -> Self {
        self.statements.push(statement);
        self
    }

    /// The inline policy's statements with the grants written out, each grant's resource given
    /// by `value` (its ARN); the grants are cleared.
    pub(crate) fn fill_grants(&mut self, mut value: impl FnMut(&Output) -> String) {
        for grant in std::mem::take(&mut self.grants) {
            self.statements.extend(grant.statements(&value(&grant.on)));
        }
    }
}

impl ResourceKind for Role {
    const KIND: Kind = Kind::Role;
}

/// The name of a role (and of its instance profile) in AWS.
pub fn role_name(stack: &str, region: &str, id: &str) -> String {
    format!("{stack}-{region}-{id}")
}

/// The path of a stack's roles: discovery lists the roles under it.
pub fn role_path(stack: &str, region: &str) -> String {
    format!("/infra/{region}/{stack}/")
}

/// Typed access to one resource of the stack, made by the resource's handle
/// (`Ref<DbInstance>::secret_read`, `Ref<DbInstance>::grant_connect`, `Ref<Bucket>::read_write`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub access: Access,
    /// The ARN the access is on.
    pub on: Output,
}

/// What a [`Grant`] allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Read a Secrets Manager secret's value.
    SecretRead,
    /// Log in to a database as `user` with an IAM token (IAM database authentication).
    DbConnect { user: String },
    /// List a bucket and read its objects.
    ObjectRead,
    /// List a bucket, read, write and delete its objects.
    ObjectReadWrite,
}

impl Grant {
    pub(crate) fn new(access: Access, on: Output) -> Self {
        Grant { access, on }
    }

    /// The statements for this grant on the resource `arn` (for [`Access::DbConnect`], the
    /// database's `arn:aws:rds-db:REGION:ACCOUNT:dbuser:DBI_RESOURCE_ID`).
    pub fn statements(&self, arn: &str) -> Vec<Statement> {
        let objects = format!("{arn}/*");
        match &self.access {
            Access::SecretRead => vec![Statement::allow(
                &[
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                ],
                &[arn],
            )],
            Access::DbConnect { user } => {
                vec![Statement::allow(
                    &["rds-db:connect"],
                    &[&format!("{arn}/{user}")],
                )]
            }
            Access::ObjectRead => vec![
                Statement::allow(&["s3:ListBucket"], &[arn]),
                Statement::allow(&["s3:GetObject"], &[&objects]),
            ],
            Access::ObjectReadWrite => vec![
                Statement::allow(&["s3:ListBucket"], &[arn]),
                Statement::allow(
                    &["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                    &[&objects],
                ),
            ],
        }
    }
}

/// `Allow` or `Deny`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// One statement of a policy document.
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// s.add(
///     "worker",
///     Role::ec2().statement(Statement::allow(
///         &["sqs:ReceiveMessage", "sqs:DeleteMessage"],
///         &["arn:aws:sqs:ap-northeast-2:123456789012:jobs"],
///     )),
/// );
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub effect: Effect,
    /// `service:Action` names (`s3:GetObject`).
    pub actions: Vec<String>,
    /// ARNs the actions apply to.
    pub resources: Vec<String>,
    /// Other elements (`Condition`), as IAM's JSON; AWS's own reading puts here what `infra`
    /// does not model, so a hand-made change shows as a diff.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Statement {
    /// Allow `actions` (`service:Action`, never `*` alone) on `resources` (ARNs or `*`):
    /// `E0604`.
    pub fn allow(actions: &[&str], resources: &[&str]) -> Self {
        Statement {
            effect: Effect::Allow,
            actions: actions.iter().map(|a| a.to_string()).collect(),
            resources: resources.iter().map(|r| r.to_string()).collect(),
            other: BTreeMap::new(),
        }
    }

    /// Deny `actions` on `resources`.
    pub fn deny(actions: &[&str], resources: &[&str]) -> Self {
        Statement {
            effect: Effect::Deny,
            ..Statement::allow(actions, resources)
        }
    }

    /// Add an element `infra` does not model, e.g. a `Condition`; not one of the statement's
    /// own fields or a principal (`E0604`). A stack file depends on `infra-core` alone and
    /// writes the value with its re-export, `infra_core::serde_json::json!`:
    ///
    /// ```
    /// use infra_core::prelude::*;
    /// use infra_core::serde_json::json;
    ///
    /// let statement = Statement::allow(&["s3:PutObject"], &["arn:aws:s3:::closet-uploads/*"])
    ///     .with("Condition", json!({ "Bool": { "aws:SecureTransport": "true" } }));
    /// assert_eq!(statement.to_json()["Condition"]["Bool"]["aws:SecureTransport"], "true");
    /// ```
    pub fn with(mut self, element: impl Into<String>, value: serde_json::Value) -> Self {
        self.other.insert(element.into(), value);
        self
    }

    /// The statement in IAM's JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("Effect".into(), format!("{:?}", self.effect).into());
        map.insert("Action".into(), self.actions.clone().into());
        map.insert("Resource".into(), self.resources.clone().into());
        for (k, v) in &self.other {
            map.insert(k.clone(), v.clone());
        }
        map.into()
    }

    /// Actions and resources sorted and deduplicated: IAM keeps neither order.
    pub fn normalized(mut self) -> Self {
        self.actions.sort();
        self.actions.dedup();
        self.resources.sort();
        self.resources.dedup();
        self
    }
}

/// A policy document of `statements`, as IAM takes it.
pub fn policy_document(statements: &[Statement]) -> String {
    let statements: Vec<_> = statements.iter().map(Statement::to_json).collect();
    serde_json::json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
}

/// The trust policy letting `services` assume a role.
pub fn trust_document(services: &[String]) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": services },
            "Action": "sts:AssumeRole",
        }],
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refs::Address;

    fn bucket_arn() -> Output {
        Output::new(Address::new(Kind::Bucket, "uploads"), "arn")
    }

    #[test]
    fn grants_become_statements_on_exactly_the_resource() {
        let mut role = Role::ec2().grant(Grant::new(Access::ObjectReadWrite, bucket_arn()));
        role.fill_grants(|_| "arn:aws:s3:::b".into());
        assert!(role.grants.is_empty());
        assert_eq!(
            role.statements,
            [
                Statement::allow(&["s3:ListBucket"], &["arn:aws:s3:::b"]),
                Statement::allow(
                    &["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                    &["arn:aws:s3:::b/*"]
                ),
            ]
        );
    }

    #[test]
    fn a_connect_grant_names_one_user_of_one_database() {
        let on = Output::new(Address::new(Kind::DbInstance, "db"), "dbuser_arn_prefix");
        let mut role = Role::ec2().grant(Grant::new(Access::DbConnect { user: "app".into() }, on));
        role.fill_grants(|_| "arn:aws:rds-db:ap-northeast-2:123456789012:dbuser:db-ABC".into());
        assert_eq!(
            role.statements,
            [Statement::allow(
                &["rds-db:connect"],
                &["arn:aws:rds-db:ap-northeast-2:123456789012:dbuser:db-ABC/app"]
            )]
        );
    }

    #[test]
    fn the_monitoring_role_trusts_rds_monitoring() {
        let role = Role::rds_monitoring();
        assert_eq!(role.trusted_services, ["monitoring.rds.amazonaws.com"]);
        assert_eq!(role.managed_policies, [Role::RDS_ENHANCED_MONITORING]);
        assert!(!role.instance_profile);
    }

    #[test]
    fn documents_are_iam_json() {
        let doc: serde_json::Value = serde_json::from_str(&policy_document(&[Statement::allow(
            &["s3:GetObject"],
            &["x"],
        )]))
        .unwrap();
        assert_eq!(doc["Statement"][0]["Effect"], "Allow");
        assert_eq!(doc["Statement"][0]["Action"][0], "s3:GetObject");
        let trust: serde_json::Value =
            serde_json::from_str(&trust_document(&["ec2.amazonaws.com".into()])).unwrap();
        assert_eq!(
            trust["Statement"][0]["Principal"]["Service"][0],
            "ec2.amazonaws.com"
        );
    }
}
