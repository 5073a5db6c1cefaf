//! Lookups over a stack's resources by address, shared by the rules and the lints.

use std::collections::BTreeMap;

use crate::model::*;
use crate::refs::{Address, Kind, Ref};
use crate::stack::Stack;

use super::cidr::Cidr;

pub(crate) struct Index<'a> {
    pub stack: &'a Stack,
    /// The first declaration of every address.
    by_address: BTreeMap<Address, &'a Resource>,
}

macro_rules! getters {
    ($($name:ident: $variant:ident),* $(,)?) => {
        $(
            pub fn $name(&self, handle: &Ref<$variant>) -> Option<&'a $variant> {
                match self.by_address.get(&handle.address()) {
                    Some(Resource::$variant(r)) => Some(r),
                    _ => None,
                }
            }
        )*
    };
}

impl<'a> Index<'a> {
    pub fn new(stack: &'a Stack) -> Self {
        let mut by_address = BTreeMap::new();
        for declared in &stack.resources {
            by_address
                .entry(declared.address())
                .or_insert(&declared.resource);
        }
        Index { stack, by_address }
    }

    getters!(
        vpc: Vpc,
        subnet: Subnet,
        security_group: SecurityGroup,
        target_group: TargetGroup,
        load_balancer: LoadBalancer,
        listener: Listener,
        launch_template: LaunchTemplate,
        bucket: Bucket,
    );

    /// The first declaration at `address`.
    pub fn get(&self, address: &Address) -> Option<&'a Resource> {
        self.by_address.get(address).copied()
    }

    pub fn contains(&self, address: &Address) -> bool {
        self.by_address.contains_key(address)
    }

    /// Every declared address with its first declaration, in address order.
    pub fn resources(&self) -> impl Iterator<Item = (&Address, &'a Resource)> + '_ {
        self.by_address.iter().map(|(a, r)| (a, *r))
    }

    /// Declared ids of one kind, for "did you mean" help.
    pub fn ids_of(&self, kind: Kind) -> Vec<&str> {
        self.by_address
            .keys()
            .filter(|a| a.kind == kind)
            .map(|a| a.id.as_str())
            .collect()
    }

    pub fn vpc_cidr(&self, vpc: &Ref<Vpc>) -> Option<Cidr> {
        self.vpc(vpc)?.cidr.parse().ok()
    }

    pub fn subnet_vpc(&self, subnet: &Ref<Subnet>) -> Option<&'a str> {
        self.subnet(subnet).map(|s| s.vpc.id())
    }

    pub fn group_vpc(&self, group: &Ref<SecurityGroup>) -> Option<&'a str> {
        self.security_group(group).map(|g| g.vpc.id())
    }

    /// Whether a route table of the stack sends `subnet`'s internet traffic (0.0.0.0/0) to an
    /// internet gateway.
    pub fn routed_to_internet_gateway(&self, subnet: &Ref<Subnet>) -> bool {
        self.resources().any(|(_, r)| match r {
            Resource::RouteTable(t) => {
                t.subnets.contains(subnet) && t.routes.iter().any(|r| r.destination == "0.0.0.0/0")
            }
            _ => false,
        })
    }

    /// The (listener, load balancer) pairs whose listener, or a rule on it, forwards to
    /// `target_group`, in address order.
    pub fn forwarders(
        &self,
        target_group: &Ref<TargetGroup>,
    ) -> Vec<(&'a Listener, Ref<LoadBalancer>)> {
        let mut listeners: Vec<Ref<Listener>> = Vec::new();
        for (address, resource) in self.resources() {
            match resource {
                Resource::Listener(l) if forwards_to(&l.default_action, target_group) => {
                    listeners.push(Ref::from_id(address.id.clone()));
                }
                Resource::ListenerRule(r) if forwards_to(&r.action, target_group) => {
                    listeners.push(r.listener.clone());
                }
                _ => {}
            }
        }
        listeners.sort();
        listeners.dedup();
        listeners
            .iter()
            .filter_map(|l| self.listener(l))
            .map(|l| (l, l.load_balancer.clone()))
            .collect()
    }

    /// The security groups of the instances an ASG registers with `target_group`: ASGs listing
    /// it, their launch templates, the templates' groups. Sorted, without duplicates.
    pub fn instance_groups(&self, target_group: &Ref<TargetGroup>) -> Vec<Ref<SecurityGroup>> {
        let mut groups: Vec<Ref<SecurityGroup>> = self
            .resources()
            .filter_map(|(_, r)| match r {
                Resource::AutoScalingGroup(g) if g.target_groups.contains(target_group) => {
                    self.launch_template(&g.launch_template)
                }
                _ => None,
            })
            .flat_map(|t| t.security_groups.iter().cloned())
            .collect();
        groups.sort();
        groups.dedup();
        groups
    }
}

pub(crate) fn forwards_to(action: &ListenerAction, target_group: &Ref<TargetGroup>) -> bool {
    matches!(action, ListenerAction::Forward { target_group: t } if t == target_group)
}

/// The references of a resource with the field each one sits in (`subnets[1]`), in field order.
pub(crate) fn references_with_fields(resource: &Resource) -> Vec<(String, Address)> {
    let mut out = Vec::new();
    fn each<T: crate::refs::ResourceKind>(
        out: &mut Vec<(String, Address)>,
        field: &str,
        refs: &[Ref<T>],
    ) {
        for (i, r) in refs.iter().enumerate() {
            out.push((format!("{field}[{i}]"), r.address()));
        }
    }
    fn action(out: &mut Vec<(String, Address)>, field: &str, action: &ListenerAction) {
        if let ListenerAction::Forward { target_group } = action {
            out.push((format!("{field}.target_group"), target_group.address()));
        }
    }
    match resource {
        Resource::Vpc(_) | Resource::HostedZone(_) => {}
        Resource::Bucket(b) => {
            if let Some(l) = &b.access_logging {
                out.push(("access_logging.target".into(), l.target.address()));
            }
        }
        Resource::Certificate(c) => {
            if let Some(zone) = c.validated_in() {
                out.push(("validate_in".into(), zone.address()));
            }
        }
        Resource::Record(r) => {
            out.push(("zone".into(), r.zone.address()));
            if let crate::model::RecordData::Alias { load_balancer, .. } = &r.data {
                out.push(("data.load_balancer".into(), load_balancer.address()));
            }
        }
        Resource::Subnet(s) => out.push(("vpc".into(), s.vpc.address())),
        Resource::InternetGateway(g) => out.push(("vpc".into(), g.vpc.address())),
        Resource::RouteTable(t) => {
            out.push(("vpc".into(), t.vpc.address()));
            for (i, r) in t.routes.iter().enumerate() {
                out.push((
                    format!("routes[{i}].internet_gateway"),
                    r.internet_gateway.address(),
                ));
            }
            each(&mut out, "subnets", &t.subnets);
        }
        Resource::SecurityGroup(g) => {
            out.push(("vpc".into(), g.vpc.address()));
            for (name, rules) in [("ingress", &g.ingress), ("egress", &g.egress)] {
                for (i, rule) in rules.iter().enumerate() {
                    if let Peer::SecurityGroup(peer) = &rule.peer {
                        out.push((format!("{name}[{i}].peer"), peer.address()));
                    }
                }
            }
        }
        Resource::TargetGroup(t) => out.push(("vpc".into(), t.vpc.address())),
        Resource::LoadBalancer(lb) => {
            each(&mut out, "subnets", &lb.subnets);
            each(&mut out, "security_groups", &lb.security_groups);
            if let Some(l) = &lb.access_logs {
                out.push(("access_logs.bucket".into(), l.bucket.address()));
            }
        }
        Resource::Listener(l) => {
            out.push(("load_balancer".into(), l.load_balancer.address()));
            if let Some(c) = &l.certificate {
                out.push(("certificate".into(), c.address()));
            }
            action(&mut out, "default_action", &l.default_action);
        }
        Resource::ListenerRule(r) => {
            out.push(("listener".into(), r.listener.address()));
            action(&mut out, "action", &r.action);
        }
        Resource::LaunchTemplate(t) => {
            each(&mut out, "security_groups", &t.security_groups);
            if let Some(role) = &t.instance_role {
                out.push(("instance_role".into(), role.address()));
            }
            for (name, value) in &t.user_data_vars {
                out.push((format!("user_data_vars.{name}"), value.resource().clone()));
            }
        }
        Resource::AutoScalingGroup(g) => {
            out.push(("launch_template".into(), g.launch_template.address()));
            each(&mut out, "subnets", &g.subnets);
            each(&mut out, "target_groups", &g.target_groups);
        }
        Resource::DbSubnetGroup(g) => each(&mut out, "subnets", &g.subnets),
        Resource::DbInstance(db) => {
            out.push(("subnet_group".into(), db.subnet_group.address()));
            each(&mut out, "security_groups", &db.security_groups);
            if let Some(m) = &db.enhanced_monitoring {
                out.push(("enhanced_monitoring.role".into(), m.role.address()));
            }
        }
        Resource::Role(r) => {
            for (i, grant) in r.grants.iter().enumerate() {
                out.push((format!("grants[{i}]"), grant.on.resource().clone()));
            }
        }
    }
    out
}
