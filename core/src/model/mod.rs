//! The resource types a stack is made of. Each is a plain serde struct with builder-style
//! constructors whose defaults are the safe choice.

mod compute;
mod data;
mod dns;
mod elb;
mod iam;
mod logs;
mod network;
mod template;

pub use compute::*;
pub use data::*;
pub use dns::*;
pub use elb::*;
pub use iam::*;
pub(crate) use logs::derive;
pub use logs::{
    is_log_target, AccessLogging, AccessLogs, Lifecycle, PolicyStatement, DEFAULT_LOG_DAYS,
};
pub use network::*;
pub use template::{is_var_name, placeholders, render, UserData};

use serde::{Deserialize, Serialize};

use crate::refs::{Address, Kind, ResourceKind};

/// Any resource, tagged by its type name in JSON (`"type": "ec2_vpc"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Resource {
    #[serde(rename = "ec2_vpc")]
    Vpc(Vpc),
    #[serde(rename = "ec2_subnet")]
    Subnet(Subnet),
    #[serde(rename = "ec2_internet_gateway")]
    InternetGateway(InternetGateway),
    #[serde(rename = "ec2_route_table")]
    RouteTable(RouteTable),
    #[serde(rename = "ec2_security_group")]
    SecurityGroup(SecurityGroup),
    #[serde(rename = "acm_certificate")]
    Certificate(Certificate),
    #[serde(rename = "elbv2_target_group")]
    TargetGroup(TargetGroup),
    #[serde(rename = "elbv2_load_balancer")]
    LoadBalancer(LoadBalancer),
    #[serde(rename = "elbv2_listener")]
    Listener(Listener),
    #[serde(rename = "elbv2_listener_rule")]
    ListenerRule(ListenerRule),
    #[serde(rename = "ec2_launch_template")]
    LaunchTemplate(LaunchTemplate),
    #[serde(rename = "autoscaling_group")]
    AutoScalingGroup(AutoScalingGroup),
    #[serde(rename = "rds_db_subnet_group")]
    DbSubnetGroup(DbSubnetGroup),
    #[serde(rename = "rds_db_instance")]
    DbInstance(DbInstance),
    #[serde(rename = "s3_bucket")]
    Bucket(Bucket),
    #[serde(rename = "iam_role")]
    Role(Role),
    #[serde(rename = "route53_zone")]
    HostedZone(HostedZone),
    #[serde(rename = "route53_record")]
    Record(Record),
}

macro_rules! resource_conversions {
    ($($variant:ident),* $(,)?) => {
        $(
            impl From<$variant> for Resource {
                fn from(r: $variant) -> Self {
                    Resource::$variant(r)
                }
            }
        )*

        impl Resource {
            /// The resource's type.
            pub fn kind(&self) -> Kind {
                match self {
                    $(Resource::$variant(_) => <$variant as ResourceKind>::KIND,)*
                }
            }
        }
    };
}

resource_conversions!(
    Vpc,
    Subnet,
    InternetGateway,
    RouteTable,
    SecurityGroup,
    Certificate,
    TargetGroup,
    LoadBalancer,
    Listener,
    ListenerRule,
    LaunchTemplate,
    AutoScalingGroup,
    DbSubnetGroup,
    DbInstance,
    Bucket,
    Role,
    HostedZone,
    Record,
);

impl Resource {
    /// The addresses this resource refers to, in field order, without duplicates. These are the
    /// edges of the dependency graph: a resource is created after everything it refers to.
    pub fn references(&self) -> Vec<Address> {
        let mut out: Vec<Address> = Vec::new();
        let mut push = |a: Address| {
            if !out.contains(&a) {
                out.push(a);
            }
        };
        match self {
            Resource::Vpc(_) | Resource::HostedZone(_) => {}
            Resource::Bucket(b) => b
                .access_logging
                .iter()
                .for_each(|l| push(l.target.address())),
            Resource::Certificate(c) => c.validated_in().iter().for_each(|z| push(z.address())),
            Resource::Subnet(s) => push(s.vpc.address()),
            Resource::InternetGateway(g) => push(g.vpc.address()),
            Resource::RouteTable(t) => {
                push(t.vpc.address());
                t.routes
                    .iter()
                    .for_each(|r| push(r.internet_gateway.address()));
                t.subnets.iter().for_each(|s| push(s.address()));
            }
            Resource::SecurityGroup(g) => {
                push(g.vpc.address());
                for rule in g.ingress.iter().chain(&g.egress) {
                    if let Peer::SecurityGroup(peer) = &rule.peer {
                        push(peer.address());
                    }
                }
            }
            Resource::TargetGroup(t) => push(t.vpc.address()),
            Resource::LoadBalancer(lb) => {
                lb.subnets.iter().for_each(|s| push(s.address()));
                lb.security_groups.iter().for_each(|s| push(s.address()));
                lb.access_logs.iter().for_each(|l| push(l.bucket.address()));
            }
            Resource::Listener(l) => {
                push(l.load_balancer.address());
                if let Some(c) = &l.certificate {
                    push(c.address());
                }
                if let ListenerAction::Forward { target_group } = &l.default_action {
                    push(target_group.address());
                }
            }
            Resource::ListenerRule(r) => {
                push(r.listener.address());
                if let ListenerAction::Forward { target_group } = &r.action {
                    push(target_group.address());
                }
            }
            Resource::LaunchTemplate(t) => {
                t.security_groups.iter().for_each(|s| push(s.address()));
                t.instance_role.iter().for_each(|r| push(r.address()));
                t.user_data_vars
                    .values()
                    .for_each(|v| push(v.resource().clone()));
            }
            Resource::AutoScalingGroup(g) => {
                push(g.launch_template.address());
                g.subnets.iter().for_each(|s| push(s.address()));
                g.target_groups.iter().for_each(|t| push(t.address()));
            }
            Resource::DbSubnetGroup(g) => g.subnets.iter().for_each(|s| push(s.address())),
            Resource::DbInstance(db) => {
                push(db.subnet_group.address());
                db.security_groups.iter().for_each(|s| push(s.address()));
                db.enhanced_monitoring
                    .iter()
                    .for_each(|m| push(m.role.address()));
            }
            Resource::Role(r) => r.grants.iter().for_each(|g| push(g.on.resource().clone())),
            Resource::Record(r) => {
                push(r.zone.address());
                if let RecordData::Alias { load_balancer, .. } = &r.data {
                    push(load_balancer.address());
                }
            }
        }
        out
    }
}

/// A resource with its logical id, as it appears in a stack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Declared {
    pub id: String,
    #[serde(flatten)]
    pub resource: Resource,
}

impl Declared {
    /// `type.id`, e.g. `ec2_subnet.public_a`.
    pub fn address(&self) -> Address {
        Address::new(self.resource.kind(), self.id.clone())
    }
}
