//! RDS and S3: the resources that hold data.

use serde::{Deserialize, Serialize};

use super::iam::Role;
use super::logs::{AccessLogging, Lifecycle, PolicyStatement, DEFAULT_LOG_DAYS};
use super::network::{SecurityGroup, Subnet};
use crate::refs::{Kind, Ref, ResourceKind};
use crate::secret::Sensitive;

/// A DB subnet group over subnets in at least two zones (`E0506`), all in one VPC (`E0509`).
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
/// let a = s.add("db_a", Subnet::private(&vpc, "10.0.21.0/24", "ap-northeast-2a"));
/// let c = s.add("db_c", Subnet::private(&vpc, "10.0.22.0/24", "ap-northeast-2c"));
/// s.add("db", DbSubnetGroup::new("database subnets", &[&a, &c]));
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DbSubnetGroup {
    pub description: String,
    pub subnets: Vec<Ref<Subnet>>,
}

impl DbSubnetGroup {
    /// A subnet group with `description` over `subnets` (two zones at least).
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

/// A database engine. [`DbInstance::mysql`], [`DbInstance::mariadb`] and
/// [`DbInstance::postgres`] choose one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbEngine {
    Mysql,
    Mariadb,
    Postgres,
}

impl DbEngine {
    /// The engine's name in RDS: `mysql`, `mariadb` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            DbEngine::Mysql => "mysql",
            DbEngine::Mariadb => "mariadb",
            DbEngine::Postgres => "postgres",
        }
    }

    /// 3306 for MySQL and MariaDB, 5432 for PostgreSQL.
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
///
/// Lints: public access, unencrypted storage, no deletion protection, fewer than 7 days of
/// backups, IAM authentication off and a password written in the stack (`INFRA-RDS-001` to
/// `-006`).
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
/// # let a = s.add("db_a", Subnet::private(&vpc, "10.0.21.0/24", "ap-northeast-2a"));
/// # let c = s.add("db_c", Subnet::private(&vpc, "10.0.22.0/24", "ap-northeast-2c"));
/// let subnets = s.add("db", DbSubnetGroup::new("database subnets", &[&a, &c]));
/// let db_sg = s.add("db", SecurityGroup::new(&vpc, "database"));
/// let db = s.add(
///     "db",
///     DbInstance::mysql("8.0", "db.t3.micro", &subnets)
///         .db_name("app")
///         .storage_gib(50)
///         .security_group(&db_sg),
/// );
/// s.output("db_endpoint", db.endpoint());
/// s.output("db_secret_arn", db.master_user_secret_arn());
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
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
    /// A MySQL instance of `engine_version` (`8.0`; a change of major version replaces it;
    /// `E0519`) and `instance_class` (`db.t3.micro`, `E0520`) in `subnet_group`. Defaults:
    /// identifier derived from the stack and logical id, 20 GiB encrypted storage, no initial
    /// database, master user `admin` with an AWS-managed password, no security groups, private,
    /// single-AZ, 7 days of backups, deletion protection, a final snapshot on delete, IAM
    /// database authentication on, Performance Insights and enhanced monitoring off.
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

    /// As [`DbInstance::mysql`], for MariaDB (`10.11`, `11.4`): port 3306, master user `admin`.
    /// IAM database authentication needs 10.11 or later (`E0510`).
    ///
    /// ```
    /// use infra_core::prelude::*;
    ///
    /// let mut s = Stack::new("demo", "ap-northeast-2");
    /// let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
    /// let a = s.add("a", Subnet::private(&vpc, "10.0.1.0/24", "ap-northeast-2a"));
    /// let c = s.add("c", Subnet::private(&vpc, "10.0.2.0/24", "ap-northeast-2c"));
    /// let subnets = s.add("db", DbSubnetGroup::new("database", &[&a, &c]));
    /// let db = s.add("db", DbInstance::mariadb("11.4", "db.t4g.micro", &subnets));
    /// s.output("db_host", db.endpoint());
    /// # assert!(!infra_core::validate::validate(&s).has_errors());
    /// ```
    pub fn mariadb(
        engine_version: impl Into<String>,
        instance_class: impl Into<String>,
        subnet_group: &Ref<DbSubnetGroup>,
    ) -> Self {
        DbInstance {
            engine: DbEngine::Mariadb,
            ..DbInstance::mysql(engine_version, instance_class, subnet_group)
        }
    }

    /// As [`DbInstance::mysql`], for PostgreSQL; the master user is `postgres`.
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

    /// The DB instance identifier: 1-63 letters, digits and single hyphens, starting with a
    /// letter, not ending with a hyphen (`E0502`). With one, a replacement deletes the old
    /// instance first. Default: derived from the stack name and logical id.
    pub fn identifier(mut self, identifier: impl Into<String>) -> Self {
        self.identifier = Some(identifier.into());
        self
    }

    /// A database created with the instance: 1-64 (MySQL) or 1-63 (PostgreSQL) letters,
    /// digits and `_`, starting with a letter (`E0507`). Default: none.
    pub fn db_name(mut self, name: impl Into<String>) -> Self {
        self.db_name = Some(name.into());
        self
    }

    /// Allocated storage in GiB, 20-65536 (`E0503`). Default: 20.
    pub fn storage_gib(mut self, gib: u32) -> Self {
        self.allocated_storage_gib = gib;
        self
    }

    /// Add a security group of the subnet group's VPC (`E0509`). Call once per group; default:
    /// none.
    pub fn security_group(mut self, group: &Ref<SecurityGroup>) -> Self {
        self.security_groups.push(group.clone());
        self
    }

    /// The master user: 1-16 (MySQL) or 1-63 (PostgreSQL) letters, digits and `_`, starting
    /// with a letter, not `rdsadmin` (`E0505`). Default: `admin` (MySQL), `postgres` (PostgreSQL).
    pub fn master_username(mut self, name: impl Into<String>) -> Self {
        self.master_username = name.into();
        self
    }

    /// Where the master password comes from (`E0504`). Default: [`MasterPassword::Managed`];
    /// [`MasterPassword::Plain`] fires `INFRA-RDS-006`.
    pub fn master_password(mut self, password: MasterPassword) -> Self {
        self.master_password = password;
        self
    }

    /// A standby in a second zone (the instance's price twice over). Default: off.
    pub fn multi_az(mut self, on: bool) -> Self {
        self.multi_az = on;
        self
    }

    /// Days of automated backups, 0-35 (`E0508`). Default: 7; fewer fires `INFRA-RDS-004`.
    pub fn backup_retention_days(mut self, days: u32) -> Self {
        self.backup_retention_days = days;
        self
    }

    /// Refuse deletion in AWS. Default: on; off fires `INFRA-RDS-003`.
    pub fn deletion_protection(mut self, on: bool) -> Self {
        self.deletion_protection = on;
        self
    }

    /// Whether deleting the instance takes a final snapshot. Default: [`FinalSnapshot::Take`].
    pub fn final_snapshot(mut self, policy: FinalSnapshot) -> Self {
        self.final_snapshot = policy;
        self
    }

    /// A public address for the instance. Default: off; on fires `INFRA-RDS-001`.
    pub fn publicly_accessible(mut self, on: bool) -> Self {
        self.publicly_accessible = on;
        self
    }

    /// Encrypt the storage (a change replaces the instance). Default: on; off fires
    /// `INFRA-RDS-002`.
    pub fn storage_encrypted(mut self, on: bool) -> Self {
        self.storage_encrypted = on;
        self
    }

    /// IAM database authentication, which [`Ref::grant_connect`] needs. Default: on; off fires
    /// `INFRA-RDS-005`. MariaDB has it from 10.11 (`E0510`).
    pub fn iam_database_authentication(mut self, on: bool) -> Self {
        self.iam_database_authentication = on;
        self
    }

    /// Turn Performance Insights on, keeping `retention_days` of data: 7 (free), a number of
    /// months times 31 (31 to 713), or 731. Not for MySQL and MariaDB on the micro and small
    /// burstable classes (db.t2, db.t3, db.t4g): `E0511`; other periods: `E0512`. Default: off.
    pub fn performance_insights(mut self, retention_days: u32) -> Self {
        self.performance_insights_retention_days = Some(retention_days);
        self
    }

    /// Turn enhanced monitoring on: OS metrics every `interval_seconds` (1, 5, 10, 15, 30 or
    /// 60: `E0513`), sent as `role`, which trusts RDS's monitoring service
    /// ([`Role::rds_monitoring`], `E0514`). Billed as CloudWatch Logs. Default: off.
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

/// S3 Block Public Access, per bucket. [`PublicAccessBlock::ALL`] is the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// All four settings on: no public ACLs or policies take effect.
    pub const ALL: PublicAccessBlock = PublicAccessBlock {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };

    /// Whether all four settings are on.
    pub fn is_full(&self) -> bool {
        *self == PublicAccessBlock::ALL
    }
}

/// A bucket's default encryption.
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
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// let uploads = s.add("uploads", Bucket::new("demo-uploads-apne2"));
/// s.output("uploads_bucket", uploads.bucket_name());
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
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
    /// A bucket named `name`: 3-63 lowercase letters, digits, `.` and `-`, globally unique
    /// (`E0501`). Defaults: public access blocked, SSE-S3, versioned, not force-destroyed.
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

    /// The lifecycle rule `infra-expire` (rules others added are kept). Default: none, except
    /// on [`Bucket::logs`].
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

    /// Block Public Access settings. Default: [`PublicAccessBlock::ALL`]; anything less fires
    /// `INFRA-S3-001`.
    pub fn public_access_block(mut self, block: PublicAccessBlock) -> Self {
        self.public_access_block = block;
        self
    }

    /// Default encryption. Default: [`BucketEncryption::S3Managed`];
    /// [`BucketEncryption::None`] fires `INFRA-S3-002`.
    pub fn encryption(mut self, encryption: BucketEncryption) -> Self {
        self.encryption = encryption;
        self
    }

    /// Object versioning. Default: on; off fires `INFRA-S3-003`.
    pub fn versioning(mut self, on: bool) -> Self {
        self.versioning = on;
        self
    }

    /// Opt in to deleting the bucket together with every object in it. Default: off, so
    /// destroying or replacing a bucket that holds objects is refused unless
    /// `--allow-data-loss` is given.
    pub fn force_destroy(mut self, on: bool) -> Self {
        self.force_destroy = on;
        self
    }
}

impl ResourceKind for Bucket {
    const KIND: Kind = Kind::Bucket;
}
