//! Typed handles between resources and the addresses that name them.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The type of a resource, as it appears in addresses (`ec2_subnet.public_a`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    #[serde(rename = "ec2_vpc")]
    Vpc,
    #[serde(rename = "ec2_subnet")]
    Subnet,
    #[serde(rename = "ec2_internet_gateway")]
    InternetGateway,
    #[serde(rename = "ec2_route_table")]
    RouteTable,
    #[serde(rename = "ec2_security_group")]
    SecurityGroup,
    #[serde(rename = "acm_certificate")]
    Certificate,
    #[serde(rename = "elbv2_target_group")]
    TargetGroup,
    #[serde(rename = "elbv2_load_balancer")]
    LoadBalancer,
    #[serde(rename = "elbv2_listener")]
    Listener,
    #[serde(rename = "elbv2_listener_rule")]
    ListenerRule,
    #[serde(rename = "ec2_launch_template")]
    LaunchTemplate,
    #[serde(rename = "autoscaling_group")]
    AutoScalingGroup,
    #[serde(rename = "rds_db_subnet_group")]
    DbSubnetGroup,
    #[serde(rename = "rds_db_instance")]
    DbInstance,
    #[serde(rename = "s3_bucket")]
    Bucket,
    #[serde(rename = "iam_role")]
    Role,
    #[serde(rename = "route53_zone")]
    HostedZone,
    #[serde(rename = "route53_record")]
    Record,
}

impl Kind {
    /// Every kind, in a stable order.
    pub const ALL: [Kind; 18] = [
        Kind::Vpc,
        Kind::Subnet,
        Kind::InternetGateway,
        Kind::RouteTable,
        Kind::SecurityGroup,
        Kind::Certificate,
        Kind::TargetGroup,
        Kind::LoadBalancer,
        Kind::Listener,
        Kind::ListenerRule,
        Kind::LaunchTemplate,
        Kind::AutoScalingGroup,
        Kind::DbSubnetGroup,
        Kind::DbInstance,
        Kind::Bucket,
        Kind::Role,
        Kind::HostedZone,
        Kind::Record,
    ];

    /// The type name in addresses and JSON (`ec2_subnet`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Vpc => "ec2_vpc",
            Kind::Subnet => "ec2_subnet",
            Kind::InternetGateway => "ec2_internet_gateway",
            Kind::RouteTable => "ec2_route_table",
            Kind::SecurityGroup => "ec2_security_group",
            Kind::Certificate => "acm_certificate",
            Kind::TargetGroup => "elbv2_target_group",
            Kind::LoadBalancer => "elbv2_load_balancer",
            Kind::Listener => "elbv2_listener",
            Kind::ListenerRule => "elbv2_listener_rule",
            Kind::LaunchTemplate => "ec2_launch_template",
            Kind::AutoScalingGroup => "autoscaling_group",
            Kind::DbSubnetGroup => "rds_db_subnet_group",
            Kind::DbInstance => "rds_db_instance",
            Kind::Bucket => "s3_bucket",
            Kind::Role => "iam_role",
            Kind::HostedZone => "route53_zone",
            Kind::Record => "route53_record",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let valid: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown resource type `{s}` (valid: {})", valid.join(", "))
            })
    }
}

/// A resource's address in a stack: its kind and logical id, shown as `ec2_subnet.public_a`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    pub kind: Kind,
    pub id: String,
}

impl Address {
    /// The address of the resource of `kind` with logical id `id`.
    pub fn new(kind: Kind, id: impl Into<String>) -> Self {
        Address {
            kind,
            id: id.into(),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind, self.id)
    }
}

impl FromStr for Address {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, id) = s.split_once('.').ok_or_else(|| {
            format!("`{s}` is not an address (expected TYPE.ID, e.g. ec2_vpc.main)")
        })?;
        if id.is_empty() {
            return Err(format!("`{s}` has an empty id (expected TYPE.ID)"));
        }
        Ok(Address::new(kind.parse()?, id))
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Implemented by every resource struct: ties the Rust type to its [`Kind`].
pub trait ResourceKind {
    const KIND: Kind;
}

/// A typed handle to a resource in the same stack, returned by [`crate::Stack::add`].
///
/// A subnet takes a `Ref<Vpc>`; handing it a `Ref<Subnet>` does not compile.
/// Serialized as the logical id alone.
pub struct Ref<T> {
    id: String,
    kind: PhantomData<fn() -> T>,
}

impl<T: ResourceKind> Ref<T> {
    /// A handle by logical id. Prefer the handle [`crate::Stack::add`] returns; this exists for
    /// code that reads stacks from data.
    pub fn from_id(id: impl Into<String>) -> Self {
        Ref {
            id: id.into(),
            kind: PhantomData,
        }
    }

    /// The logical id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The resource's address (`ec2_subnet.public_a`).
    pub fn address(&self) -> Address {
        Address::new(T::KIND, self.id.clone())
    }
}

impl<T> Clone for Ref<T> {
    fn clone(&self) -> Self {
        Ref {
            id: self.id.clone(),
            kind: PhantomData,
        }
    }
}

impl<T: ResourceKind> fmt::Debug for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ref({}.{})", T::KIND, self.id)
    }
}

impl<T> PartialEq for Ref<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl<T> Eq for Ref<T> {}
impl<T> Hash for Ref<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state)
    }
}
impl<T> PartialOrd for Ref<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Ref<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.id.cmp(&other.id)
    }
}

impl<T> Serialize for Ref<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.id)
    }
}

impl<'de, T> Deserialize<'de> for Ref<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Ref {
            id: String::deserialize(d)?,
            kind: PhantomData,
        })
    }
}
