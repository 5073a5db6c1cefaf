//! The `Stack`: a named set of resources in one region, with outputs and lint settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{
    Access, Bucket, Certificate, DbInstance, Declared, Grant, HostedZone, LoadBalancer, Record,
    Resource, Role, TargetGroup, Vpc,
};
use crate::refs::{Address, Ref, ResourceKind};

/// Version of the stack JSON schema that [`Stack::to_json`] writes and [`Stack::from_json`] reads.
pub const SCHEMA_VERSION: u32 = 1;

/// `infra ... --var KEY=VALUE` reaches the stack program as the environment variable
/// `INFRA_VAR_KEY`, which [`Stack::var`] reads.
pub const VAR_ENV_PREFIX: &str = "INFRA_VAR_";

/// A stack: what `infra` reconciles against AWS.
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut stack = Stack::new("demo", "ap-northeast-2");
/// let vpc = stack.add("main", Vpc::new("10.0.0.0/16"));
/// let subnet = stack.add("public_a", Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"));
/// assert_eq!(subnet.address().to_string(), "ec2_subnet.public_a");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stack {
    pub schema_version: u32,
    pub name: String,
    pub region: String,
    pub resources: Vec<Declared>,
    #[serde(default)]
    pub outputs: BTreeMap<String, Output>,
    /// Lint ids raised to errors or silenced, with the reason.
    #[serde(default)]
    pub lints: BTreeMap<String, LintSetting>,
}

/// How a stack treats one lint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "level", rename_all = "snake_case")]
pub enum LintSetting {
    /// Silenced, with the reason recorded in the stack.
    Allow { reason: String },
    /// Raised to an error: validation fails while it fires.
    Deny,
}

/// An attribute of one of the stack's resources, known once it exists: a stack output, or a
/// value filled into another resource's settings ([`crate::model::UserData::var`]).
///
/// Made only by the typed accessors of [`Ref`] (`db.endpoint()`, `bucket.bucket_name()`...), so
/// an attribute a resource type does not have does not compile.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Output {
    resource: Address,
    attribute: String,
}

impl Output {
    pub(crate) fn new(resource: Address, attribute: impl Into<String>) -> Self {
        Output {
            resource,
            attribute: attribute.into(),
        }
    }

    /// The resource whose attribute this is.
    pub fn resource(&self) -> &Address {
        &self.resource
    }

    /// The attribute's name (see [`attributes`]).
    pub fn attribute(&self) -> &str {
        &self.attribute
    }
}

// No `Display`: `format!("DB_HOST={}", db.endpoint())` must not compile into the text
// `rds_db_instance.db.endpoint`; values go in through `UserData::var`.
impl Output {
    /// `rds_db_instance.db.endpoint`, for messages and plans.
    pub fn reference(&self) -> String {
        format!("{}.{}", self.resource, self.attribute)
    }
}

/// Errors reading a stack's JSON.
#[derive(Debug, thiserror::Error)]
pub enum StackJsonError {
    #[error("stack JSON is not valid")]
    Parse(#[from] serde_json::Error),
    #[error("stack JSON has schema version {found}; this infra reads version {expected}")]
    Version { found: u32, expected: u32 },
}

impl Stack {
    /// An empty stack named `name` (1-24 lowercase letters, digits and single hyphens,
    /// starting with a letter: `E0901`) in `region` (`ap-northeast-2`: `E0902`).
    pub fn new(name: impl Into<String>, region: impl Into<String>) -> Self {
        Stack {
            schema_version: SCHEMA_VERSION,
            name: name.into(),
            region: region.into(),
            resources: Vec::new(),
            outputs: BTreeMap::new(),
            lints: BTreeMap::new(),
        }
    }

    /// The value given with `--var KEY=VALUE` on the `infra` command line, or `None` when it
    /// was not given. Read when `stack()` runs, so one compiled stack file serves every
    /// environment:
    ///
    /// ```
    /// use infra_core::prelude::*;
    ///
    /// // `infra plan stacks/closet.rs --var env=production`
    /// let env = Stack::var("env").unwrap_or_else(|| "staging".to_string());
    /// let stack = Stack::new(format!("closet-{env}"), "ap-northeast-2");
    /// # assert_eq!(stack.name, "closet-staging");
    /// ```
    ///
    /// `infra` passes each `--var` as the environment variable `INFRA_VAR_KEY`
    /// ([`VAR_ENV_PREFIX`]) and no other `INFRA_VAR_` variable.
    pub fn var(key: &str) -> Option<String> {
        std::env::var(format!("{VAR_ENV_PREFIX}{key}")).ok()
    }

    /// [`Stack::var`], or `default` when `--var KEY=...` was not given.
    ///
    /// ```
    /// use infra_core::prelude::*;
    ///
    /// let env = Stack::var_or("env", "staging");
    /// let min_size = if env == "production" { 2 } else { 1 };
    /// # assert_eq!((env.as_str(), min_size), ("staging", 1));
    /// ```
    pub fn var_or(key: &str, default: impl Into<String>) -> String {
        Stack::var(key).unwrap_or_else(|| default.into())
    }

    /// Add a resource under a logical id and get a typed handle to it. Ids must be unique in
    /// the stack; a duplicate is reported by validation rather than panicking here.
    pub fn add<T>(&mut self, id: impl Into<String>, resource: T) -> Ref<T>
    where
        T: ResourceKind + Into<Resource>,
    {
        let id = id.into();
        self.resources.push(Declared {
            id: id.clone(),
            resource: resource.into(),
        });
        Ref::from_id(id)
    }

    /// The stack with what it derives from its resources filled in: each load balancer's
    /// access-log prefix, and the policy of each bucket something logs into (from who does).
    /// The engine plans and applies this form; deriving it again changes nothing.
    pub fn derived(&self) -> Stack {
        let mut out = self.clone();
        crate::model::derive(&mut out);
        out
    }

    /// Declare a named output, printed by `infra output`; its resource must be declared
    /// (`E0906`).
    pub fn output(&mut self, name: impl Into<String>, value: Output) -> &mut Self {
        self.outputs.insert(name.into(), value);
        self
    }

    /// Silence a lint for this stack, recording why.
    pub fn allow_lint(
        &mut self,
        lint_id: impl Into<String>,
        reason: impl Into<String>,
    ) -> &mut Self {
        self.lints.insert(
            lint_id.into(),
            LintSetting::Allow {
                reason: reason.into(),
            },
        );
        self
    }

    /// Raise a lint to an error for this stack.
    pub fn deny_lint(&mut self, lint_id: impl Into<String>) -> &mut Self {
        self.lints.insert(lint_id.into(), LintSetting::Deny);
        self
    }

    /// The resource at `address`, if declared (the first one, should the id be duplicated).
    pub fn get(&self, address: &Address) -> Option<&Declared> {
        self.resources
            .iter()
            .find(|d| d.id == address.id && d.resource.kind() == address.kind)
    }

    /// The resource behind a typed handle.
    pub fn resolve<T: ResourceKind>(&self, handle: &Ref<T>) -> Option<&Declared> {
        self.get(&handle.address())
    }

    /// The stack as JSON, what `infra synth` prints.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a stack always serializes")
    }

    /// A stack read from the JSON [`Stack::to_json`] writes, of schema [`SCHEMA_VERSION`].
    pub fn from_json(json: &str) -> Result<Stack, StackJsonError> {
        #[derive(Deserialize)]
        struct Header {
            schema_version: u32,
        }
        let header: Header = serde_json::from_str(json)?;
        if header.schema_version != SCHEMA_VERSION {
            return Err(StackJsonError::Version {
                found: header.schema_version,
                expected: SCHEMA_VERSION,
            });
        }
        Ok(serde_json::from_str(json)?)
    }
}

impl<T: ResourceKind> Ref<T> {
    fn attribute(&self, name: &str) -> Output {
        Output::new(self.address(), name)
    }

    /// The AWS identifier (VPC id, ARN, bucket name...).
    pub fn physical_id(&self) -> Output {
        self.attribute(attributes::ID)
    }
}

impl Ref<Vpc> {
    /// The VPC id (`vpc-0abc...`).
    pub fn vpc_id(&self) -> Output {
        self.physical_id()
    }
}

impl Ref<LoadBalancer> {
    /// The load balancer's DNS name (`web-123.ap-northeast-2.elb.amazonaws.com`).
    pub fn dns_name(&self) -> Output {
        self.attribute(attributes::DNS_NAME)
    }

    /// The load balancer's ARN.
    pub fn arn(&self) -> Output {
        self.physical_id()
    }

    /// The Route53 zone id of the load balancer's DNS name, for alias records.
    pub fn canonical_hosted_zone_id(&self) -> Output {
        self.attribute(attributes::CANONICAL_HOSTED_ZONE_ID)
    }
}

impl Ref<HostedZone> {
    /// The zone id (`Z0123...`).
    pub fn zone_id(&self) -> Output {
        self.physical_id()
    }

    /// The zone's name servers, one per line: set them at the registrar for a new zone.
    pub fn name_servers(&self) -> Output {
        self.attribute(attributes::NAME_SERVERS)
    }
}

impl Ref<Record> {
    /// The record's full name (`closet.example.com`).
    pub fn fqdn(&self) -> Output {
        self.attribute(attributes::FQDN)
    }

    /// `https://` and the record's full name: the site's address.
    pub fn https_url(&self) -> Output {
        self.attribute(attributes::HTTPS_URL)
    }
}

impl Ref<TargetGroup> {
    /// The target group's ARN.
    pub fn arn(&self) -> Output {
        self.physical_id()
    }
}

impl Ref<DbInstance> {
    /// The address clients connect to (`ID.abc123.ap-northeast-2.rds.amazonaws.com`).
    pub fn endpoint(&self) -> Output {
        self.attribute(attributes::ENDPOINT)
    }

    /// The port clients connect to.
    pub fn port(&self) -> Output {
        self.attribute(attributes::PORT)
    }

    /// The instance's ARN.
    pub fn arn(&self) -> Output {
        self.attribute(attributes::ARN)
    }

    /// ARN of the Secrets Manager secret holding the AWS-managed master password
    /// ([`crate::model::MasterPassword::Managed`], the default).
    pub fn master_user_secret_arn(&self) -> Output {
        self.attribute(attributes::MASTER_USER_SECRET_ARN)
    }

    /// For [`Role::grant`](crate::model::Role::grant): read the managed master password
    /// (`secretsmanager:GetSecretValue` and `DescribeSecret` on exactly its secret).
    pub fn secret_read(&self) -> Grant {
        Grant::new(Access::SecretRead, self.master_user_secret_arn())
    }

    /// The instance's resource id (`db-ABCDEFGHIJKLMNOPQRSTUVWXY0`), which names it in IAM
    /// policies and CloudWatch.
    pub fn resource_id(&self) -> Output {
        self.attribute(attributes::RESOURCE_ID)
    }

    /// For [`Role::grant`](crate::model::Role::grant): log in as the database user `user` with
    /// an IAM token (`rds-db:connect` on exactly that user of this instance). Needs IAM database
    /// authentication, on by default; the user must exist in the database, created with the
    /// engine's IAM plugin (`AWSAuthenticationPlugin` in MySQL, the `rds_iam` role in
    /// PostgreSQL).
    pub fn grant_connect(&self, user: impl Into<String>) -> Grant {
        let user = user.into();
        Grant::new(
            Access::DbConnect { user },
            self.attribute(attributes::DBUSER_ARN_PREFIX),
        )
    }
}

impl Ref<Bucket> {
    /// The bucket's name (known before it exists: the declared one).
    pub fn bucket_name(&self) -> Output {
        self.physical_id()
    }

    /// The bucket's ARN (`arn:aws:s3:::NAME`).
    pub fn arn(&self) -> Output {
        self.attribute(attributes::ARN)
    }

    /// For [`Role::grant`](crate::model::Role::grant): list the bucket and read its objects.
    pub fn read(&self) -> Grant {
        Grant::new(Access::ObjectRead, self.arn())
    }

    /// For [`Role::grant`](crate::model::Role::grant): list the bucket; read, write and delete
    /// its objects.
    pub fn read_write(&self) -> Grant {
        Grant::new(Access::ObjectReadWrite, self.arn())
    }
}

impl Ref<Role> {
    /// The role's ARN.
    pub fn arn(&self) -> Output {
        self.attribute(attributes::ARN)
    }

    /// The role's name (also its instance profile's).
    pub fn role_name(&self) -> Output {
        self.physical_id()
    }
}

impl Ref<Certificate> {
    /// The certificate's ARN.
    pub fn arn(&self) -> Output {
        self.physical_id()
    }

    /// The DNS records to create for validation, one `NAME CNAME VALUE` per line.
    pub fn validation_records(&self) -> Output {
        self.attribute(attributes::VALIDATION_RECORDS)
    }
}

/// Names of the attributes providers report in [`crate::provider::Observed::attributes`].
pub mod attributes {
    /// Always present: the physical id.
    pub const ID: &str = "id";
    pub const ARN: &str = "arn";
    pub const DNS_NAME: &str = "dns_name";
    pub const ENDPOINT: &str = "endpoint";
    pub const PORT: &str = "port";
    pub const MASTER_USER_SECRET_ARN: &str = "master_user_secret_arn";
    /// Databases: the DbiResourceId.
    pub const RESOURCE_ID: &str = "resource_id";
    /// Databases with IAM database authentication:
    /// `arn:aws:rds-db:REGION:ACCOUNT:dbuser:DBI_RESOURCE_ID`; a user's ARN is this, `/` and the
    /// user name.
    pub const DBUSER_ARN_PREFIX: &str = "dbuser_arn_prefix";
    pub const VALIDATION_RECORDS: &str = "validation_records";
    pub const STATUS: &str = "status";
    /// Load balancers: the Route53 zone id of their DNS name.
    pub const CANONICAL_HOSTED_ZONE_ID: &str = "canonical_hosted_zone_id";
    /// Hosted zones: name servers, one per line.
    pub const NAME_SERVERS: &str = "name_servers";
    /// Records: the full name, without the final dot.
    pub const FQDN: &str = "fqdn";
    pub const HTTPS_URL: &str = "https_url";
    /// Launch templates: the version number the template's data lives in.
    pub const LATEST_VERSION: &str = "latest_version";
    /// Auto Scaling Groups: the launch-template version number the group is pinned to.
    pub const LAUNCH_TEMPLATE_VERSION: &str = "launch_template_version";

    use crate::model::{Bucket, DbInstance, MasterPassword, Resource};

    /// An attribute the declaration alone fixes, known before the resource exists: a bucket's
    /// name, a database's chosen identifier.
    pub fn declared(resource: &Resource, attribute: &str) -> Option<String> {
        match (resource, attribute) {
            (Resource::Bucket(Bucket { name, .. }), ID) => Some(name.clone()),
            (
                Resource::DbInstance(DbInstance {
                    identifier: Some(identifier),
                    ..
                }),
                ID,
            ) => Some(identifier.clone()),
            _ => None,
        }
    }

    /// The attributes a declared resource has once it exists, for the values it can give.
    pub fn provided(resource: &Resource) -> Vec<&'static str> {
        let mut names = vec![ID];
        if let Resource::DbInstance(db) = resource {
            names.extend_from_slice(&[ARN, ENDPOINT, PORT, RESOURCE_ID]);
            if db.master_password == MasterPassword::Managed {
                names.push(MASTER_USER_SECRET_ARN);
            }
            if db.iam_database_authentication {
                names.push(DBUSER_ARN_PREFIX);
            }
        }
        names.extend_from_slice(match resource {
            Resource::Vpc(_)
            | Resource::Subnet(_)
            | Resource::InternetGateway(_)
            | Resource::RouteTable(_)
            | Resource::SecurityGroup(_) => &[],
            Resource::Certificate(_) => &[ARN, STATUS, VALIDATION_RECORDS],
            Resource::LoadBalancer(_) => &[ARN, CANONICAL_HOSTED_ZONE_ID, DNS_NAME, STATUS],
            Resource::HostedZone(_) => &[NAME_SERVERS],
            Resource::Record(_) => &[FQDN, HTTPS_URL],
            Resource::LaunchTemplate(_) => &[LATEST_VERSION],
            Resource::DbInstance(_) => &[],
            Resource::TargetGroup(_)
            | Resource::Listener(_)
            | Resource::ListenerRule(_)
            | Resource::AutoScalingGroup(_)
            | Resource::DbSubnetGroup(_)
            | Resource::Bucket(_)
            | Resource::Role(_) => &[ARN],
        });
        names
    }
}
