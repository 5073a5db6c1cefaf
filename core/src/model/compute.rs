//! Launch templates and Auto Scaling Groups.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::elb::TargetGroup;
use super::iam::Role;
use super::network::{SecurityGroup, Subnet};
use super::template::UserData;
use crate::refs::{Kind, Ref, ResourceKind};
use crate::stack::Output;

/// The machine image of a launch template: `Image::amazon_linux_2023()`, or
/// `Image::AmiId("ami-0abc...".into())`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Image {
    /// A fixed AMI id (`ami-0abc...`).
    AmiId(String),
    /// A public SSM parameter resolved at apply time (e.g. the latest Amazon Linux 2023).
    SsmParameter(String),
}

impl Image {
    /// The latest Amazon Linux 2023 for x86_64, via AWS's public SSM parameter.
    pub fn amazon_linux_2023() -> Self {
        Image::SsmParameter(
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64".into(),
        )
    }
}

/// Whether the instance metadata service requires session tokens (IMDSv2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpTokens {
    Required,
    Optional,
}

/// The instance metadata service's settings. The default is the safe one; to change it, write
/// the struct: `MetadataOptions { http_put_response_hop_limit: 2, ..MetadataOptions::default() }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataOptions {
    pub http_tokens: HttpTokens,
    pub http_put_response_hop_limit: u8,
}

impl Default for MetadataOptions {
    /// IMDSv2 required, hop limit 1 (containers on the host cannot reach the metadata service).
    fn default() -> Self {
        MetadataOptions {
            http_tokens: HttpTokens::Required,
            http_put_response_hop_limit: 1,
        }
    }
}

/// The instances' root volume (EBS): encrypted gp3 of the AMI's size by default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootVolume {
    /// `None`: the AMI's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gib: Option<u32>,
    /// `gp3` (the default) or `gp2`.
    pub volume_type: String,
    pub encrypted: bool,
    /// A KMS key (key ARN or alias ARN) instead of the account's default EBS key `aws/ebs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

impl Default for RootVolume {
    fn default() -> Self {
        RootVolume {
            size_gib: None,
            volume_type: "gp3".into(),
            encrypted: true,
            kms_key_id: None,
        }
    }
}

impl RootVolume {
    /// What a template without a block-device mapping gives its instances: the AMI's volume,
    /// unencrypted unless the account encrypts new EBS volumes by default.
    pub fn as_in_image() -> Self {
        RootVolume {
            encrypted: false,
            ..RootVolume::default()
        }
    }
}

/// A launch template. Any change to its data becomes a new template version and an instance
/// refresh of the Auto Scaling Groups that use it.
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
/// let app_sg = s.add("app", SecurityGroup::new(&vpc, "app"));
/// let role = s.add("app", Role::ec2().managed_policy(Role::SSM_MANAGED_INSTANCE_CORE));
/// s.add(
///     "app",
///     LaunchTemplate::new(Image::amazon_linux_2023(), "t3.micro")
///         .security_group(&app_sg)
///         .instance_role(&role)
///         .root_volume_size(30)
///         .user_data("#!/bin/sh\ndnf install -y docker\n"),
/// );
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaunchTemplate {
    pub image: Image,
    pub instance_type: String,
    /// User data as plain text (a shell script or cloud-init); encoded by the provider. With
    /// `user_data_vars`, a template: see [`UserData`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// The `${NAME}` placeholders of `user_data` filled at apply time, each with an attribute
    /// of another resource of the stack.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_data_vars: BTreeMap<String, Output>,
    pub security_groups: Vec<Ref<SecurityGroup>>,
    pub metadata_options: MetadataOptions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    #[serde(default)]
    pub root_volume: RootVolume,
    /// The role the instances act as, through its instance profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_role: Option<Ref<Role>>,
    /// Whether each instance gets a public IPv4 address. `None`: as its subnet says
    /// (`Subnet::public` maps one on launch, `Subnet::private` does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<bool>,
}

impl LaunchTemplate {
    /// Instances of `instance_type` (`FAMILY.SIZE`, e.g. `t3.micro`: `E0406`) from `image`.
    /// Defaults: no user data, no security groups, no key pair, no role; IMDSv2 required with
    /// hop limit 1; an encrypted gp3 root volume of the AMI's size.
    pub fn new(image: Image, instance_type: impl Into<String>) -> Self {
        LaunchTemplate {
            image,
            instance_type: instance_type.into(),
            user_data: None,
            user_data_vars: BTreeMap::new(),
            security_groups: Vec::new(),
            metadata_options: MetadataOptions::default(),
            key_name: None,
            root_volume: RootVolume::default(),
            instance_role: None,
            public_ip: None,
        }
    }

    /// Give each instance a public IPv4 address (`true`) or none (`false`), whatever its
    /// subnet's default (`Subnet::public` gives one). Without a NAT gateway, instances reach the
    /// internet (packages, images, SSM) only with one (lint INFRA-ASG-004 when they are left
    /// without in a public subnet).
    ///
    /// ```
    /// use infra_core::prelude::*;
    ///
    /// // No load balancer: the one host answers the internet itself.
    /// let host = LaunchTemplate::new(Image::amazon_linux_2023(), "t3.micro").public_ip(true);
    /// assert_eq!(host.public_ip, Some(true));
    /// ```
    pub fn public_ip(mut self, on: bool) -> Self {
        self.public_ip = Some(on);
        self
    }

    /// The role the instances act as (its instance profile goes into the template, so every
    /// version keeps it). The role must have an instance profile: [`Role::ec2`] (`E0606`).
    /// Default: none.
    pub fn instance_role(mut self, role: &Ref<Role>) -> Self {
        self.instance_role = Some(role.clone());
        self
    }

    /// The instances' user data: a string, or a [`UserData::template`] filled with other
    /// resources' attributes (`E0409`). At most 16384 bytes once base64-encoded (`E0402`);
    /// a literal secret in it fires `INFRA-EC2-003`. Default: none.
    pub fn user_data(mut self, script: impl Into<UserData>) -> Self {
        let UserData { text, vars } = script.into();
        self.user_data = Some(text);
        self.user_data_vars = vars;
        self
    }

    /// Add a security group (call once per group; all in one VPC, `E0404`). Default: none.
    pub fn security_group(mut self, group: &Ref<SecurityGroup>) -> Self {
        self.security_groups.push(group.clone());
        self
    }

    /// The name of an existing EC2 key pair for SSH, 1-255 ASCII characters (`E0412`).
    /// Default: none (a shell through SSM Session Manager needs no key).
    pub fn key_name(mut self, key: impl Into<String>) -> Self {
        self.key_name = Some(key.into());
        self
    }

    /// The root volume's size in GiB: 1-16384 (`E0410`), and at least the AMI's (checked by
    /// AWS at launch). Default: the AMI's size.
    pub fn root_volume_size(mut self, gib: u32) -> Self {
        self.root_volume.size_gib = Some(gib);
        self
    }

    /// The root volume's type: `gp3` (the default) or `gp2` (`E0410`).
    pub fn root_volume_type(mut self, volume_type: impl Into<String>) -> Self {
        self.root_volume.volume_type = volume_type.into();
        self
    }

    /// Encrypt the root volume with this KMS key (key or alias ARN, `E0411`) instead of the
    /// account's default EBS key `aws/ebs`.
    pub fn root_volume_kms_key(mut self, key: impl Into<String>) -> Self {
        self.root_volume.kms_key_id = Some(key.into());
        self
    }

    /// An unencrypted root volume (lint `INFRA-EC2-004`); drops a key set before. Default:
    /// encrypted.
    pub fn unencrypted_root_volume(mut self) -> Self {
        self.root_volume.encrypted = false;
        self.root_volume.kms_key_id = None;
        self
    }

    /// The metadata service's settings. Default: IMDSv2 required (optional tokens fire
    /// `INFRA-EC2-001`), hop limit 1 (1-64, `E0405`; above 1 fires `INFRA-EC2-002`).
    pub fn metadata_options(mut self, options: MetadataOptions) -> Self {
        self.metadata_options = options;
        self
    }
}

impl ResourceKind for LaunchTemplate {
    const KIND: Kind = Kind::LaunchTemplate;
}

/// Which checks make an Auto Scaling Group replace an instance: EC2's status checks, or those
/// and the load balancer's health checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HealthCheckType {
    Ec2,
    Elb,
}

/// Target tracking on the group's average CPU utilisation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuTargetTracking {
    pub target_percent: f64,
}

/// How launch-template changes roll through the group (an instance refresh). Defaults: 100 %
/// and 200 % healthy, no warmup set, skip matching instances, roll back on failure.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceRefresh {
    /// Percentage of desired capacity kept healthy during the refresh. 100 (the default) launches
    /// new instances before terminating old ones.
    pub min_healthy_percentage: u32,
    /// Upper bound while launching before terminating (100-200).
    pub max_healthy_percentage: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_warmup_seconds: Option<u32>,
    pub skip_matching: bool,
    pub auto_rollback: bool,
}

impl Default for InstanceRefresh {
    fn default() -> Self {
        InstanceRefresh {
            min_healthy_percentage: 100,
            max_healthy_percentage: 200,
            instance_warmup_seconds: None,
            skip_matching: true,
            auto_rollback: true,
        }
    }
}

/// An Auto Scaling Group running the latest version of a launch template. Its subnets, target
/// groups and its template's security groups are in one VPC (`E0404`).
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
/// let a = s.add("a", Subnet::private(&vpc, "10.0.1.0/24", "ap-northeast-2a"));
/// let c = s.add("c", Subnet::private(&vpc, "10.0.2.0/24", "ap-northeast-2c"));
/// let tg = s.add("web", TargetGroup::http(&vpc, 8080));
/// let lt = s.add("web", LaunchTemplate::new(Image::amazon_linux_2023(), "t3.micro"));
/// s.add(
///     "web",
///     AutoScalingGroup::new(&lt, &[&a, &c], 1, 4)
///         .target_group(&tg)
///         .scale_on_cpu(50.0),
/// );
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AutoScalingGroup {
    pub launch_template: Ref<LaunchTemplate>,
    pub subnets: Vec<Ref<Subnet>>,
    pub min_size: u32,
    pub max_size: u32,
    /// `None` leaves the desired capacity to scaling policies (set to `min_size` on create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_capacity: Option<u32>,
    pub target_groups: Vec<Ref<TargetGroup>>,
    pub health_check_type: HealthCheckType,
    pub health_check_grace_period_seconds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_target_tracking: Option<CpuTargetTracking>,
    pub instance_refresh: InstanceRefresh,
}

impl AutoScalingGroup {
    /// A group of `min_size..=max_size` instances (`E0401`) in `subnets` (at least one,
    /// `E0403`). Defaults: desired capacity left to scaling (`min_size` on create), EC2 health
    /// checks with a 300 s grace period, no target groups, no scaling policy,
    /// [`InstanceRefresh::default`].
    pub fn new(
        launch_template: &Ref<LaunchTemplate>,
        subnets: &[&Ref<Subnet>],
        min_size: u32,
        max_size: u32,
    ) -> Self {
        AutoScalingGroup {
            launch_template: launch_template.clone(),
            subnets: subnets.iter().map(|s| (*s).clone()).collect(),
            min_size,
            max_size,
            desired_capacity: None,
            target_groups: Vec::new(),
            health_check_type: HealthCheckType::Ec2,
            health_check_grace_period_seconds: 300,
            cpu_target_tracking: None,
            instance_refresh: InstanceRefresh::default(),
        }
    }

    /// Register instances with a target group and switch to ELB health checks (a later
    /// [`AutoScalingGroup::health_check`] overrides that). Call once per target group; default:
    /// none.
    pub fn target_group(mut self, target_group: &Ref<TargetGroup>) -> Self {
        self.target_groups.push(target_group.clone());
        self.health_check_type = HealthCheckType::Elb;
        self
    }

    /// Pin the desired capacity (`min_size <= n <= max_size`, `E0401`). Default: unset, so
    /// scaling policies own it and a plan ignores it.
    pub fn desired_capacity(mut self, n: u32) -> Self {
        self.desired_capacity = Some(n);
        self
    }

    /// Health-check type and grace period. Default: EC2, 300 s ([`HealthCheckType::Elb`] after
    /// [`AutoScalingGroup::target_group`]). In a target group, EC2 checks fire `INFRA-ASG-001`
    /// and a 0 s grace period `INFRA-ASG-002`.
    pub fn health_check(mut self, kind: HealthCheckType, grace_period_seconds: u32) -> Self {
        self.health_check_type = kind;
        self.health_check_grace_period_seconds = grace_period_seconds;
        self
    }

    /// Scale to keep average CPU near `percent` (above 0, at most 100: `E0408`) with a
    /// target-tracking policy. Default: no policy.
    pub fn scale_on_cpu(mut self, percent: f64) -> Self {
        self.cpu_target_tracking = Some(CpuTargetTracking {
            target_percent: percent,
        });
        self
    }

    /// How template changes roll out (`E0407`). Default: [`InstanceRefresh::default`].
    pub fn instance_refresh(mut self, preferences: InstanceRefresh) -> Self {
        self.instance_refresh = preferences;
        self
    }
}

impl ResourceKind for AutoScalingGroup {
    const KIND: Kind = Kind::AutoScalingGroup;
}
