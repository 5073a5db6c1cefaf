//! Structural validation rules (errors). Ids: E01xx network, E02xx security groups, E03xx load
//! balancing, E04xx compute, E05xx data, E06xx identity (in `iam.rs`), E09xx stack-level. Documented in docs/rules.md.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::*;
use crate::refs::{Address, Ref};
use crate::secret::Sensitive;
use crate::stack::{attributes, LintSetting, Output, Stack};

use super::cidr::{Cidr, Family};
use super::index::{references_with_fields, Index};
use super::limits;
use super::lints::LINTS;
use super::Diagnostic;

/// Every structural problem of the stack, unsorted.
pub(crate) fn check(stack: &Stack) -> Vec<Diagnostic> {
    let index = Index::new(stack);
    let mut out = Vec::new();
    stack_level(stack, &index, &mut out);
    for declared in &stack.resources {
        let a = declared.address();
        let out = &mut out;
        match &declared.resource {
            Resource::Vpc(v) => vpc(&a, v, out),
            Resource::Subnet(s) => subnet(&index, &a, s, out),
            Resource::InternetGateway(_) => {}
            Resource::Certificate(c) => {
                super::dns::certificate(&index, &a, c, out);
                limits::certificate(&a, &stack.region, c, out);
            }
            Resource::HostedZone(z) => super::dns::zone(&a, z, out),
            Resource::Record(r) => {
                super::dns::record(&index, &a, r, out);
                limits::record(&a, r, out);
            }
            Resource::RouteTable(t) => route_table(&index, &a, t, out),
            Resource::SecurityGroup(g) => security_group(&index, &a, g, out),
            Resource::TargetGroup(t) => {
                target_group(&a, t, out);
                limits::target_group(&a, t, out);
            }
            Resource::LoadBalancer(lb) => {
                load_balancer(&index, &a, lb, out);
                limits::load_balancer(&a, lb, out);
                access_logs(&index, &a, lb, out);
            }
            Resource::Listener(l) => listener(&index, &a, l, out),
            Resource::ListenerRule(r) => listener_rule(&a, r, out),
            Resource::LaunchTemplate(t) => {
                launch_template(&index, &a, t, out);
                limits::launch_template(&a, t, out);
            }
            Resource::AutoScalingGroup(g) => auto_scaling_group(&index, &a, g, out),
            Resource::DbSubnetGroup(g) => db_subnet_group(&index, &a, g, out),
            Resource::DbInstance(db) => {
                db_instance(&index, &a, db, out);
                limits::db_instance(&a, db, out);
            }
            Resource::Bucket(b) => {
                bucket(&a, b, out);
                bucket_logs(&index, &a, b, out);
            }
            Resource::Role(r) => super::iam::role(&index, &a, r, out),
        }
    }
    listener_rules(&index, &mut out);
    out
}

/// An error diagnostic on field `field` of the resource at `a`.
pub(super) fn error(id: &str, a: &Address, field: &str, message: impl Into<String>) -> Diagnostic {
    Diagnostic::error(id, Some(a), Some(field), message)
}

// ---------------------------------------------------------------- E09xx stack-level

/// The stack name goes into tags and into AWS names (load balancers and target groups allow 32
/// characters), so it is kept short and DNS-safe.
pub(crate) fn stack_name_ok(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=24).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// `ap-northeast-2`, `us-gov-west-1`, `eu-central-1`: a 2-letter area, an optional `gov`,
/// a direction word, a number.
pub(crate) fn region_ok(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let (area, rest) = match parts.split_first() {
        Some(x) => x,
        None => return false,
    };
    let rest = match rest {
        [gov, rest @ ..] if *gov == "gov" => rest,
        rest => rest,
    };
    let lower = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_lowercase());
    matches!(rest, [direction, number]
        if lower(direction)
            && !number.is_empty()
            && number.len() <= 2
            && number.bytes().all(|c| c.is_ascii_digit()))
        && area.len() == 2
        && lower(area)
}

fn logical_id_ok(id: &str) -> bool {
    let b = id.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

fn stack_level(stack: &Stack, index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    if !stack_name_ok(&stack.name) {
        out.push(
            Diagnostic::error(
                "E0901",
                None,
                Some("name"),
                format!("stack name `{}` cannot be used in AWS names and tags", stack.name),
            )
            .with_help("use 1-24 lowercase letters, digits and single hyphens, starting with a letter and not ending with a hyphen (e.g. `closet`)"),
        );
    }
    if !region_ok(&stack.region) {
        out.push(
            Diagnostic::error(
                "E0902",
                None,
                Some("region"),
                format!("`{}` is not an AWS region", stack.region),
            )
            .with_help("use a region code such as `ap-northeast-2` or `us-east-1`"),
        );
    }

    let mut counts: BTreeMap<Address, usize> = BTreeMap::new();
    for declared in &stack.resources {
        *counts.entry(declared.address()).or_default() += 1;
    }
    for (a, n) in &counts {
        if *n > 1 {
            out.push(
                error(
                    "E0903",
                    a,
                    "id",
                    format!("logical id `{}` is declared {n} times for {}", a.id, a.kind),
                )
                .with_help("ids are unique per resource type; rename all but one"),
            );
        }
        if !logical_id_ok(&a.id) {
            out.push(
                error(
                    "E0909",
                    a,
                    "id",
                    format!("logical id `{}` is not usable in addresses and tags", a.id),
                )
                .with_help("use 1-64 ASCII letters, digits, `_` or `-`, starting with a letter"),
            );
        }
    }

    for (a, resource) in index.resources() {
        for (field, target) in references_with_fields(resource) {
            if index.contains(&target) {
                continue;
            }
            let same_id_other_kind: Vec<String> = index
                .resources()
                .filter(|(b, _)| b.id == target.id)
                .map(|(b, _)| b.to_string())
                .collect();
            let help = if same_id_other_kind.is_empty() {
                let ids = index.ids_of(target.kind);
                if ids.is_empty() {
                    format!("declare a {} with id `{}`", target.kind, target.id)
                } else {
                    format!("declared {} ids: {}", target.kind, ids.join(", "))
                }
            } else {
                format!(
                    "{} exists, but this field needs a {}",
                    same_id_other_kind.join(", "),
                    target.kind
                )
            };
            out.push(
                error(
                    "E0904",
                    a,
                    &field,
                    format!("refers to `{target}`, which is not declared"),
                )
                .with_help(help),
            );
        }
    }

    cycles(index, out);

    for (name, output) in &stack.outputs {
        if let Some(source) = index.get(output.resource()) {
            output_attribute(name, output, source, out);
        } else {
            out.push(
                output_error(
                    name,
                    format!(
                        "output `{name}` names `{}`, which is not declared",
                        output.resource()
                    ),
                )
                .with_help("name a resource declared in the stack"),
            );
        }
    }

    for (id, setting) in &stack.lints {
        if !LINTS.iter().any(|l| l.id == id) {
            let known: Vec<&str> = LINTS.iter().map(|l| l.id).collect();
            out.push(
                Diagnostic::error(
                    "E0907",
                    None,
                    Some(&format!("lints.{id}")),
                    format!("`{id}` is not a lint id"),
                )
                .with_help(format!("known lints: {}", known.join(", "))),
            );
        }
        if let LintSetting::Allow { reason } = setting {
            if reason.trim().is_empty() {
                out.push(
                    Diagnostic::error(
                        "E0908",
                        None,
                        Some(&format!("lints.{id}")),
                        format!("lint `{id}` is allowed without a reason"),
                    )
                    .with_help("say why the lint does not apply to this stack"),
                );
            }
        }
    }
}

fn output_error(name: &str, message: String) -> Diagnostic {
    Diagnostic::error("E0906", None, Some(&format!("outputs.{name}")), message)
}

/// E0906: an output names an attribute its resource has (as E0409 for user-data vars).
fn output_attribute(name: &str, output: &Output, source: &Resource, out: &mut Vec<Diagnostic>) {
    let provided = attributes::provided(source);
    if !provided.contains(&output.attribute()) {
        out.push(
            output_error(
                name,
                format!(
                    "output `{name}` names `{}`, which has no attribute `{}`",
                    output.resource(),
                    output.attribute()
                ),
            )
            .with_help(format!(
                "{} has: {}",
                output.resource(),
                provided.join(", ")
            )),
        );
    }
}

/// Strongly connected components of the reference graph (Tarjan, iterative so that a long
/// chain cannot overflow the stack). A security group referring to itself is not a cycle:
/// self-referencing rules are how members of one group admit each other.
fn cycles(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    let nodes: Vec<&Address> = index.resources().map(|(a, _)| a).collect();
    let position: BTreeMap<&Address, usize> =
        nodes.iter().enumerate().map(|(i, a)| (*a, i)).collect();
    let adjacency: Vec<Vec<usize>> = index
        .resources()
        .enumerate()
        .map(|(i, (_, r))| {
            let mut next: Vec<usize> = r
                .references()
                .iter()
                .filter_map(|t| position.get(t).copied())
                .filter(|j| *j != i)
                .collect();
            next.sort_unstable();
            next.dedup();
            next
        })
        .collect();

    const UNSEEN: usize = usize::MAX;
    let n = nodes.len();
    let mut order = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut counter = 0;
    let mut components: Vec<Vec<&Address>> = Vec::new();
    for start in 0..n {
        if order[start] != UNSEEN {
            continue;
        }
        let mut calls: Vec<(usize, usize)> = vec![(start, 0)];
        order[start] = counter;
        low[start] = counter;
        counter += 1;
        stack.push(start);
        on_stack[start] = true;
        while let Some(&(v, edge)) = calls.last() {
            if let Some(&w) = adjacency[v].get(edge) {
                if let Some(top) = calls.last_mut() {
                    top.1 += 1;
                }
                if order[w] == UNSEEN {
                    order[w] = counter;
                    low[w] = counter;
                    counter += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(order[w]);
                }
            } else {
                calls.pop();
                if let Some(&(u, _)) = calls.last() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == order[v] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(nodes[w]);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        component.sort();
                        components.push(component);
                    }
                }
            }
        }
    }
    for component in components {
        let names: Vec<String> = component.iter().map(|a| a.to_string()).collect();
        out.push(
            Diagnostic::error(
                "E0905",
                component.first().copied(),
                None,
                format!("dependency cycle between {}", names.join(", ")),
            )
            .with_help("each of these refers to another in the cycle; remove one reference (e.g. a security-group rule) to break it"),
        );
    }
}

// ---------------------------------------------------------------- E01xx network

/// Parse a CIDR for `field`, reporting E0101 when it is not one of `family`.
fn parse_cidr(
    a: &Address,
    field: &str,
    value: &str,
    family: Family,
    out: &mut Vec<Diagnostic>,
) -> Option<Cidr> {
    let expected = match family {
        Family::V4 => "an IPv4 CIDR block such as 10.0.0.0/16",
        Family::V6 => "an IPv6 CIDR block such as 2001:db8::/32",
    };
    match value.parse::<Cidr>() {
        Ok(c) if c.family() == family => Some(c),
        Ok(_) => {
            out.push(
                error("E0101", a, field, format!("`{value}` is not {expected}"))
                    .with_help("IPv4 peers go in `Cidr`, IPv6 peers in `Ipv6Cidr`"),
            );
            None
        }
        Err(e) => {
            out.push(
                error("E0101", a, field, e.to_string()).with_help(format!("write {expected}")),
            );
            None
        }
    }
}

fn prefix_in_range(a: &Address, field: &str, cidr: &Cidr, out: &mut Vec<Diagnostic>) {
    if !(16..=28).contains(&cidr.prefix()) {
        out.push(
            error(
                "E0104",
                a,
                field,
                format!("`{cidr}` has prefix /{}", cidr.prefix()),
            )
            .with_help("VPC and subnet blocks must be between /16 and /28"),
        );
    }
}

fn vpc(a: &Address, v: &Vpc, out: &mut Vec<Diagnostic>) {
    if let Some(c) = parse_cidr(a, "cidr", &v.cidr, Family::V4, out) {
        prefix_in_range(a, "cidr", &c, out);
    }
}

fn subnet(index: &Index<'_>, a: &Address, s: &Subnet, out: &mut Vec<Diagnostic>) {
    let zone = &s.availability_zone;
    let region = &index.stack.region;
    let zone_ok = zone.len() == region.len() + 1
        && zone.starts_with(region.as_str())
        && zone
            .as_bytes()
            .last()
            .is_some_and(|c| c.is_ascii_lowercase());
    if !zone_ok {
        out.push(
            error(
                "E0105",
                a,
                "availability_zone",
                format!("`{zone}` is not a zone of the stack's region {region}"),
            )
            .with_help(format!(
                "use the region followed by one letter, e.g. `{region}a`"
            )),
        );
    }
    let Some(cidr) = parse_cidr(a, "cidr", &s.cidr, Family::V4, out) else {
        return;
    };
    prefix_in_range(a, "cidr", &cidr, out);
    let Some(vpc_cidr) = index.vpc_cidr(&s.vpc) else {
        return;
    };
    if !vpc_cidr.contains(&cidr) {
        out.push(
            error(
                "E0102",
                a,
                "cidr",
                format!("`{cidr}` is not inside the VPC's {vpc_cidr}"),
            )
            .with_help(format!("use a block inside {vpc_cidr}")),
        );
    }
    for (b, other) in index.resources() {
        let Resource::Subnet(other) = other else {
            continue;
        };
        if b == a || other.vpc != s.vpc {
            continue;
        }
        if let Ok(other_cidr) = other.cidr.parse::<Cidr>() {
            if other_cidr.overlaps(&cidr) {
                out.push(
                    error(
                        "E0103",
                        a,
                        "cidr",
                        format!("`{cidr}` overlaps {b} ({other_cidr})"),
                    )
                    .with_help("subnets of one VPC need disjoint blocks"),
                );
            }
        }
    }
}

fn route_table(index: &Index<'_>, a: &Address, t: &RouteTable, out: &mut Vec<Diagnostic>) {
    let vpc = t.vpc.id();
    for (i, route) in t.routes.iter().enumerate() {
        parse_cidr(
            a,
            &format!("routes[{i}].destination"),
            &route.destination,
            Family::V4,
            out,
        );
        let gateway_vpc = index
            .stack
            .get(&route.internet_gateway.address())
            .and_then(|d| match &d.resource {
                Resource::InternetGateway(g) => Some(g.vpc.id()),
                _ => None,
            });
        if let Some(other) = gateway_vpc.filter(|v| *v != vpc) {
            out.push(other_vpc(
                "E0106",
                a,
                &format!("routes[{i}].internet_gateway"),
                &route.internet_gateway.address(),
                other,
                vpc,
            ));
        }
    }
    for (i, s) in t.subnets.iter().enumerate() {
        if let Some(other) = index.subnet_vpc(s).filter(|v| *v != vpc) {
            out.push(other_vpc(
                "E0106",
                a,
                &format!("subnets[{i}]"),
                &s.address(),
                other,
                vpc,
            ));
        }
    }
}

fn other_vpc(
    id: &str,
    a: &Address,
    field: &str,
    target: &Address,
    theirs: &str,
    ours: &str,
) -> Diagnostic {
    error(
        id,
        a,
        field,
        format!("{target} is in VPC `{theirs}`, not `{ours}`"),
    )
    .with_help(format!(
        "everything this resource touches must be in ec2_vpc.{ours}"
    ))
}

// ---------------------------------------------------------------- E02xx security groups

/// A security-group rule description as AWS accepts it (AuthorizeSecurityGroupIngress's
/// `Description`).
fn rule_description_ok(text: &str) -> bool {
    text.len() <= 255
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c))
}

fn security_group(index: &Index<'_>, a: &Address, g: &SecurityGroup, out: &mut Vec<Diagnostic>) {
    let description = &g.description;
    if description.is_empty() || description.len() > 255 || !description.is_ascii() {
        out.push(
            error(
                "E0202",
                a,
                "description",
                format!("description `{description}` is not 1-255 ASCII characters"),
            )
            .with_help("AWS requires a description of 1-255 ASCII characters"),
        );
    }
    for (name, rules) in [("ingress", &g.ingress), ("egress", &g.egress)] {
        for (i, rule) in rules.iter().enumerate() {
            let field = format!("{name}[{i}]");
            // 0-65535 is AWS's own "All TCP"; ranges open to the world are the lints' business.
            if matches!(rule.protocol, IpProtocol::Tcp | IpProtocol::Udp)
                && rule.from_port > rule.to_port
            {
                out.push(
                    error(
                        "E0201",
                        a,
                        &format!("{field}.from_port"),
                        format!(
                            "port range {}-{} is not valid",
                            rule.from_port, rule.to_port
                        ),
                    )
                    .with_help("ports are 0-65535 and from_port <= to_port (0-65535 is all ports)"),
                );
            }
            if let Some(text) = rule
                .description
                .as_deref()
                .filter(|d| !rule_description_ok(d))
            {
                out.push(
                    error("E0204", a, &format!("{field}.description"), format!("`{text}` is not a rule description AWS accepts"))
                        .with_help("use at most 255 characters of a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*"),
                );
            }
            match &rule.peer {
                Peer::Cidr(c) => {
                    parse_cidr(a, &format!("{field}.peer"), c, Family::V4, out);
                }
                Peer::Ipv6Cidr(c) => {
                    parse_cidr(a, &format!("{field}.peer"), c, Family::V6, out);
                }
                Peer::SecurityGroup(peer) => {
                    if let Some(other) = index.group_vpc(peer).filter(|v| *v != g.vpc.id()) {
                        out.push(other_vpc(
                            "E0203",
                            a,
                            &format!("{field}.peer"),
                            &peer.address(),
                            other,
                            g.vpc.id(),
                        ));
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- E03xx load balancing

fn port_ok(a: &Address, field: &str, port: u16, out: &mut Vec<Diagnostic>) {
    if port == 0 {
        out.push(
            error("E0302", a, field, "port `0` is not valid")
                .with_help("use a port from 1 to 65535"),
        );
    }
}

/// `200`, `200,302`, `200-299`; codes 200-499.
pub(crate) fn matcher_ok(matcher: &str) -> bool {
    let code = |s: &str| {
        s.len() == 3
            && s.bytes().all(|c| c.is_ascii_digit())
            && s.parse::<u16>().is_ok_and(|c| (200..=499).contains(&c))
    };
    match matcher.split_once('-') {
        Some((lo, hi)) => code(lo) && code(hi) && lo < hi,
        None => !matcher.is_empty() && matcher.split(',').all(code),
    }
}

fn target_group(a: &Address, t: &TargetGroup, out: &mut Vec<Diagnostic>) {
    port_ok(a, "port", t.port, out);
    let hc = &t.health_check;
    if let HealthCheckPort::Port(p) = hc.port {
        port_ok(a, "health_check.port", p, out);
    }
    if !(5..=300).contains(&hc.interval_seconds) {
        out.push(
            error(
                "E0303",
                a,
                "health_check.interval_seconds",
                format!("interval `{}` s is out of range", hc.interval_seconds),
            )
            .with_help("use 5-300 seconds"),
        );
    }
    if !(2..=120).contains(&hc.timeout_seconds) || hc.timeout_seconds >= hc.interval_seconds {
        out.push(
            error(
                "E0304",
                a,
                "health_check.timeout_seconds",
                format!(
                    "timeout `{}` s is not valid with an interval of {} s",
                    hc.timeout_seconds, hc.interval_seconds
                ),
            )
            .with_help("use 2-120 seconds, shorter than the interval"),
        );
    }
    for (field, value) in [
        ("healthy_threshold", hc.healthy_threshold),
        ("unhealthy_threshold", hc.unhealthy_threshold),
    ] {
        if !(2..=10).contains(&value) {
            out.push(
                error(
                    "E0305",
                    a,
                    &format!("health_check.{field}"),
                    format!("threshold `{value}` is out of range"),
                )
                .with_help("use 2-10 consecutive checks"),
            );
        }
    }
    if !hc.path.starts_with('/') || hc.path.len() > 1024 {
        out.push(
            error(
                "E0306",
                a,
                "health_check.path",
                format!("path `{}` is not valid", hc.path),
            )
            .with_help("start the path with `/` (at most 1024 characters), e.g. `/health`"),
        );
    }
    if !matcher_ok(&hc.matcher) {
        out.push(
            error(
                "E0307",
                a,
                "health_check.matcher",
                format!("matcher `{}` is not valid", hc.matcher),
            )
            .with_help(
                "use HTTP codes 200-499: one (`200`), a list (`200,302`) or a range (`200-299`)",
            ),
        );
    }
}

fn load_balancer(index: &Index<'_>, a: &Address, lb: &LoadBalancer, out: &mut Vec<Diagnostic>) {
    let zones: BTreeSet<&str> = lb
        .subnets
        .iter()
        .filter_map(|s| index.subnet(s))
        .map(|s| s.availability_zone.as_str())
        .collect();
    if zones.len() < 2 {
        let listed: Vec<&str> = zones.iter().copied().collect();
        out.push(
            error(
                "E0301",
                a,
                "subnets",
                format!(
                    "{} subnet(s) in {} zone(s) ({})",
                    lb.subnets.len(),
                    zones.len(),
                    listed.join(", ")
                ),
            )
            .with_help(
                "an Application Load Balancer needs subnets in at least two availability zones",
            ),
        );
    }
    // The VPC of the first subnet is the load balancer's; everything else must match it.
    let Some(vpc) = lb.subnets.iter().find_map(|s| index.subnet_vpc(s)) else {
        return;
    };
    for (i, s) in lb.subnets.iter().enumerate() {
        if let Some(other) = index.subnet_vpc(s).filter(|v| *v != vpc) {
            out.push(other_vpc(
                "E0312",
                a,
                &format!("subnets[{i}]"),
                &s.address(),
                other,
                vpc,
            ));
        }
    }
    for (i, g) in lb.security_groups.iter().enumerate() {
        if let Some(other) = index.group_vpc(g).filter(|v| *v != vpc) {
            out.push(other_vpc(
                "E0312",
                a,
                &format!("security_groups[{i}]"),
                &g.address(),
                other,
                vpc,
            ));
        }
    }
}

fn load_balancer_vpc<'a>(index: &Index<'a>, lb: &Ref<LoadBalancer>) -> Option<&'a str> {
    index
        .load_balancer(lb)?
        .subnets
        .iter()
        .find_map(|s| index.subnet_vpc(s))
}

fn action(
    index: &Index<'_>,
    a: &Address,
    field: &str,
    action: &ListenerAction,
    lb: &Ref<LoadBalancer>,
    out: &mut Vec<Diagnostic>,
) {
    match action {
        ListenerAction::Forward { target_group } => {
            let lb_vpc = load_balancer_vpc(index, lb);
            let tg_vpc = index.target_group(target_group).map(|t| t.vpc.id());
            if let (Some(ours), Some(theirs)) = (lb_vpc, tg_vpc) {
                if ours != theirs {
                    out.push(other_vpc(
                        "E0312",
                        a,
                        &format!("{field}.target_group"),
                        &target_group.address(),
                        theirs,
                        ours,
                    ));
                }
            }
        }
        ListenerAction::Redirect {
            port: Some(port), ..
        } => port_ok(a, &format!("{field}.port"), *port, out),
        ListenerAction::Redirect { .. } => {}
        ListenerAction::FixedResponse { status_code, .. } => {
            if !(200..=599).contains(status_code) || (300..400).contains(status_code) {
                out.push(
                    error(
                        "E0314",
                        a,
                        &format!("{field}.status_code"),
                        format!("status code `{status_code}` is not valid for a fixed response"),
                    )
                    .with_help("use a 2XX, 4XX or 5XX code"),
                );
            }
        }
    }
}

fn listener(index: &Index<'_>, a: &Address, l: &Listener, out: &mut Vec<Diagnostic>) {
    port_ok(a, "port", l.port, out);
    match l.protocol {
        AppProtocol::Https if l.certificate.is_none() => out.push(
            error(
                "E0311",
                a,
                "certificate",
                "an HTTPS listener has no certificate",
            )
            .with_help("give the listener an acm_certificate"),
        ),
        AppProtocol::Http if l.certificate.is_some() || l.ssl_policy.is_some() => out.push(
            error(
                "E0311",
                a,
                if l.certificate.is_some() {
                    "certificate"
                } else {
                    "ssl_policy"
                },
                "an HTTP listener has a certificate or TLS policy",
            )
            .with_help("remove them, or make the listener HTTPS"),
        ),
        _ => {}
    }
    action(
        index,
        a,
        "default_action",
        &l.default_action,
        &l.load_balancer,
        out,
    );
    for (b, other) in index.resources() {
        if let Resource::Listener(other) = other {
            if b.id < a.id && other.load_balancer == l.load_balancer && other.port == l.port {
                out.push(
                    error(
                        "E0313",
                        a,
                        "port",
                        format!("port {} is already used by {b}", l.port),
                    )
                    .with_help("each listener of a load balancer needs its own port"),
                );
            }
        }
    }
}

fn listener_rule(a: &Address, r: &ListenerRule, out: &mut Vec<Diagnostic>) {
    if !(1..=50000).contains(&r.priority) {
        out.push(
            error(
                "E0308",
                a,
                "priority",
                format!("priority `{}` is out of range", r.priority),
            )
            .with_help("use 1-50000; lower numbers are evaluated first"),
        );
    }
    let values: usize = r.conditions.iter().map(|c| c.values().len()).sum();
    if values == 0 || values > 5 || r.conditions.iter().any(|c| c.values().is_empty()) {
        out.push(
            error(
                "E0310",
                a,
                "conditions",
                format!("{values} condition value(s)"),
            )
            .with_help(
                "give a rule 1-5 condition values in total, and each condition at least one",
            ),
        );
    }
}

fn listener_rules(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<(&str, u32), &Address> = BTreeMap::new();
    for (a, r) in index.resources() {
        let Resource::ListenerRule(r) = r else {
            continue;
        };
        match seen.get(&(r.listener.id(), r.priority)) {
            Some(first) => out.push(
                error(
                    "E0309",
                    a,
                    "priority",
                    format!(
                        "priority {} is already used by {first} on {}",
                        r.priority,
                        r.listener.address()
                    ),
                )
                .with_help("priorities are unique per listener"),
            ),
            None => {
                seen.insert((r.listener.id(), r.priority), a);
            }
        }
        if let Some(listener) = index.listener(&r.listener) {
            action(index, a, "action", &r.action, &listener.load_balancer, out);
        }
    }
}

// ---------------------------------------------------------------- E04xx compute

/// EC2 accepts at most 16 KB of user data once base64-encoded.
pub(crate) const USER_DATA_LIMIT: usize = 16 * 1024;

/// The largest gp3/gp2 volume, in GiB.
const VOLUME_MAX_GIB: u32 = 16384;

fn root_volume(a: &Address, v: &RootVolume, out: &mut Vec<Diagnostic>) {
    if !matches!(v.volume_type.as_str(), "gp3" | "gp2") {
        out.push(
            error(
                "E0410",
                a,
                "root_volume.volume_type",
                format!("`{}` is not a root volume type infra writes", v.volume_type),
            )
            .with_help("use gp3 (the default) or gp2"),
        );
    }
    if let Some(size) = v.size_gib.filter(|s| !(1..=VOLUME_MAX_GIB).contains(s)) {
        out.push(
            error(
                "E0410",
                a,
                "root_volume.size_gib",
                format!("{size} GiB is not a volume size"),
            )
            .with_help(format!(
                "use 1-{VOLUME_MAX_GIB} GiB, at least the AMI's size"
            )),
        );
    }
    match &v.kms_key_id {
        Some(_) if !v.encrypted => out.push(
            error("E0411", a, "root_volume.kms_key_id", "a KMS key is given for an unencrypted volume")
                .with_help("drop the key, or keep the volume encrypted (the default)"),
        ),
        Some(key) if !key.starts_with("arn:") || !key.contains(":kms:") => out.push(
            error("E0411", a, "root_volume.kms_key_id", format!("`{key}` is not a KMS key ARN"))
                .with_help("use arn:aws:kms:REGION:ACCOUNT:key/KEY_ID or arn:aws:kms:REGION:ACCOUNT:alias/NAME"),
        ),
        _ => {}
    }
}

fn launch_template(index: &Index<'_>, a: &Address, t: &LaunchTemplate, out: &mut Vec<Diagnostic>) {
    if let Some(data) = &t.user_data {
        let encoded = data.len().div_ceil(3).saturating_mul(4);
        if encoded > USER_DATA_LIMIT {
            out.push(
                error("E0402", a, "user_data", format!("user data is {encoded} bytes once base64-encoded"))
                    .with_help(format!("keep it at most {USER_DATA_LIMIT} bytes encoded; download larger scripts from S3 instead")),
            );
        }
    }
    user_data_vars(index, a, t, out);
    root_volume(a, &t.root_volume, out);
    super::iam::instance_role(index, a, t, out);
    let hop = t.metadata_options.http_put_response_hop_limit;
    if !(1..=64).contains(&hop) {
        out.push(
            error(
                "E0405",
                a,
                "metadata_options.http_put_response_hop_limit",
                format!("hop limit `{hop}` is out of range"),
            )
            .with_help("use 1-64"),
        );
    }
    let family_size = t.instance_type.split_once('.');
    if !family_size.is_some_and(|(f, s)| {
        !f.is_empty()
            && !s.is_empty()
            && f.bytes()
                .chain(s.bytes())
                .all(|c| c.is_ascii_alphanumeric() || c == b'-')
    }) {
        out.push(
            error(
                "E0406",
                a,
                "instance_type",
                format!("`{}` is not an instance type", t.instance_type),
            )
            .with_help("use FAMILY.SIZE, e.g. `t3.micro`"),
        );
    }
    let vpcs: BTreeSet<&str> = t
        .security_groups
        .iter()
        .filter_map(|g| index.group_vpc(g))
        .collect();
    if vpcs.len() > 1 {
        let list: Vec<&str> = vpcs.into_iter().collect();
        out.push(
            error(
                "E0404",
                a,
                "security_groups",
                format!(
                    "security groups are in different VPCs ({})",
                    list.join(", ")
                ),
            )
            .with_help("an instance's security groups must share its VPC"),
        );
    }
}

/// The values filling user data's `${NAME}` placeholders: a valid name that the text uses, and
/// an attribute the named resource has (a stack read from JSON can name any).
fn user_data_vars(index: &Index<'_>, a: &Address, t: &LaunchTemplate, out: &mut Vec<Diagnostic>) {
    let used = placeholders(t.user_data.as_deref().unwrap_or_default());
    for (name, value) in &t.user_data_vars {
        let field = format!("user_data_vars.{name}");
        if !is_var_name(name) {
            out.push(
                error(
                    "E0409",
                    a,
                    &field,
                    format!("`{name}` is not a placeholder name"),
                )
                .with_help("use letters, digits and `_`, starting with a letter or `_`"),
            );
        } else if !used.contains(&name.as_str()) {
            out.push(
                error(
                    "E0409",
                    a,
                    &field,
                    format!("`${{{name}}}` does not appear in user_data"),
                )
                .with_help(format!(
                    "write `${{{name}}}` where the value goes, or drop the var"
                )),
            );
        }
        let Some(source) = index.get(value.resource()) else {
            continue; // E0904
        };
        let provided = attributes::provided(source);
        if !provided.contains(&value.attribute()) {
            out.push(
                error(
                    "E0409",
                    a,
                    &field,
                    format!(
                        "`{}` has no attribute `{}`",
                        value.resource(),
                        value.attribute()
                    ),
                )
                .with_help(format!(
                    "{} has: {}",
                    value.resource(),
                    provided.join(", ")
                )),
            );
        }
    }
}

fn auto_scaling_group(
    index: &Index<'_>,
    a: &Address,
    g: &AutoScalingGroup,
    out: &mut Vec<Diagnostic>,
) {
    let desired = g.desired_capacity.unwrap_or(g.min_size);
    if g.min_size > g.max_size || desired < g.min_size || desired > g.max_size {
        let field = if g.desired_capacity.is_some() && g.min_size <= g.max_size {
            "desired_capacity"
        } else {
            "min_size"
        };
        out.push(
            error(
                "E0401",
                a,
                field,
                format!(
                    "min {} / desired {} / max {} is not ordered",
                    g.min_size, desired, g.max_size
                ),
            )
            .with_help("use min_size <= desired_capacity <= max_size"),
        );
    }
    if g.subnets.is_empty() {
        out.push(error("E0403", a, "subnets", "no subnets").with_help("list at least one subnet"));
    }
    let refresh = &g.instance_refresh;
    if refresh.min_healthy_percentage > 100
        || !(100..=200).contains(&refresh.max_healthy_percentage)
    {
        out.push(
            error(
                "E0407",
                a,
                "instance_refresh",
                format!(
                    "min/max healthy {}%/{}% is out of range",
                    refresh.min_healthy_percentage, refresh.max_healthy_percentage
                ),
            )
            .with_help("use min_healthy_percentage 0-100 and max_healthy_percentage 100-200"),
        );
    }
    if let Some(cpu) = &g.cpu_target_tracking {
        if !(cpu.target_percent > 0.0 && cpu.target_percent <= 100.0) {
            out.push(
                error(
                    "E0408",
                    a,
                    "cpu_target_tracking.target_percent",
                    format!("target `{}`% is out of range", cpu.target_percent),
                )
                .with_help("use a percentage above 0 and at most 100"),
            );
        }
    }
    // Everything the group touches lives in the VPC of its first subnet.
    let Some(vpc) = g.subnets.iter().find_map(|s| index.subnet_vpc(s)) else {
        return;
    };
    for (i, s) in g.subnets.iter().enumerate() {
        if let Some(other) = index.subnet_vpc(s).filter(|v| *v != vpc) {
            out.push(other_vpc(
                "E0404",
                a,
                &format!("subnets[{i}]"),
                &s.address(),
                other,
                vpc,
            ));
        }
    }
    for (i, t) in g.target_groups.iter().enumerate() {
        if let Some(other) = index
            .target_group(t)
            .map(|t| t.vpc.id())
            .filter(|v| *v != vpc)
        {
            out.push(other_vpc(
                "E0404",
                a,
                &format!("target_groups[{i}]"),
                &t.address(),
                other,
                vpc,
            ));
        }
    }
    if let Some(template) = index.launch_template(&g.launch_template) {
        for group in &template.security_groups {
            if let Some(other) = index.group_vpc(group).filter(|v| *v != vpc) {
                out.push(other_vpc(
                    "E0404",
                    a,
                    "launch_template",
                    &group.address(),
                    other,
                    vpc,
                ));
            }
        }
    }
}

// ---------------------------------------------------------------- E05xx data

/// S3 general purpose bucket naming rules.
pub(crate) fn bucket_name_problem(name: &str) -> Option<&'static str> {
    let b = name.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return Some("must be 3-63 characters long");
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
    {
        return Some("may contain only lowercase letters, digits, `.` and `-`");
    }
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !b.first().is_some_and(alnum) || !b.last().is_some_and(alnum) {
        return Some("must begin and end with a letter or digit");
    }
    if name.contains("..") {
        return Some("must not contain two adjacent periods");
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
    {
        return Some("must not be formatted as an IP address");
    }
    if ["xn--", "sthree-", "amzn-s3-demo-"]
        .iter()
        .any(|p| name.starts_with(p))
    {
        return Some("must not start with a reserved prefix (`xn--`, `sthree-`, `amzn-s3-demo-`)");
    }
    if ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
        .iter()
        .any(|s| name.ends_with(s))
    {
        return Some("must not end with a reserved suffix (`-s3alias`, `--ol-s3`, `.mrap`, `--x-s3`, `--table-s3`)");
    }
    None
}

fn bucket(a: &Address, b: &Bucket, out: &mut Vec<Diagnostic>) {
    if let Some(problem) = bucket_name_problem(&b.name) {
        out.push(
            error(
                "E0501",
                a,
                "name",
                format!("bucket name `{}` {problem}", b.name),
            )
            .with_help(
                "bucket names are 3-63 lowercase letters, digits, `.` and `-`, globally unique",
            ),
        );
    }
}

/// E0515 to E0518: server access logging into another bucket that S3 can write to, under a
/// usable prefix, and a lifecycle of whole days.
fn bucket_logs(index: &Index<'_>, a: &Address, b: &Bucket, out: &mut Vec<Diagnostic>) {
    if let Some(l) = &b.access_logging {
        if l.target.address() == *a {
            out.push(
                error("E0515", a, "access_logging.target", "the bucket logs into itself: every log object written is a request that is logged again")
                    .with_help("log into a separate bucket, e.g. `Bucket::logs(name)`"),
            );
        } else if let Some(target) = index.bucket(&l.target) {
            kms_target(
                a,
                "access_logging.target",
                &l.target,
                target,
                "E0516",
                "S3 server access logs",
                out,
            );
        }
        if l.prefix.starts_with('/') {
            out.push(
                error(
                    "E0517",
                    a,
                    "access_logging.prefix",
                    format!("prefix `{}` starts with `/`", l.prefix),
                )
                .with_help("object keys do not start with `/`: write `s3/NAME/`"),
            );
        }
    }
    if let Some(rule) = &b.lifecycle {
        for (field, days) in [
            ("lifecycle.expire_after_days", rule.expire_after_days),
            (
                "lifecycle.noncurrent_expire_after_days",
                rule.noncurrent_expire_after_days,
            ),
            (
                "lifecycle.abort_incomplete_uploads_after_days",
                rule.abort_incomplete_uploads_after_days,
            ),
        ] {
            if days == 0 {
                out.push(
                    error("E0518", a, field, "0 days")
                        .with_help("lifecycle rules count whole days from 1; leave the lifecycle unset to keep objects"),
                );
            }
        }
    }
}

/// E0316 and E0516: log delivery writes with SSE-S3 only, so a log bucket must not default to
/// SSE-KMS.
fn kms_target(
    a: &Address,
    field: &str,
    handle: &Ref<Bucket>,
    target: &Bucket,
    id: &str,
    what: &str,
    out: &mut Vec<Diagnostic>,
) {
    if let BucketEncryption::Kms { .. } = target.encryption {
        out.push(
            error(
                id,
                a,
                field,
                format!(
                    "{} is encrypted with SSE-KMS, which {what} cannot be written with",
                    handle.address()
                ),
            )
            .with_help("encrypt the log bucket with `BucketEncryption::S3Managed` (the default)"),
        );
    }
}

/// E0315 and E0316: an access-log prefix ELB accepts, into a bucket it can write.
fn access_logs(index: &Index<'_>, a: &Address, lb: &LoadBalancer, out: &mut Vec<Diagnostic>) {
    let Some(l) = &lb.access_logs else { return };
    if let Some(prefix) = &l.prefix {
        let problem = if prefix.contains("AWSLogs") {
            Some("contains `AWSLogs`, which ELB adds itself")
        } else if prefix.starts_with('/') || prefix.ends_with('/') {
            Some("starts or ends with `/`")
        } else {
            None
        };
        if let Some(problem) = problem {
            out.push(
                error("E0315", a, "access_logs.prefix", format!("prefix `{prefix}` {problem}"))
                    .with_help("a prefix such as `alb/web`: ELB writes under PREFIX/AWSLogs/ACCOUNT/; `\"\"` for none"),
            );
        }
    }
    if let Some(target) = index.bucket(&l.bucket) {
        kms_target(
            a,
            "access_logs.bucket",
            &l.bucket,
            target,
            "E0316",
            "load balancer access logs",
            out,
        );
    }
}

/// RDS instance identifiers: 1-63 letters, digits or hyphens; a letter first; no trailing
/// hyphen and no two hyphens in a row.
pub(crate) fn db_identifier_ok(id: &str) -> bool {
    let b = id.as_bytes();
    (1..=63).contains(&b.len())
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && !id.ends_with('-')
        && !id.contains("--")
}

fn env_var_ok(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn db_instance(index: &Index<'_>, a: &Address, db: &DbInstance, out: &mut Vec<Diagnostic>) {
    if let Some(id) = &db.identifier {
        if !db_identifier_ok(id) {
            out.push(
                error("E0502", a, "identifier", format!("`{id}` is not a valid DB instance identifier"))
                    .with_help("use 1-63 letters, digits and single hyphens, starting with a letter and not ending with a hyphen"),
            );
        }
    }
    if !(20..=65536).contains(&db.allocated_storage_gib) {
        out.push(
            error(
                "E0503",
                a,
                "allocated_storage_gib",
                format!("`{}` GiB is out of range", db.allocated_storage_gib),
            )
            .with_help("general-purpose storage for MySQL, MariaDB and PostgreSQL is 20-65536 GiB"),
        );
    }
    // Managed, from-env and plain are one enum, so "a plain password together with the managed
    // one" cannot be written; what can go wrong is the plain value or the variable name.
    let max_len = match db.engine {
        DbEngine::Mysql | DbEngine::Mariadb => 41,
        DbEngine::Postgres => 128,
    };
    match &db.master_password {
        MasterPassword::Managed => {}
        MasterPassword::FromEnv(var) => {
            if !env_var_ok(var) {
                out.push(
                    error(
                        "E0504",
                        a,
                        "master_password",
                        format!("`{var}` is not an environment variable name"),
                    )
                    .with_help("use letters, digits and `_`, not starting with a digit"),
                );
            }
        }
        MasterPassword::Plain(secret) => {
            let value = secret.expose();
            let problem = if secret.is_redacted() {
                Some(format!(
                    "is the redaction placeholder `{}`, not a password",
                    Sensitive::REDACTED
                ))
            } else if value.len() < 8 || value.len() > max_len {
                Some(format!("is {} characters long", value.chars().count()))
            } else if value
                .chars()
                .any(|c| !c.is_ascii_graphic() || matches!(c, '/' | '"' | '@'))
            {
                Some("contains `/`, `\"`, `@`, a space or a non-printable character".to_string())
            } else {
                None
            };
            if let Some(problem) = problem {
                out.push(
                    error("E0504", a, "master_password", format!("the plain master password (sensitive) {problem}"))
                        .with_help(format!(
                            "use MasterPassword::Managed, or 8-{max_len} printable ASCII characters other than `/`, `\"`, `@` and space"
                        )),
                );
            }
        }
    }
    let user = &db.master_username;
    let user_max = match db.engine {
        DbEngine::Mysql | DbEngine::Mariadb => 16,
        DbEngine::Postgres => 63,
    };
    let user_ok = (1..=user_max).contains(&user.len())
        && user.as_bytes()[0].is_ascii_alphabetic()
        && user.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && user != "rdsadmin";
    if !user_ok {
        out.push(
            error(
                "E0505",
                a,
                "master_username",
                format!(
                    "`{user}` is not a valid master user name for {}",
                    db.engine.as_str()
                ),
            )
            .with_help(format!(
                "use 1-{user_max} letters, digits and `_`, starting with a letter (not `rdsadmin`)"
            )),
        );
    }
    if let Some(name) = &db.db_name {
        let max = match db.engine {
            DbEngine::Mysql | DbEngine::Mariadb => 64,
            DbEngine::Postgres => 63,
        };
        let ok = (1..=max).contains(&name.len())
            && name.as_bytes()[0].is_ascii_alphabetic()
            && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        if !ok {
            out.push(
                error(
                    "E0507",
                    a,
                    "db_name",
                    format!("`{name}` is not a valid database name"),
                )
                .with_help(format!(
                    "use 1-{max} letters, digits and `_`, starting with a letter"
                )),
            );
        }
    }
    if db.backup_retention_days > 35 {
        out.push(
            error(
                "E0508",
                a,
                "backup_retention_days",
                format!("`{}` days is out of range", db.backup_retention_days),
            )
            .with_help("use 0-35 days"),
        );
    }
    // The database's groups must be in the VPC of its subnet group.
    let subnet_vpc = index
        .stack
        .get(&db.subnet_group.address())
        .and_then(|d| match &d.resource {
            Resource::DbSubnetGroup(g) => g.subnets.iter().find_map(|s| index.subnet_vpc(s)),
            _ => None,
        });
    if let Some(vpc) = subnet_vpc {
        for (i, g) in db.security_groups.iter().enumerate() {
            if let Some(other) = index.group_vpc(g).filter(|v| *v != vpc) {
                out.push(other_vpc(
                    "E0509",
                    a,
                    &format!("security_groups[{i}]"),
                    &g.address(),
                    other,
                    vpc,
                ));
            }
        }
    }
    if let Some(days) = db.performance_insights_retention_days {
        performance_insights(a, db, days, out);
    }
    if let Some(monitoring) = &db.enhanced_monitoring {
        enhanced_monitoring(index, a, monitoring, out);
    }
    if db.iam_database_authentication && db.engine == DbEngine::Mariadb {
        mariadb_iam_auth(a, &db.engine_version, out);
    }
}

/// Classes on which MySQL and MariaDB have no Performance Insights.
const NO_PERFORMANCE_INSIGHTS: &[&str] = &[
    "db.t2.micro",
    "db.t2.small",
    "db.t3.micro",
    "db.t3.small",
    "db.t4g.micro",
    "db.t4g.small",
];

/// E0511 and E0512: Performance Insights on a class that has it, kept a period AWS accepts.
fn performance_insights(a: &Address, db: &DbInstance, days: u32, out: &mut Vec<Diagnostic>) {
    let field = "performance_insights_retention_days";
    let class = db.instance_class.as_str();
    if db.engine != DbEngine::Postgres && NO_PERFORMANCE_INSIGHTS.contains(&class) {
        out.push(
            error("E0511", a, field, format!("{} on `{class}` has no Performance Insights", db.engine.as_str()))
                .with_help("use a medium or larger class (db.t3.medium, db.t4g.medium, db.m7g.large...), or leave Performance Insights off"),
        );
    }
    if !(days == 7 || days == 731 || (days % 31 == 0 && (31..=713).contains(&days))) {
        out.push(
            error(
                "E0512",
                a,
                field,
                format!("`{days}` days is not a Performance Insights retention period"),
            )
            .with_help(
                "use 7 (free), a number of months from 1 to 23 times 31 (31, 62, ... 713), or 731",
            ),
        );
    }
}

/// Enhanced-monitoring intervals RDS accepts, in seconds (0 is off: no `enhanced_monitoring`).
const MONITORING_INTERVALS: &[u32] = &[1, 5, 10, 15, 30, 60];

/// E0513 and E0514: a monitoring interval RDS accepts, and a role its monitoring service may
/// assume.
fn enhanced_monitoring(
    index: &Index<'_>,
    a: &Address,
    m: &EnhancedMonitoring,
    out: &mut Vec<Diagnostic>,
) {
    if !MONITORING_INTERVALS.contains(&m.interval_seconds) {
        out.push(
            error("E0513", a, "enhanced_monitoring.interval_seconds", format!("`{}` seconds is not an enhanced-monitoring interval", m.interval_seconds))
                .with_help("use 1, 5, 10, 15, 30 or 60 seconds (0 turns monitoring off: leave enhanced_monitoring unset)"),
        );
    }
    let role = m.role.address();
    if let Some(Resource::Role(r)) = index.get(&role) {
        if !r
            .trusted_services
            .iter()
            .any(|s| s == Role::RDS_MONITORING_SERVICE)
        {
            out.push(
                error(
                    "E0514",
                    a,
                    "enhanced_monitoring.role",
                    format!(
                        "{role} does not trust `{}`, so RDS cannot send metrics as it",
                        Role::RDS_MONITORING_SERVICE
                    ),
                )
                .with_help("declare the role with Role::rds_monitoring()"),
            );
        }
    }
}

/// E0510: RDS for MariaDB has IAM database authentication from 10.11 on.
fn mariadb_iam_auth(a: &Address, version: &str, out: &mut Vec<Diagnostic>) {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (10, 11) {
        out.push(
            error("E0510", a, "iam_database_authentication", format!("RDS for MariaDB {version} has no IAM database authentication"))
                .with_help("use MariaDB 10.11 or later, or turn it off with .iam_database_authentication(false) and allow INFRA-RDS-005 with the reason"),
        );
    }
}

fn db_subnet_group(index: &Index<'_>, a: &Address, g: &DbSubnetGroup, out: &mut Vec<Diagnostic>) {
    let zones: BTreeSet<&str> = g
        .subnets
        .iter()
        .filter_map(|s| index.subnet(s))
        .map(|s| s.availability_zone.as_str())
        .collect();
    if zones.len() < 2 {
        out.push(
            error(
                "E0506",
                a,
                "subnets",
                format!("{} subnet(s) in {} zone(s)", g.subnets.len(), zones.len()),
            )
            .with_help("a DB subnet group needs subnets in at least two availability zones"),
        );
    }
    if let Some(vpc) = g.subnets.iter().find_map(|s| index.subnet_vpc(s)) {
        for (i, s) in g.subnets.iter().enumerate() {
            if let Some(other) = index.subnet_vpc(s).filter(|v| *v != vpc) {
                out.push(other_vpc(
                    "E0509",
                    a,
                    &format!("subnets[{i}]"),
                    &s.address(),
                    other,
                    vpc,
                ));
            }
        }
    }
}
