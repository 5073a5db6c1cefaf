//! RDS and S3: the resources that hold data.

use serde::{Deserialize, Serialize};

use super::iam::Role;
use super::logs::{AccessLogging, Lifecycle, PolicyStatement, DEFAULT_LOG_DAYS};
use super::network::{SecurityGroup, Subnet};
use crate::refs::{Kind, Ref, ResourceKind};
use crate::secret::Sensitive;

/// A DB subnet group over subnets in at least two zones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DbSubnetGroup {
    pub description: String,
    pub subnets: Vec<Ref<Subnet>>,
}

impl DbSubnetGroup {
    pub fn new(description: impl Into<String>, subnets: &[&Ref<Subnet>]) -> Self {
        DbSubnetGroup {
            description: description.into(),
            subnets: subnets.iter().map(|s| (*s).clone()).collect(),
        }
    }
}

impl ResourceKind for DbSubnetGroup {
    const KIND: Kind = Kind::DbSubnetGroup;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbEngine {
    Mysql,
    Mariadb,
    Postgres,
}

impl DbEngine {
    pub fn as_str(self) -> &'static str {
        match self {
            DbEngine::Mysql => "mysql",
            DbEngine::Mariadb => "mariadb",
            DbEngine::Postgres => "postgres",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            DbEngine::Mysql | DbEngine::Mariadb => 3306,
            DbEngine::Postgres => 5432,
        }
    }
}

/// Where the master password comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", content = "value", rename_all = "snake_case")]
pub enum MasterPassword {
    /// AWS generates it and keeps it in Secrets Manager (the default); the secret's ARN is an
    /// output, the value never passes through infra.
    Managed,
    /// Read from this environment variable at apply time; never stored in the stack or a plan.
    FromEnv(String),
    /// A literal password. Discouraged; shown as `(sensitive)` everywhere.
    Plain(Sensitive),
}

/// What happens to the data when the instance is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalSnapshot {
    /// Take a final snapshot named after the instance and the time (the default).
    Take,
    /// Delete without a snapshot: the data is gone.
    Skip,
}

/// Enhanced monitoring: RDS's agent sends OS metrics every `interval_seconds` to CloudWatch Logs,
/// as `role`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnhancedMonitoring {
    /// 1, 5, 10, 15, 30 or 60.
    pub interval_seconds: u32,
    /// A role RDS's monitoring service assumes ([`Role::rds_monitoring`]).
    pub role: Ref<Role>,
}

/// An RDS database instance. Private, encrypted, protected from deletion and backed up 7 days by
/// default, with an AWS-managed master password and IAM database authentication.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DbInstance {
    /// The DB instance identifier; `None` derives one from the stack name and logical id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    pub engine: DbEngine,
    pub engine_version: String,
    pub instance_class: String,
    pub allocated_storage_gib: u32,
    pub storage_encrypted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_name: Option<String>,
    pub master_username: String,
    pub master_password: MasterPassword,
    pub subnet_group: Ref<DbSubnetGroup>,
    pub security_groups: Vec<Ref<SecurityGroup>>,
    pub publicly_accessible: bool,
    pub multi_az: bool,
    pub backup_retention_days: u32,
    pub deletion_protection: bool,
    pub final_snapshot: FinalSnapshot,
    /// Users may also log in with an IAM token (`db.grant_connect(user)`); passwords keep
    /// working. On by default.
    pub iam_database_authentication: bool,
    /// Performance Insights, keeping this many days of data; `None`: off (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance_insights_retention_days: Option<u32>,
    /// `None`: off (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhanced_monitoring: Option<EnhancedMonitoring>,
}

impl DbInstance {
    pub fn mysql(
        engine_version: impl Into<String>,
        instance_class: impl Into<String>,
        subnet_group: &Ref<DbSubnetGroup>,
    ) -> Self {
        DbInstance {
            identifier: None,
            engine: DbEngine::Mysql,
            engine_version: engine_version.into(),
            instance_class: instance_class.into(),
            allocated_storage_gib: 20,
            storage_encrypted: true,
            db_name: None,
            master_username: "admin".into(),
            master_password: MasterPassword::Managed,
            subnet_group: subnet_group.clone(),
            security_groups: Vec::new(),
            publicly_accessible: false,
            multi_az: false,
            backup_retention_days: 7,
            deletion_protection: true,
            final_snapshot: FinalSnapshot::Take,
            iam_database_authentication: true,
            performance_insights_retention_days: None,
            enhanced_monitoring: None,
        }
    }

    pub fn postgres(
        engine_version: impl Into<String>,
        instance_class: impl Into<String>,
        subnet_group: &Ref<DbSubnetGroup>,
    ) -> Self {
        DbInstance {
            engine: DbEngine::Postgres,
            master_username: "postgres".into(),
            ..DbInstance::mysql(engine_version, instance_class, subnet_group)
        }
    }

    pub fn identifier(mut self, identifier: impl Into<String>) -> Self {
        self.identifier = Some(identifier.into());
        self
    }

    pub fn db_name(mut self, name: impl Into<String>) -> Self {
        self.db_name = Some(name.into());
        self
    }

    pub fn storage_gib(mut self, gib: u32) -> Self {
        self.allocated_storage_gib = gib;
        self
    }

    pub fn security_group(mut self, group: &Ref<SecurityGroup>) -> Self {
        self.security_groups.push(group.clone());
        self
    }

    pub fn master_username(mut self, name: impl Into<String>) -> Self {
        self.master_username = name.into();
        self
    }

    pub fn master_password(mut self, password: MasterPassword) -> Self {
        self.master_password = password;
        self
    }

    pub fn multi_az(mut self, on: bool) -> Self {
        self.multi_az = on;
        self
    }

    pub fn backup_retention_days(mut self, days: u32) -> Self {
        self.backup_retention_days = days;
        self
    }

    pub fn deletion_protection(mut self, on: bool) -> Self {
        self.deletion_protection = on;
        self
    }

    pub fn final_snapshot(mut self, policy: FinalSnapshot) -> Self {
        self.final_snapshot = policy;
        self
    }

    pub fn publicly_accessible(mut self, on: bool) -> Self {
        self.publicly_accessible = on;
        self
    }

    pub fn storage_encrypted(mut self, on: bool) -> Self {
        self.storage_encrypted = on;
        self
    }

    /// IAM database authentication (on by default).
    pub fn iam_database_authentication(mut self, on: bool) -> Self {
        self.iam_database_authentication = on;
        self
    }

    /// Turn Performance Insights on, keeping `retention_days` of data: 7 (free), a number of
    /// months times 31 (31 to 713), or 731. Not for MySQL and MariaDB on the micro and small
    /// burstable classes (db.t2, db.t3, db.t4g).
    pub fn performance_insights(mut self, retention_days: u32) -> Self {
        self.performance_insights_retention_days = Some(retention_days);
        self
    }

    /// Turn enhanced monitoring on: OS metrics every `interval_seconds` (1, 5, 10, 15, 30 or
    /// 60), sent as `role` ([`Role::rds_monitoring`]). Billed as CloudWatch Logs.
    pub fn enhanced_monitoring(mut self, interval_seconds: u32, role: &Ref<Role>) -> Self {
        self.enhanced_monitoring = Some(EnhancedMonitoring {
            interval_seconds,
            role: role.clone(),
        });
        self
    }
}

impl ResourceKind for DbInstance {
    const KIND: Kind = Kind::DbInstance;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    pub const ALL: PublicAccessBlock = PublicAccessBlock {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };

    pub fn is_full(&self) -> bool {
        *self == PublicAccessBlock::ALL
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "snake_case")]
pub enum BucketEncryption {
    /// SSE-S3 (AES256).
    S3Managed,
    /// SSE-KMS with the given key id or ARN (`None`: the AWS-managed `aws/s3` key).
    Kms {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_id: Option<String>,
    },
    /// No default encryption (only possible on buckets created before 2023; AWS always
    /// encrypts new objects now). Flagged by a lint.
    None,
}

/// An S3 bucket: public access blocked, encrypted and versioned by default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub name: String,
    pub public_access_block: PublicAccessBlock,
    pub encryption: BucketEncryption,
    pub versioning: bool,
    /// Allow destroy to empty the bucket (every object version) and delete it.
    pub force_destroy: bool,
    /// Expire objects after a number of days; `None`: kept until deleted (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    /// Server access logging into another bucket; `None`: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_logging: Option<AccessLogging>,
    /// The bucket policy, derived from what logs into the bucket ([`crate::Stack::derived`]):
    /// not set by hand. Empty: the policy is not infra's (it is neither read nor written).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<PolicyStatement>,
}

impl Bucket {
    pub fn new(name: impl Into<String>) -> Self {
        Bucket {
            name: name.into(),
            public_access_block: PublicAccessBlock::ALL,
            encryption: BucketEncryption::S3Managed,
            versioning: true,
            force_destroy: false,
            lifecycle: None,
            access_logging: None,
            policy: Vec::new(),
        }
    }

    /// A bucket for logs: what [`Bucket::new`] is, logs expire after 90 days
    /// ([`Bucket::expire_after_days`] changes that), and destroy may empty it — still only with
    /// `--allow-data-loss`. Load balancers
    /// ([`LoadBalancer::access_logs`](super::LoadBalancer::access_logs)) and buckets
    /// ([`Bucket::access_logging`]) log into it; its policy lets exactly them write.
    pub fn logs(name: impl Into<String>) -> Self {
        Bucket::new(name)
            .lifecycle(Lifecycle::expire_after_days(DEFAULT_LOG_DAYS))
            .force_destroy(true)
    }

    pub fn lifecycle(mut self, lifecycle: Lifecycle) -> Self {
        self.lifecycle = Some(lifecycle);
        self
    }

    /// Expire objects `days` after they were written, keeping the rest of the lifecycle rule
    /// (or the defaults of [`Lifecycle::expire_after_days`]).
    pub fn expire_after_days(mut self, days: u32) -> Self {
        let rule = self
            .lifecycle
            .unwrap_or_else(|| Lifecycle::expire_after_days(days));
        self.lifecycle = Some(Lifecycle {
            expire_after_days: days,
            ..rule
        });
        self
    }

    /// Server access logging into `target`, under `s3/` and this bucket's name.
    pub fn access_logging(self, target: &Ref<Bucket>) -> Self {
        let prefix = format!("s3/{}/", self.name);
        self.access_logging_with_prefix(target, prefix)
    }

    /// Server access logging into `target` under `prefix` (S3 appends the time and a unique
    /// string to it: end it with `/` for a folder).
    pub fn access_logging_with_prefix(
        mut self,
        target: &Ref<Bucket>,
        prefix: impl Into<String>,
    ) -> Self {
        self.access_logging = Some(AccessLogging {
            target: target.clone(),
            prefix: prefix.into(),
        });
        self
    }

    pub fn public_access_block(mut self, block: PublicAccessBlock) -> Self {
        self.public_access_block = block;
        self
    }

    pub fn encryption(mut self, encryption: BucketEncryption) -> Self {
        self.encryption = encryption;
        self
    }

    pub fn versioning(mut self, on: bool) -> Self {
        self.versioning = on;
        self
    }

    /// Opt in to deleting the bucket together with every object in it.
    pub fn force_destroy(mut self, on: bool) -> Self {
        self.force_destroy = on;
        self
    }
}

impl ResourceKind for Bucket {
    const KIND: Kind = Kind::Bucket;
}
