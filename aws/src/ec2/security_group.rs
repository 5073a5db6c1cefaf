//! Security groups: describe, observe, create, update and delete, with their ingress and egress
//! rules reconciled as whole sets.

use aws_sdk_ec2::types::{
    self as ec2, IpPermission, IpRange, Ipv6Range, ResourceType, UserIdGroupPair,
};
use infra_core::model::{Declared, IpProtocol, Peer, Rule, SecurityGroup};
use infra_core::naming::physical_name;
use infra_core::provider::Context;
use infra_core::{Address, Kind, Observed, ProviderError, Ref};

use super::{
    describe, no_retries, read_by_id, relinked, retry_dependency, tag_spec, wait_gone, Scope,
    CREATE_ATTEMPTS,
};
use crate::support::{api_error, create_once, error_code};
use crate::AwsProvider;

/// AWS caps security group names at 255 characters.
const GROUP_NAME_MAX: usize = 255;

pub(super) async fn describe_groups(
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

pub(super) fn observe_group(id: String, group: &ec2::SecurityGroup) -> Observed {
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

/// One security group by physical id, with the logical id `id`.
pub(super) async fn read(
    p: &AwsProvider,
    id: String,
    group_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    Ok(describe_groups(p, Scope::Id(group_id))
        .await?
        .first()
        .map(|g| observe_group(id, g)))
}

pub(super) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    group: &SecurityGroup,
) -> Result<Observed, ProviderError> {
    let id = desired.id.as_str();
    let owned = Scope::Owned(ctx.stack, id);
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
                    ProviderError::Other("ec2:CreateSecurityGroup returned no group id".into())
                })
        },
    )
    .await?;
    let before = reconcile_rules(p, ctx, id, &group_id, group, found).await?;
    observe_reconciled(ctx, id, &before, group)
}

pub(super) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    group_id: &str,
    group: &SecurityGroup,
) -> Result<Observed, ProviderError> {
    let before = reconcile_rules(p, ctx, &desired.id, group_id, group, None).await?;
    observe_reconciled(ctx, &desired.id, &before, group)
}

pub(super) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    id: &str,
) -> Result<(), ProviderError> {
    retry_dependency(p, ctx, address, "deleted", || async {
        p.ec2
            .delete_security_group()
            .group_id(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_error("ec2:DeleteSecurityGroup", e))
    })
    .await?;
    wait_gone(p, ctx, address, id).await
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
        authorize(p, group_id, direction, perms(&changes.authorize)).await?;
    }
    if !changes.describe.is_empty() {
        update_descriptions(p, group_id, direction, perms(&changes.describe)).await?;
    }
    if !changes.revoke.is_empty() {
        revoke(p, group_id, direction, perms(&changes.revoke)).await?;
    }
    Ok(())
}

async fn authorize(
    p: &AwsProvider,
    group_id: &str,
    direction: Direction,
    perms: Option<Vec<IpPermission>>,
) -> Result<(), ProviderError> {
    match direction {
        Direction::Ingress => p
            .ec2
            .authorize_security_group_ingress()
            .group_id(group_id)
            .set_ip_permissions(perms)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_error("ec2:AuthorizeSecurityGroupIngress", e)),
        Direction::Egress => p
            .ec2
            .authorize_security_group_egress()
            .group_id(group_id)
            .set_ip_permissions(perms)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_error("ec2:AuthorizeSecurityGroupEgress", e)),
    }
}

async fn update_descriptions(
    p: &AwsProvider,
    group_id: &str,
    direction: Direction,
    perms: Option<Vec<IpPermission>>,
) -> Result<(), ProviderError> {
    match direction {
        Direction::Ingress => p
            .ec2
            .update_security_group_rule_descriptions_ingress()
            .group_id(group_id)
            .set_ip_permissions(perms)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_error("ec2:UpdateSecurityGroupRuleDescriptionsIngress", e)),
        Direction::Egress => p
            .ec2
            .update_security_group_rule_descriptions_egress()
            .group_id(group_id)
            .set_ip_permissions(perms)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_error("ec2:UpdateSecurityGroupRuleDescriptionsEgress", e)),
    }
}

async fn revoke(
    p: &AwsProvider,
    group_id: &str,
    direction: Direction,
    perms: Option<Vec<IpPermission>>,
) -> Result<(), ProviderError> {
    match direction {
        Direction::Ingress => p
            .ec2
            .revoke_security_group_ingress()
            .group_id(group_id)
            .set_ip_permissions(perms)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_error("ec2:RevokeSecurityGroupIngress", e)),
        Direction::Egress => p
            .ec2
            .revoke_security_group_egress()
            .group_id(group_id)
            .set_ip_permissions(perms)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_error("ec2:RevokeSecurityGroupEgress", e)),
    }
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
