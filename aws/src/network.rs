//! VPC, subnets, internet gateway, route tables and security groups (EC2).
//!
//! Discovery is one tag-filtered, paginated describe per type, all issued at once, plus the two
//! DescribeVpcAttribute calls per VPC (DNS settings are not in DescribeVpcs). Routes,
//! route-table associations and security-group rules have no tags: they are read with their
//! parent and reconciled as whole sets. A security group's create or update reads its rules once,
//! before changing them, and reports the declared rules after, as discovery will read them.

use std::collections::BTreeMap;
use std::future::Future;

use aws_sdk_ec2::types::{
    self as ec2, AttributeBooleanValue, Filter, IpPermission, IpRange, Ipv6Range, ResourceType,
    Tag, TagSpecification, UserIdGroupPair, VpcAttributeName,
};
use futures::future::try_join_all;
use infra_core::model::{
    Declared, InternetGateway, IpProtocol, Peer, Resource, Route, RouteTable, Rule, SecurityGroup,
    Subnet, Vpc,
};
use infra_core::naming::physical_name;
use infra_core::provider::{Context, TAG_ID, TAG_STACK};
use infra_core::{Address, Kind, Observed, ProviderError, Ref, Stack};

use crate::relink::relink;
use crate::support::{
    api_error, create_once, error_code, is_not_found, owned_id, retry_not_found, wait_for, Poll,
    VISIBLE_WITHIN,
};
use crate::AwsProvider;

/// AWS caps security group names at 255 characters.
const GROUP_NAME_MAX: usize = 255;
/// Attempts for creates without a client token (each preceded by a lookup by tags).
const CREATE_ATTEMPTS: u32 = 4;

// ---------------------------------------------------------------------------------------------
// Shared helpers (also used by the launch-template module)
// ---------------------------------------------------------------------------------------------

/// `tag:infra:stack = stack`.
pub(crate) fn stack_filter(stack: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{TAG_STACK}"))
        .values(stack)
        .build()
}

/// `tag:infra:id = id`.
pub(crate) fn id_filter(id: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{TAG_ID}"))
        .values(id)
        .build()
}

/// EC2 tags as (key, value) pairs.
pub(crate) fn tag_pairs(tags: &[Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
}

/// The ownership tags as EC2 tags.
pub(crate) fn ownership(stack: &str, id: &str) -> Vec<Tag> {
    crate::support::ownership_tags(stack, id)
        .into_iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect()
}

/// A TagSpecification carrying the ownership tags, for a create call.
pub(crate) fn tag_spec(resource_type: ResourceType, stack: &str, id: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource_type)
        .set_tags(Some(ownership(stack, id)))
        .build()
}

/// SDK retries off, for creates guarded by [`create_once`].
pub(crate) fn no_retries() -> aws_sdk_ec2::config::Builder {
    aws_sdk_ec2::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled())
}

/// Map physical ids in `observed` back to logical ids using what the apply already knows, so a
/// create or update returns what discovery would.
pub(crate) fn relinked(ctx: &Context<'_>, observed: Observed) -> Observed {
    let mut all: Vec<Observed> = ctx.resolved.iter().cloned().collect();
    all.retain(|o| o.address != observed.address);
    all.push(observed);
    relink(all).pop().expect("relink keeps every resource")
}

/// Tag an existing EC2 resource with the ownership tags.
pub(crate) async fn tag_resource(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<(), ProviderError> {
    p.ec2
        .create_tags()
        .resources(&observed.physical_id)
        .set_tags(Some(ownership(ctx.stack, &observed.address.id)))
        .send()
        .await
        .map_err(|e| api_error("ec2:CreateTags", e))?;
    Ok(())
}

/// Which resources a describe call asks for.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// Everything tagged with this stack.
    Stack(&'a str),
    /// Everything tagged with this stack and logical id (the lookup before a create).
    Owned(&'a str, &'a str),
    /// One resource by physical id; NotFound gives an empty list.
    Id(&'a str),
}

impl Scope<'_> {
    fn filters(self) -> Option<Vec<Filter>> {
        match self {
            Scope::Stack(stack) => Some(vec![stack_filter(stack)]),
            Scope::Owned(stack, id) => Some(vec![stack_filter(stack), id_filter(id)]),
            Scope::Id(_) => None,
        }
    }

    fn id(self) -> Option<String> {
        match self {
            Scope::Id(id) => Some(id.to_string()),
            Scope::Stack(_) | Scope::Owned(..) => None,
        }
    }
}

fn not_found_is_empty<T>(
    scope: Scope<'_>,
    result: Result<Vec<T>, ProviderError>,
) -> Result<Vec<T>, ProviderError> {
    match result {
        Err(err) if matches!(scope, Scope::Id(_)) && is_not_found(&err) => Ok(Vec::new()),
        other => other,
    }
}

/// One paginated describe call, by tag filters or by id.
macro_rules! describe {
    ($p:expr, $scope:expr, $operation:ident, $set_ids:ident, $name:literal) => {{
        let scope = $scope;
        let mut request = $p.ec2.$operation().set_filters(scope.filters());
        if let Some(id) = scope.id() {
            request = request.$set_ids(id);
        }
        let result = request
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api_error($name, e));
        not_found_is_empty(scope, result)
    }};
}

async fn describe_vpcs(p: &AwsProvider, scope: Scope<'_>) -> Result<Vec<ec2::Vpc>, ProviderError> {
    describe!(p, scope, describe_vpcs, vpc_ids, "ec2:DescribeVpcs")
}

async fn describe_subnets(
    p: &AwsProvider,
    scope: Scope<'_>,
) -> Result<Vec<ec2::Subnet>, ProviderError> {
    describe!(
        p,
        scope,
        describe_subnets,
        subnet_ids,
        "ec2:DescribeSubnets"
    )
}

async fn describe_gateways(
    p: &AwsProvider,
    scope: Scope<'_>,
) -> Result<Vec<ec2::InternetGateway>, ProviderError> {
    describe!(
        p,
        scope,
        describe_internet_gateways,
        internet_gateway_ids,
        "ec2:DescribeInternetGateways"
    )
}

async fn describe_route_tables(
    p: &AwsProvider,
    scope: Scope<'_>,
) -> Result<Vec<ec2::RouteTable>, ProviderError> {
    describe!(
        p,
        scope,
        describe_route_tables,
        route_table_ids,
        "ec2:DescribeRouteTables"
    )
}

async fn describe_groups(
    p: &AwsProvider,
    scope: Scope<'_>,
) -> Result<Vec<ec2::SecurityGroup>, ProviderError> {
    describe!(
        p,
        scope,
        describe_security_groups,
        group_ids,
        "ec2:DescribeSecurityGroups"
    )
}

// ---------------------------------------------------------------------------------------------
// Discovery: AWS descriptions into the model (physical ids in references)
// ---------------------------------------------------------------------------------------------

pub(crate) async fn discover(
    p: &AwsProvider,
    stack: &Stack,
) -> Result<Vec<Observed>, ProviderError> {
    let scope = Scope::Stack(&stack.name);
    let (vpcs, subnets, gateways, tables, groups) = futures::try_join!(
        describe_vpcs(p, scope),
        describe_subnets(p, scope),
        describe_gateways(p, scope),
        describe_route_tables(p, scope),
        describe_groups(p, scope),
    )?;
    let owned = |tags: &[Tag]| owned_id(&stack.name, tag_pairs(tags));

    let mut out = try_join_all(
        vpcs.iter()
            .filter_map(|v| owned(v.tags()).map(|id| observe_vpc(p, id, v))),
    )
    .await?;
    out.extend(
        subnets
            .iter()
            .filter_map(|s| owned(s.tags()).map(|id| observe_subnet(id, s))),
    );
    out.extend(
        gateways
            .iter()
            .filter_map(|g| owned(g.tags()).map(|id| observe_gateway(id, g))),
    );
    out.extend(
        tables
            .iter()
            .filter_map(|t| owned(t.tags()).map(|id| observe_route_table(id, t))),
    );
    out.extend(
        groups
            .iter()
            .filter_map(|g| owned(g.tags()).map(|id| observe_group(id, g))),
    );
    tracing::debug!(stack = %stack.name, found = out.len(), "discovered network resources");
    Ok(out)
}

async fn vpc_attribute(
    p: &AwsProvider,
    vpc_id: &str,
    attribute: VpcAttributeName,
) -> Result<bool, ProviderError> {
    let out = p
        .ec2
        .describe_vpc_attribute()
        .vpc_id(vpc_id)
        .attribute(attribute.clone())
        .send()
        .await
        .map_err(|e| api_error("ec2:DescribeVpcAttribute", e))?;
    let value = match attribute {
        VpcAttributeName::EnableDnsHostnames => out.enable_dns_hostnames(),
        _ => out.enable_dns_support(),
    };
    Ok(value
        .and_then(AttributeBooleanValue::value)
        .unwrap_or(false))
}

async fn observe_vpc(
    p: &AwsProvider,
    id: String,
    vpc: &ec2::Vpc,
) -> Result<Observed, ProviderError> {
    let vpc_id = vpc.vpc_id().unwrap_or_default();
    let (support, hostnames) = futures::try_join!(
        vpc_attribute(p, vpc_id, VpcAttributeName::EnableDnsSupport),
        vpc_attribute(p, vpc_id, VpcAttributeName::EnableDnsHostnames),
    )?;
    let model = Vpc {
        cidr: vpc.cidr_block().unwrap_or_default().to_string(),
        enable_dns_support: support,
        enable_dns_hostnames: hostnames,
    };
    Ok(Observed::new(
        Address::new(Kind::Vpc, id),
        vpc_id,
        model.into(),
    ))
}

fn observe_subnet(id: String, subnet: &ec2::Subnet) -> Observed {
    let model = Subnet {
        vpc: Ref::from_id(subnet.vpc_id().unwrap_or_default()),
        cidr: subnet.cidr_block().unwrap_or_default().to_string(),
        availability_zone: subnet.availability_zone().unwrap_or_default().to_string(),
        map_public_ip_on_launch: subnet.map_public_ip_on_launch().unwrap_or(false),
    };
    Observed::new(
        Address::new(Kind::Subnet, id),
        subnet.subnet_id().unwrap_or_default(),
        model.into(),
    )
}

/// The VPC a gateway is attached to. AWS reports an attached gateway's state as `available`.
fn attached_vpc(gateway: &ec2::InternetGateway) -> Option<&str> {
    gateway
        .attachments()
        .iter()
        .find(|a| {
            !matches!(
                a.state(),
                Some(ec2::AttachmentStatus::Detached | ec2::AttachmentStatus::Detaching)
            )
        })
        .and_then(|a| a.vpc_id())
}

fn observe_gateway(id: String, gateway: &ec2::InternetGateway) -> Observed {
    // A detached gateway has no VPC: an empty reference, which differs from any declared one.
    let model = InternetGateway {
        vpc: Ref::from_id(attached_vpc(gateway).unwrap_or_default()),
    };
    Observed::new(
        Address::new(Kind::InternetGateway, id),
        gateway.internet_gateway_id().unwrap_or_default(),
        model.into(),
    )
}

/// Destination of a route: its IPv4 CIDR, IPv6 CIDR or prefix list.
fn route_destination(route: &ec2::Route) -> Option<&str> {
    route
        .destination_cidr_block()
        .or(route.destination_ipv6_cidr_block())
        .or(route.destination_prefix_list_id())
}

/// Target of a route. Only internet gateways can be declared; any other target is reported by
/// its id so it shows up as a diff (and is removed by the next apply).
fn route_target(route: &ec2::Route) -> &str {
    route
        .gateway_id()
        .or(route.nat_gateway_id())
        .or(route.transit_gateway_id())
        .or(route.vpc_peering_connection_id())
        .or(route.egress_only_internet_gateway_id())
        .or(route.network_interface_id())
        .or(route.instance_id())
        .or(route.local_gateway_id())
        .or(route.carrier_gateway_id())
        .unwrap_or_default()
}

/// Routes of a table as (destination, target), without the VPC's `local` route.
fn table_routes(table: &ec2::RouteTable) -> BTreeMap<String, String> {
    table
        .routes()
        .iter()
        .filter(|r| {
            r.gateway_id() != Some("local")
                && r.origin() != Some(&ec2::RouteOrigin::CreateRouteTable)
        })
        .filter_map(|r| route_destination(r).map(|d| (d.to_string(), route_target(r).to_string())))
        .collect()
}

/// Explicit subnet associations of a table: subnet id -> association id. The main-table
/// association is not a subnet association and is never touched.
fn table_associations(table: &ec2::RouteTable) -> BTreeMap<String, String> {
    table
        .associations()
        .iter()
        .filter(|a| a.main() != Some(true))
        .filter(|a| {
            !matches!(
                a.association_state().and_then(|s| s.state()),
                Some(
                    ec2::RouteTableAssociationStateCode::Disassociated
                        | ec2::RouteTableAssociationStateCode::Disassociating
                )
            )
        })
        .filter_map(|a| {
            Some((
                a.subnet_id()?.to_string(),
                a.route_table_association_id()?.to_string(),
            ))
        })
        .collect()
}

fn observe_route_table(id: String, table: &ec2::RouteTable) -> Observed {
    let model = RouteTable {
        vpc: Ref::from_id(table.vpc_id().unwrap_or_default()),
        routes: table_routes(table)
            .into_iter()
            .map(|(destination, target)| Route {
                destination,
                internet_gateway: Ref::from_id(target),
            })
            .collect(),
        subnets: table_associations(table)
            .into_keys()
            .map(Ref::from_id)
            .collect(),
    };
    Observed::new(
        Address::new(Kind::RouteTable, id),
        table.route_table_id().unwrap_or_default(),
        model.into(),
    )
}

fn observe_group(id: String, group: &ec2::SecurityGroup) -> Observed {
    let group_id = group.group_id().unwrap_or_default();
    // relink skips a resource's own physical id, so a rule naming its own group gets the
    // logical id here.
    let own = Some((group_id, id.as_str()));
    let model = SecurityGroup {
        vpc: Ref::from_id(group.vpc_id().unwrap_or_default()),
        description: group.description().unwrap_or_default().to_string(),
        ingress: rules_from_aws(group.ip_permissions(), own),
        egress: rules_from_aws(group.ip_permissions_egress(), own),
    };
    Observed::new(
        Address::new(Kind::SecurityGroup, id.clone()),
        group_id,
        model.into(),
    )
    .with_attribute("name", group.group_name().unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// Security-group rules
// ---------------------------------------------------------------------------------------------

const ALL_PORTS: (u16, u16) = (0, 65535);

/// One model rule per peer of each AWS permission (AWS groups several peers into one).
/// `own` = (own group id, own logical id) maps self-references to the logical id.
fn rules_from_aws(permissions: &[IpPermission], own: Option<(&str, &str)>) -> Vec<Rule> {
    let mut rules = Vec::new();
    for perm in permissions {
        let protocol = match perm.ip_protocol().unwrap_or_default() {
            "-1" | "all" => IpProtocol::All,
            "tcp" | "6" => IpProtocol::Tcp,
            "udp" | "17" => IpProtocol::Udp,
            "icmp" | "1" => IpProtocol::Icmp,
            other => {
                tracing::warn!(
                    protocol = other,
                    "security group rule with a protocol the model cannot express; ignored"
                );
                continue;
            }
        };
        let (from_port, to_port) = match (protocol, perm.from_port(), perm.to_port()) {
            (IpProtocol::All, _, _) => ALL_PORTS,
            // ICMP "every type" is -1 in AWS; the model spells it as the full range.
            (IpProtocol::Icmp, Some(-1) | None, _) => ALL_PORTS,
            (_, from, to) => (port(from, 0), port(to, 65535)),
        };
        let rule = |peer: Peer, description: Option<&str>| Rule {
            protocol,
            from_port,
            to_port,
            peer,
            description: description.filter(|d| !d.is_empty()).map(str::to_string),
        };
        for range in perm.ip_ranges() {
            rules.push(rule(
                Peer::Cidr(range.cidr_ip().unwrap_or_default().to_string()),
                range.description(),
            ));
        }
        for range in perm.ipv6_ranges() {
            rules.push(rule(
                Peer::Ipv6Cidr(range.cidr_ipv6().unwrap_or_default().to_string()),
                range.description(),
            ));
        }
        for pair in perm.user_id_group_pairs() {
            let group = pair.group_id().unwrap_or_default();
            let group = match own {
                Some((own_id, logical)) if own_id == group => logical,
                _ => group,
            };
            rules.push(rule(
                Peer::SecurityGroup(Ref::from_id(group)),
                pair.description(),
            ));
        }
        if !perm.prefix_list_ids().is_empty() {
            tracing::warn!(
                "security group rule to a prefix list: the model cannot express it; ignored"
            );
        }
    }
    rules.sort();
    // AWS holds a rule once; declared rules may repeat one.
    rules.dedup();
    rules
}

fn port(value: Option<i32>, default: u16) -> u16 {
    value.and_then(|v| u16::try_from(v).ok()).unwrap_or(default)
}

/// A model rule whose peer holds a physical group id, as one AWS permission.
fn permission(rule: &Rule) -> IpPermission {
    let (protocol, ports) = match rule.protocol {
        IpProtocol::All => ("-1", None),
        IpProtocol::Icmp if (rule.from_port, rule.to_port) == ALL_PORTS => ("icmp", Some((-1, -1))),
        IpProtocol::Icmp => (
            "icmp",
            Some((i32::from(rule.from_port), i32::from(rule.to_port))),
        ),
        IpProtocol::Tcp => (
            "tcp",
            Some((i32::from(rule.from_port), i32::from(rule.to_port))),
        ),
        IpProtocol::Udp => (
            "udp",
            Some((i32::from(rule.from_port), i32::from(rule.to_port))),
        ),
    };
    let builder = IpPermission::builder()
        .ip_protocol(protocol)
        .set_from_port(ports.map(|p| p.0))
        .set_to_port(ports.map(|p| p.1));
    let description = rule.description.clone();
    match &rule.peer {
        Peer::Cidr(cidr) => builder.ip_ranges(
            IpRange::builder()
                .cidr_ip(cidr)
                .set_description(description)
                .build(),
        ),
        Peer::Ipv6Cidr(cidr) => builder.ipv6_ranges(
            Ipv6Range::builder()
                .cidr_ipv6(cidr)
                .set_description(description)
                .build(),
        ),
        Peer::SecurityGroup(group) => builder.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(group.id())
                .set_description(description)
                .build(),
        ),
    }
    .build()
}

/// Declared rules with peers as physical group ids (`own` = this group's logical id and id).
fn physical_rules(
    ctx: &Context<'_>,
    own: (&str, &str),
    rules: &[Rule],
) -> Result<Vec<Rule>, ProviderError> {
    rules
        .iter()
        .map(|rule| {
            let mut rule = rule.clone();
            if let Peer::SecurityGroup(group) = &rule.peer {
                let id = if group.id() == own.0 {
                    own.1.to_string()
                } else {
                    ctx.resolved.physical_id(group)?.to_string()
                };
                rule.peer = Peer::SecurityGroup(Ref::from_id(id));
            }
            Ok(rule)
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Direction {
    Ingress,
    Egress,
}

/// What to change to turn `actual` rules into `desired` ones.
#[derive(Debug, Default, PartialEq)]
struct RuleChanges {
    authorize: Vec<Rule>,
    revoke: Vec<Rule>,
    /// Same rule, new description (AWS rejects authorizing it again).
    describe: Vec<Rule>,
}

fn rule_changes(desired: &[Rule], actual: &[Rule]) -> RuleChanges {
    let same_rule = |a: &Rule, b: &Rule| {
        (a.protocol, a.from_port, a.to_port, &a.peer)
            == (b.protocol, b.from_port, b.to_port, &b.peer)
    };
    let missing: Vec<&Rule> = desired.iter().filter(|r| !actual.contains(r)).collect();
    let extra: Vec<&Rule> = actual.iter().filter(|r| !desired.contains(r)).collect();
    let mut changes = RuleChanges::default();
    for rule in &missing {
        if extra.iter().any(|e| same_rule(e, rule)) {
            changes.describe.push((*rule).clone());
        } else {
            changes.authorize.push((*rule).clone());
        }
    }
    changes.revoke = extra
        .into_iter()
        .filter(|e| !missing.iter().any(|m| same_rule(m, e)))
        .cloned()
        .collect();
    changes
}

async fn apply_rule_changes(
    p: &AwsProvider,
    group_id: &str,
    direction: Direction,
    changes: RuleChanges,
) -> Result<(), ProviderError> {
    let perms = |rules: &[Rule]| Some(rules.iter().map(permission).collect::<Vec<_>>());
    tracing::debug!(
        group_id,
        ?direction,
        ?changes,
        "reconciling security group rules"
    );
    if !changes.authorize.is_empty() {
        let perms = perms(&changes.authorize);
        match direction {
            Direction::Ingress => p
                .ec2
                .authorize_security_group_ingress()
                .group_id(group_id)
                .set_ip_permissions(perms)
                .send()
                .await
                .map(drop)
                .map_err(|e| api_error("ec2:AuthorizeSecurityGroupIngress", e))?,
            Direction::Egress => p
                .ec2
                .authorize_security_group_egress()
                .group_id(group_id)
                .set_ip_permissions(perms)
                .send()
                .await
                .map(drop)
                .map_err(|e| api_error("ec2:AuthorizeSecurityGroupEgress", e))?,
        }
    }
    if !changes.describe.is_empty() {
        let perms = perms(&changes.describe);
        match direction {
            Direction::Ingress => p
                .ec2
                .update_security_group_rule_descriptions_ingress()
                .group_id(group_id)
                .set_ip_permissions(perms)
                .send()
                .await
                .map(drop)
                .map_err(|e| api_error("ec2:UpdateSecurityGroupRuleDescriptionsIngress", e))?,
            Direction::Egress => p
                .ec2
                .update_security_group_rule_descriptions_egress()
                .group_id(group_id)
                .set_ip_permissions(perms)
                .send()
                .await
                .map(drop)
                .map_err(|e| api_error("ec2:UpdateSecurityGroupRuleDescriptionsEgress", e))?,
        }
    }
    if !changes.revoke.is_empty() {
        let perms = perms(&changes.revoke);
        match direction {
            Direction::Ingress => p
                .ec2
                .revoke_security_group_ingress()
                .group_id(group_id)
                .set_ip_permissions(perms)
                .send()
                .await
                .map(drop)
                .map_err(|e| api_error("ec2:RevokeSecurityGroupIngress", e))?,
            Direction::Egress => p
                .ec2
                .revoke_security_group_egress()
                .group_id(group_id)
                .set_ip_permissions(perms)
                .send()
                .await
                .map(drop)
                .map_err(|e| api_error("ec2:RevokeSecurityGroupEgress", e))?,
        }
    }
    Ok(())
}

/// Make the group's ingress and egress rules exactly the declared ones, starting from `current`
/// (the group as just described) or else from a read of it. Returns the group as last described,
/// before its rules were changed.
///
/// Authorize and revoke are not idempotent: when an earlier attempt took effect but its answer
/// was lost, the SDK's retry gets `InvalidPermission.Duplicate` (or `.NotFound` for a revoke),
/// and AWS rejects the whole batch. Then the rules are read again and the rest reconciled.
async fn reconcile_rules(
    p: &AwsProvider,
    ctx: &Context<'_>,
    id: &str,
    group_id: &str,
    desired: &SecurityGroup,
    mut current: Option<ec2::SecurityGroup>,
) -> Result<ec2::SecurityGroup, ProviderError> {
    let mut rounds = 0;
    loop {
        let group = match current.take() {
            Some(group) => group,
            None => read_group(p, group_id).await?,
        };
        match reconcile_rules_once(p, ctx, id, group_id, &group, desired).await {
            Ok(()) => return Ok(group),
            Err(e)
                if rounds < 3
                    && matches!(
                        error_code(&e),
                        Some("InvalidPermission.Duplicate" | "InvalidPermission.NotFound")
                    ) =>
            {
                tracing::debug!(group_id, error = %e, "rules changed under us; reading them again");
                rounds += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One resource by id; a new one may not be visible at once (eventual consistency).
async fn read_by_id<T, F, Fut>(kind: Kind, id: &str, describe: F) -> Result<T, ProviderError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Vec<T>, ProviderError>>,
{
    retry_not_found(VISIBLE_WITHIN, || async {
        describe()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| gone(kind, id))
    })
    .await
}

async fn read_group(p: &AwsProvider, group_id: &str) -> Result<ec2::SecurityGroup, ProviderError> {
    read_by_id(Kind::SecurityGroup, group_id, || {
        describe_groups(p, Scope::Id(group_id))
    })
    .await
}

async fn reconcile_rules_once(
    p: &AwsProvider,
    ctx: &Context<'_>,
    id: &str,
    group_id: &str,
    current: &ec2::SecurityGroup,
    desired: &SecurityGroup,
) -> Result<(), ProviderError> {
    let own = (id, group_id);
    let ingress = rule_changes(
        &physical_rules(ctx, own, &desired.ingress)?,
        &rules_from_aws(current.ip_permissions(), None),
    );
    let egress = rule_changes(
        &physical_rules(ctx, own, &desired.egress)?,
        &rules_from_aws(current.ip_permissions_egress(), None),
    );
    apply_rule_changes(p, group_id, Direction::Ingress, ingress).await?;
    apply_rule_changes(p, group_id, Direction::Egress, egress).await
}

/// What discovery reports for `group` once its rules are the declared ones, without reading it
/// again: AWS keeps rules as they are sent (peers in network form, which validation requires),
/// and discovery splits AWS's permissions into one rule per peer just as they were sent.
/// (AuthorizeSecurityGroupIngress does answer with the rules it made, but moto 5.2 answers with
/// those of the last permission only.)
fn observe_reconciled(
    ctx: &Context<'_>,
    id: &str,
    group: &ec2::SecurityGroup,
    desired: &SecurityGroup,
) -> Result<Observed, ProviderError> {
    let own = (id, group.group_id().unwrap_or_default());
    let permissions = |rules: &[Rule]| -> Result<Vec<IpPermission>, ProviderError> {
        Ok(physical_rules(ctx, own, rules)?
            .iter()
            .map(permission)
            .collect())
    };
    let reconciled = ec2::SecurityGroup::builder()
        .set_group_id(group.group_id().map(str::to_string))
        .set_group_name(group.group_name().map(str::to_string))
        .set_description(group.description().map(str::to_string))
        .set_vpc_id(group.vpc_id().map(str::to_string))
        .set_ip_permissions(Some(permissions(&desired.ingress)?))
        .set_ip_permissions_egress(Some(permissions(&desired.egress)?))
        .build();
    Ok(relinked(ctx, observe_group(id.to_string(), &reconciled)))
}

// ---------------------------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------------------------

/// A NotFound error for a resource that vanished between two calls.
fn gone(kind: Kind, physical_id: &str) -> ProviderError {
    ProviderError::Api {
        operation: format!("ec2:Describe ({kind})"),
        code: "InvalidID.NotFound".into(),
        message: format!("{physical_id} is not visible"),
    }
}

fn wrong_kind(desired: &Declared) -> ProviderError {
    ProviderError::Other(format!(
        "{}: the network module serves ec2_vpc, ec2_subnet, ec2_internet_gateway, ec2_route_table and ec2_security_group, not {}",
        desired.address(),
        desired.resource.kind()
    ))
}

pub(crate) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
) -> Result<Observed, ProviderError> {
    let id = desired.id.as_str();
    let owned = Scope::Owned(ctx.stack, id);
    tracing::debug!(address = %desired.address(), "creating");
    let physical_id = match &desired.resource {
        Resource::Vpc(vpc) => {
            let vpc_id = create_once(
                CREATE_ATTEMPTS,
                || async {
                    Ok(describe_vpcs(p, owned)
                        .await?
                        .first()
                        .and_then(|v| v.vpc_id().map(str::to_string)))
                },
                || async {
                    p.ec2
                        .create_vpc()
                        .cidr_block(&vpc.cidr)
                        .tag_specifications(tag_spec(ResourceType::Vpc, ctx.stack, id))
                        .customize()
                        .config_override(no_retries())
                        .send()
                        .await
                        .map_err(|e| api_error("ec2:CreateVpc", e))?
                        .vpc()
                        .and_then(|v| v.vpc_id().map(str::to_string))
                        .ok_or_else(|| {
                            ProviderError::Other("ec2:CreateVpc returned no VPC id".into())
                        })
                },
            )
            .await?;
            set_vpc_dns(p, &vpc_id, vpc).await?;
            vpc_id
        }
        Resource::Subnet(subnet) => {
            let vpc_id = ctx.resolved.physical_id(&subnet.vpc)?;
            let subnet_id = create_once(
                CREATE_ATTEMPTS,
                || async {
                    Ok(describe_subnets(p, owned)
                        .await?
                        .first()
                        .and_then(|s| s.subnet_id().map(str::to_string)))
                },
                || async {
                    p.ec2
                        .create_subnet()
                        .vpc_id(vpc_id)
                        .cidr_block(&subnet.cidr)
                        .availability_zone(&subnet.availability_zone)
                        .tag_specifications(tag_spec(ResourceType::Subnet, ctx.stack, id))
                        .customize()
                        .config_override(no_retries())
                        .send()
                        .await
                        .map_err(|e| api_error("ec2:CreateSubnet", e))?
                        .subnet()
                        .and_then(|s| s.subnet_id().map(str::to_string))
                        .ok_or_else(|| {
                            ProviderError::Other("ec2:CreateSubnet returned no subnet id".into())
                        })
                },
            )
            .await?;
            // CreateSubnet cannot set it: always a second call.
            set_map_public_ip(p, &subnet_id, subnet.map_public_ip_on_launch).await?;
            subnet_id
        }
        Resource::InternetGateway(gateway) => {
            let vpc_id = ctx.resolved.physical_id(&gateway.vpc)?;
            let gateway_id = create_once(
                CREATE_ATTEMPTS,
                || async {
                    Ok(describe_gateways(p, owned)
                        .await?
                        .first()
                        .and_then(|g| g.internet_gateway_id().map(str::to_string)))
                },
                || async {
                    p.ec2
                        .create_internet_gateway()
                        .tag_specifications(tag_spec(ResourceType::InternetGateway, ctx.stack, id))
                        .customize()
                        .config_override(no_retries())
                        .send()
                        .await
                        .map_err(|e| api_error("ec2:CreateInternetGateway", e))?
                        .internet_gateway()
                        .and_then(|g| g.internet_gateway_id().map(str::to_string))
                        .ok_or_else(|| {
                            ProviderError::Other(
                                "ec2:CreateInternetGateway returned no gateway id".into(),
                            )
                        })
                },
            )
            .await?;
            attach_gateway(p, &gateway_id, vpc_id).await?;
            gateway_id
        }
        Resource::RouteTable(table) => {
            let vpc_id = ctx.resolved.physical_id(&table.vpc)?;
            let table_id = p
                .ec2
                .create_route_table()
                .vpc_id(vpc_id)
                .client_token(crate::support::client_token(
                    ctx.stack,
                    id,
                    &desired.resource,
                ))
                .tag_specifications(tag_spec(ResourceType::RouteTable, ctx.stack, id))
                .send()
                .await
                .map_err(|e| api_error("ec2:CreateRouteTable", e))?
                .route_table()
                .and_then(|t| t.route_table_id().map(str::to_string))
                .ok_or_else(|| {
                    ProviderError::Other("ec2:CreateRouteTable returned no route table id".into())
                })?;
            reconcile_route_table(p, ctx, &table_id, table).await?;
            table_id
        }
        Resource::SecurityGroup(group) => {
            let vpc_id = ctx.resolved.physical_id(&group.vpc)?;
            let name = physical_name(ctx.stack, desired, GROUP_NAME_MAX);
            // A group found by the lookup comes with its rules. A new one is read for them: AWS
            // gives it an allow-all egress rule (and an IPv6 one in a VPC with IPv6), which
            // reconciling removes when undeclared.
            let (group_id, found) = create_once(
                CREATE_ATTEMPTS,
                || async {
                    Ok(describe_groups(p, owned)
                        .await?
                        .into_iter()
                        .find_map(|g| Some((g.group_id()?.to_string(), Some(g)))))
                },
                || async {
                    p.ec2
                        .create_security_group()
                        .group_name(&name)
                        .description(&group.description)
                        .vpc_id(vpc_id)
                        .tag_specifications(tag_spec(ResourceType::SecurityGroup, ctx.stack, id))
                        .customize()
                        .config_override(no_retries())
                        .send()
                        .await
                        .map_err(|e| api_error("ec2:CreateSecurityGroup", e))?
                        .group_id()
                        .map(|group_id| (group_id.to_string(), None))
                        .ok_or_else(|| {
                            ProviderError::Other(
                                "ec2:CreateSecurityGroup returned no group id".into(),
                            )
                        })
                },
            )
            .await?;
            let before = reconcile_rules(p, ctx, id, &group_id, group, found).await?;
            return observe_reconciled(ctx, id, &before, group);
        }
        _ => return Err(wrong_kind(desired)),
    };
    observe_after_change(p, ctx, &desired.address(), &physical_id).await
}

/// Read a resource back after a change, as discovery reports it.
async fn observe_after_change(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    physical_id: &str,
) -> Result<Observed, ProviderError> {
    let observed = retry_not_found(VISIBLE_WITHIN, || async {
        observe_one(p, address, physical_id)
            .await?
            .ok_or_else(|| gone(address.kind, physical_id))
    })
    .await?;
    Ok(relinked(ctx, observed))
}

/// One resource by physical id, with `address`'s logical id (tags are not consulted).
async fn observe_one(
    p: &AwsProvider,
    address: &Address,
    physical_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    let scope = Scope::Id(physical_id);
    let id = address.id.clone();
    Ok(match address.kind {
        Kind::Vpc => match describe_vpcs(p, scope).await?.first() {
            Some(vpc) => Some(observe_vpc(p, id, vpc).await?),
            None => None,
        },
        Kind::Subnet => describe_subnets(p, scope)
            .await?
            .first()
            .map(|s| observe_subnet(id, s)),
        Kind::InternetGateway => describe_gateways(p, scope)
            .await?
            .first()
            .map(|g| observe_gateway(id, g)),
        Kind::RouteTable => describe_route_tables(p, scope)
            .await?
            .first()
            .map(|t| observe_route_table(id, t)),
        Kind::SecurityGroup => describe_groups(p, scope)
            .await?
            .first()
            .map(|g| observe_group(id, g)),
        other => {
            return Err(ProviderError::Other(format!(
                "{address}: the network module cannot read {other} resources"
            )))
        }
    })
}

async fn set_vpc_dns(p: &AwsProvider, vpc_id: &str, vpc: &Vpc) -> Result<(), ProviderError> {
    // One attribute per ModifyVpcAttribute call (AWS rejects two at once).
    let flag = |on: bool| AttributeBooleanValue::builder().value(on).build();
    p.ec2
        .modify_vpc_attribute()
        .vpc_id(vpc_id)
        .enable_dns_support(flag(vpc.enable_dns_support))
        .send()
        .await
        .map_err(|e| api_error("ec2:ModifyVpcAttribute", e))?;
    p.ec2
        .modify_vpc_attribute()
        .vpc_id(vpc_id)
        .enable_dns_hostnames(flag(vpc.enable_dns_hostnames))
        .send()
        .await
        .map_err(|e| api_error("ec2:ModifyVpcAttribute", e))?;
    Ok(())
}

async fn set_map_public_ip(
    p: &AwsProvider,
    subnet_id: &str,
    on: bool,
) -> Result<(), ProviderError> {
    p.ec2
        .modify_subnet_attribute()
        .subnet_id(subnet_id)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(on).build())
        .send()
        .await
        .map_err(|e| api_error("ec2:ModifySubnetAttribute", e))?;
    Ok(())
}

/// Attach unless already attached to `vpc_id` (a create retried after a lost response).
async fn attach_gateway(
    p: &AwsProvider,
    gateway_id: &str,
    vpc_id: &str,
) -> Result<(), ProviderError> {
    let current = read_gateway(p, gateway_id).await?;
    if attached_vpc(&current) == Some(vpc_id) {
        return Ok(());
    }
    let attached = p
        .ec2
        .attach_internet_gateway()
        .internet_gateway_id(gateway_id)
        .vpc_id(vpc_id)
        .send()
        .await
        .map_err(|e| api_error("ec2:AttachInternetGateway", e));
    match attached {
        // An attempt whose answer was lost attached it; the SDK's retry is told so.
        Err(e) if error_code(&e) == Some("Resource.AlreadyAssociated") => {
            if attached_vpc(&read_gateway(p, gateway_id).await?) == Some(vpc_id) {
                Ok(())
            } else {
                Err(e)
            }
        }
        other => other.map(drop),
    }
}

async fn read_gateway(
    p: &AwsProvider,
    gateway_id: &str,
) -> Result<ec2::InternetGateway, ProviderError> {
    read_by_id(Kind::InternetGateway, gateway_id, || {
        describe_gateways(p, Scope::Id(gateway_id))
    })
    .await
}

async fn read_route_table(
    p: &AwsProvider,
    table_id: &str,
) -> Result<ec2::RouteTable, ProviderError> {
    read_by_id(Kind::RouteTable, table_id, || {
        describe_route_tables(p, Scope::Id(table_id))
    })
    .await
}

/// Set the destination field a route request needs: IPv4 CIDR, IPv6 CIDR or prefix list.
macro_rules! with_destination {
    ($request:expr, $destination:expr) => {{
        let destination: &str = $destination;
        if destination.starts_with("pl-") {
            $request.destination_prefix_list_id(destination)
        } else if destination.contains(':') {
            $request.destination_ipv6_cidr_block(destination)
        } else {
            $request.destination_cidr_block(destination)
        }
    }};
}

/// Make the table's routes and subnet associations exactly the declared ones.
async fn reconcile_route_table(
    p: &AwsProvider,
    ctx: &Context<'_>,
    table_id: &str,
    desired: &RouteTable,
) -> Result<(), ProviderError> {
    let current = read_route_table(p, table_id).await?;
    let actual_routes = table_routes(&current);
    let mut wanted_routes = BTreeMap::new();
    for route in &desired.routes {
        wanted_routes.insert(
            route.destination.clone(),
            ctx.resolved
                .physical_id(&route.internet_gateway)?
                .to_string(),
        );
    }
    for (destination, gateway) in &wanted_routes {
        match actual_routes.get(destination) {
            Some(target) if target == gateway => {}
            Some(_) => {
                let request = p
                    .ec2
                    .replace_route()
                    .route_table_id(table_id)
                    .gateway_id(gateway);
                with_destination!(request, destination)
                    .send()
                    .await
                    .map_err(|e| api_error("ec2:ReplaceRoute", e))?;
            }
            None => {
                let request = p
                    .ec2
                    .create_route()
                    .route_table_id(table_id)
                    .gateway_id(gateway);
                let created = with_destination!(request, destination)
                    .send()
                    .await
                    .map_err(|e| api_error("ec2:CreateRoute", e));
                match created {
                    // An attempt whose answer was lost made it; the SDK's retry is told so.
                    Err(e) if error_code(&e) == Some("RouteAlreadyExists") => {
                        let now = table_routes(&read_route_table(p, table_id).await?);
                        if now.get(destination) != Some(gateway) {
                            return Err(e);
                        }
                    }
                    other => drop(other?),
                }
            }
        }
    }
    for destination in actual_routes
        .keys()
        .filter(|d| !wanted_routes.contains_key(*d))
    {
        let request = p.ec2.delete_route().route_table_id(table_id);
        // NotFound: gone already, or an attempt whose answer was lost deleted it.
        let deleted = with_destination!(request, destination)
            .send()
            .await
            .map_err(|e| api_error("ec2:DeleteRoute", e));
        match deleted {
            Err(e) if is_not_found(&e) => {}
            other => drop(other?),
        }
    }

    let actual_subnets = table_associations(&current);
    let mut wanted_subnets = Vec::new();
    for subnet in &desired.subnets {
        wanted_subnets.push(ctx.resolved.physical_id(subnet)?.to_string());
    }
    for subnet_id in wanted_subnets
        .iter()
        .filter(|s| !actual_subnets.contains_key(*s))
    {
        associate_subnet(p, table_id, subnet_id).await?;
    }
    for (subnet_id, association_id) in &actual_subnets {
        if !wanted_subnets.contains(subnet_id) {
            let done = p
                .ec2
                .disassociate_route_table()
                .association_id(association_id)
                .send()
                .await
                .map_err(|e| api_error("ec2:DisassociateRouteTable", e));
            match done {
                Err(e) if is_not_found(&e) => {}
                other => drop(other?),
            }
        }
    }
    Ok(())
}

/// Associate a subnet; if it is explicitly associated with another table, move it here.
async fn associate_subnet(
    p: &AwsProvider,
    table_id: &str,
    subnet_id: &str,
) -> Result<(), ProviderError> {
    let result = p
        .ec2
        .associate_route_table()
        .route_table_id(table_id)
        .subnet_id(subnet_id)
        .send()
        .await
        .map_err(|e| api_error("ec2:AssociateRouteTable", e));
    match result {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("Resource.AlreadyAssociated") => {
            let filter = Filter::builder()
                .name("association.subnet-id")
                .values(subnet_id)
                .build();
            let tables: Vec<ec2::RouteTable> = p
                .ec2
                .describe_route_tables()
                .filters(filter)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| api_error("ec2:DescribeRouteTables", e))?;
            let Some(association_id) = tables
                .iter()
                .find_map(|t| table_associations(t).remove(subnet_id))
            else {
                return Err(err);
            };
            tracing::debug!(
                subnet_id,
                table_id,
                "moving the subnet's association from another route table"
            );
            p.ec2
                .replace_route_table_association()
                .association_id(association_id)
                .route_table_id(table_id)
                .send()
                .await
                .map_err(|e| api_error("ec2:ReplaceRouteTableAssociation", e))?;
            Ok(())
        }
        Err(err) => Err(err),
    }
}

// ---------------------------------------------------------------------------------------------
// Update
// ---------------------------------------------------------------------------------------------

pub(crate) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    prior: &Observed,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    let physical_id = prior.physical_id.as_str();
    let changes = |field: &str| changed.iter().any(|c| c == field);
    tracing::debug!(address = %desired.address(), ?changed, "updating");
    match &desired.resource {
        Resource::Vpc(vpc) => {
            if changes("enable_dns_support") || changes("enable_dns_hostnames") {
                set_vpc_dns(p, physical_id, vpc).await?;
            }
        }
        Resource::Subnet(subnet) => {
            if changes("map_public_ip_on_launch") {
                set_map_public_ip(p, physical_id, subnet.map_public_ip_on_launch).await?;
            }
        }
        // Its only field, `vpc`, forces a replacement; an update re-attaches a detached gateway.
        Resource::InternetGateway(gateway) => {
            let vpc_id = ctx.resolved.physical_id(&gateway.vpc)?;
            attach_gateway(p, physical_id, vpc_id).await?;
        }
        Resource::RouteTable(table) => reconcile_route_table(p, ctx, physical_id, table).await?,
        Resource::SecurityGroup(group) => {
            let before = reconcile_rules(p, ctx, &desired.id, physical_id, group, None).await?;
            return observe_reconciled(ctx, &desired.id, &before, group);
        }
        _ => return Err(wrong_kind(desired)),
    }
    observe_after_change(p, ctx, &desired.address(), physical_id).await
}

// ---------------------------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------------------------

/// Run `call` until it succeeds, retrying while AWS answers DependencyViolation (ENIs of a
/// deleted load balancer or instances linger for minutes). NotFound counts as done.
async fn retry_dependency<F, Fut>(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    what: &str,
    mut call: F,
) -> Result<(), ProviderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), ProviderError>>,
{
    wait_for(ctx.progress, address, what, p.options.wait_timeout, || {
        let attempt = call();
        async move {
            match attempt.await {
                Ok(()) => Ok(Poll::Ready(())),
                Err(err) if is_not_found(&err) => Ok(Poll::Ready(())),
                Err(err) if error_code(&err) == Some("DependencyViolation") => {
                    Ok(Poll::Pending(format!("still in use ({err})")))
                }
                Err(err) => Err(err),
            }
        }
    })
    .await
}

pub(crate) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
) -> Result<(), ProviderError> {
    let id = prior.physical_id.as_str();
    let address = &prior.address;
    tracing::debug!(%address, id, "deleting");
    match address.kind {
        Kind::Vpc => {
            retry_dependency(p, ctx, address, "deleted", || async {
                p.ec2
                    .delete_vpc()
                    .vpc_id(id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| api_error("ec2:DeleteVpc", e))
            })
            .await?
        }
        Kind::Subnet => {
            retry_dependency(p, ctx, address, "deleted", || async {
                p.ec2
                    .delete_subnet()
                    .subnet_id(id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| api_error("ec2:DeleteSubnet", e))
            })
            .await?
        }
        Kind::InternetGateway => delete_gateway(p, ctx, address, id).await?,
        Kind::RouteTable => {
            let Some(table) = describe_route_tables(p, Scope::Id(id))
                .await?
                .into_iter()
                .next()
            else {
                return Ok(());
            };
            for association_id in table_associations(&table).values() {
                match p
                    .ec2
                    .disassociate_route_table()
                    .association_id(association_id)
                    .send()
                    .await
                    .map_err(|e| api_error("ec2:DisassociateRouteTable", e))
                {
                    Err(err) if !is_not_found(&err) => return Err(err),
                    _ => {}
                }
            }
            retry_dependency(p, ctx, address, "deleted", || async {
                p.ec2
                    .delete_route_table()
                    .route_table_id(id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| api_error("ec2:DeleteRouteTable", e))
            })
            .await?
        }
        Kind::SecurityGroup => {
            retry_dependency(p, ctx, address, "deleted", || async {
                p.ec2
                    .delete_security_group()
                    .group_id(id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| api_error("ec2:DeleteSecurityGroup", e))
            })
            .await?
        }
        other => {
            return Err(ProviderError::Other(format!(
                "{address}: the network module cannot delete {other} resources"
            )))
        }
    }
    wait_gone(p, ctx, address, id).await
}

/// Detach from every VPC, wait until detached, then delete.
async fn delete_gateway(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    gateway_id: &str,
) -> Result<(), ProviderError> {
    let Some(gateway) = describe_gateways(p, Scope::Id(gateway_id))
        .await?
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    for vpc_id in gateway.attachments().iter().filter_map(|a| a.vpc_id()) {
        // Detaching fails with DependencyViolation while the VPC still has public addresses.
        retry_dependency(p, ctx, address, "detached", || async {
            match p
                .ec2
                .detach_internet_gateway()
                .internet_gateway_id(gateway_id)
                .vpc_id(vpc_id)
                .send()
                .await
                .map_err(|e| api_error("ec2:DetachInternetGateway", e))
            {
                Err(err) if error_code(&err) == Some("Gateway.NotAttached") => Ok(()),
                other => other.map(drop),
            }
        })
        .await?;
    }
    wait_for(
        ctx.progress,
        address,
        "detached",
        p.options.wait_timeout,
        || async {
            let current = describe_gateways(p, Scope::Id(gateway_id)).await?;
            Ok(match current.first().map(|g| g.attachments()) {
                Some(attachments) if !attachments.is_empty() => Poll::Pending(
                    attachments
                        .iter()
                        .map(|a| {
                            a.state()
                                .map(|s| s.as_str().to_string())
                                .unwrap_or_default()
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                _ => Poll::Ready(()),
            })
        },
    )
    .await?;
    retry_dependency(p, ctx, address, "deleted", || async {
        p.ec2
            .delete_internet_gateway()
            .internet_gateway_id(gateway_id)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_error("ec2:DeleteInternetGateway", e))
    })
    .await
}

/// Wait until a describe by id no longer finds the resource.
async fn wait_gone(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    physical_id: &str,
) -> Result<(), ProviderError> {
    wait_for(
        ctx.progress,
        address,
        "deleted",
        p.options.wait_timeout,
        || async {
            Ok(match observe_one(p, address, physical_id).await? {
                Some(_) => Poll::Pending("deleting".to_string()),
                None => Poll::Ready(()),
            })
        },
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------------------------

pub(crate) async fn read(
    p: &AwsProvider,
    stack: &Stack,
    address: &Address,
    physical_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    let _ = stack;
    observe_one(p, address, physical_id).await
}

pub(crate) async fn adopt(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<(), ProviderError> {
    tag_resource(p, ctx, observed).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(port: u16, peer: Peer) -> Rule {
        Rule {
            protocol: IpProtocol::Tcp,
            from_port: port,
            to_port: port,
            peer,
            description: None,
        }
    }

    #[test]
    fn one_permission_with_several_peers_becomes_one_rule_per_peer() {
        let perm = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443)
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip("10.0.0.0/8")
                    .description("office")
                    .build(),
            )
            .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-1").build())
            .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-self").build())
            .build();
        let rules = rules_from_aws(&[perm], Some(("sg-self", "web")));
        assert_eq!(
            rules,
            vec![
                tcp(443, Peer::Cidr("0.0.0.0/0".into())),
                Rule {
                    description: Some("office".into()),
                    ..tcp(443, Peer::Cidr("10.0.0.0/8".into()))
                },
                tcp(443, Peer::SecurityGroup(Ref::from_id("sg-1"))),
                tcp(443, Peer::SecurityGroup(Ref::from_id("web"))),
            ]
        );
    }

    #[test]
    fn all_traffic_reads_as_the_model_default_egress() {
        let perm = IpPermission::builder()
            .ip_protocol("-1")
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .build();
        assert_eq!(
            rules_from_aws(&[perm], None),
            vec![Rule::all().to_anywhere()]
        );
        let back = permission(&Rule::all().to_anywhere());
        assert_eq!(back.ip_protocol(), Some("-1"));
        assert_eq!(back.from_port(), None);
    }

    #[test]
    fn a_new_description_is_an_update_not_a_revoke_and_authorize() {
        let old = tcp(80, Peer::Cidr("0.0.0.0/0".into()));
        let new = old.clone().describe("http");
        let other = tcp(22, Peer::Cidr("10.0.0.0/8".into()));
        let changes = rule_changes(&[new.clone(), other.clone()], &[old]);
        assert_eq!(
            changes,
            RuleChanges {
                authorize: vec![other],
                revoke: vec![],
                describe: vec![new],
            }
        );
    }
}
