//! Lints: warnings with stable ids, mapped to checkov / trivy / AWS Security Hub controls where
//! one exists. Documented in docs/rules.md.

use crate::model::*;
use crate::refs::{Address, Ref};
use crate::stack::Stack;

use super::cidr::Cidr;
use super::index::Index;
use super::Diagnostic;

/// A lint's id, what it flags and the matching controls of other tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LintInfo {
    pub id: &'static str,
    pub summary: &'static str,
    pub mapping: Option<&'static str>,
}

const fn lint(id: &'static str, summary: &'static str, mapping: Option<&'static str>) -> LintInfo {
    LintInfo {
        id,
        summary,
        mapping,
    }
}

pub const SG_SSH: LintInfo = lint(
    "INFRA-SG-001",
    "SSH (22) open to the internet",
    Some("checkov CKV_AWS_24; trivy AVD-AWS-0107; Security Hub EC2.13"),
);
pub const SG_RDP: LintInfo = lint(
    "INFRA-SG-002",
    "RDP (3389) open to the internet",
    Some("checkov CKV_AWS_25; trivy AVD-AWS-0107; Security Hub EC2.14"),
);
pub const SG_DB: LintInfo = lint(
    "INFRA-SG-003",
    "database port open to the internet",
    Some("trivy AVD-AWS-0107; Security Hub EC2.19"),
);
pub const ELB_HTTP: LintInfo = lint(
    "INFRA-ELB-001",
    "HTTP listener does not redirect to HTTPS",
    Some("checkov CKV_AWS_2; trivy AVD-AWS-0054; Security Hub ELB.1"),
);
pub const ELB_HEADERS: LintInfo = lint(
    "INFRA-ELB-002",
    "load balancer does not drop invalid header fields",
    Some("checkov CKV_AWS_131; trivy AVD-AWS-0052; Security Hub ELB.4"),
);
pub const ELB_TLS: LintInfo = lint(
    "INFRA-ELB-003",
    "TLS policy outside the current allowlist",
    Some("checkov CKV_AWS_103; trivy AVD-AWS-0047; Security Hub ELB.17"),
);
pub const ELB_SHADOWED: LintInfo = lint(
    "INFRA-ELB-004",
    "listener rule shadowed by a higher-priority rule",
    None,
);
pub const IAM_SERVICE_WIDE: LintInfo = lint(
    "INFRA-IAM-001",
    "role allows every action of a service, or changes to IAM",
    Some("checkov CKV_AWS_286, CKV_AWS_289"),
);
pub const IAM_WRITE_ANYWHERE: LintInfo = lint(
    "INFRA-IAM-002",
    "role allows write actions on every resource",
    Some("checkov CKV_AWS_290, CKV_AWS_355"),
);
pub const IAM_MISSING_GRANT: LintInfo = lint(
    "INFRA-IAM-003",
    "instances are told about a bucket or secret their role cannot use",
    None,
);
pub const EC2_IMDS: LintInfo = lint(
    "INFRA-EC2-001",
    "launch template does not require IMDSv2",
    Some("checkov CKV_AWS_79; trivy AVD-AWS-0130"),
);
pub const EC2_HOP: LintInfo = lint(
    "INFRA-EC2-002",
    "metadata hop limit above 1",
    Some("checkov CKV_AWS_341 (Terraform only)"),
);
pub const EC2_SECRET: LintInfo = lint(
    "INFRA-EC2-003",
    "user data looks like it contains a secret",
    Some("checkov CKV_AWS_46 (Terraform only); trivy AVD-AWS-0029"),
);
pub const EC2_UNENCRYPTED_ROOT: LintInfo = lint(
    "INFRA-EC2-004",
    "launch template's root volume not encrypted",
    Some("checkov CKV_AWS_8 (launch configurations and instances); trivy AVD-AWS-0131"),
);
pub const RDS_PUBLIC: LintInfo = lint(
    "INFRA-RDS-001",
    "database publicly accessible",
    Some("checkov CKV_AWS_17; Security Hub RDS.2"),
);
pub const RDS_ENCRYPTION: LintInfo = lint(
    "INFRA-RDS-002",
    "database storage not encrypted",
    Some("checkov CKV_AWS_16; trivy AVD-AWS-0080; Security Hub RDS.3"),
);
pub const RDS_DELETION: LintInfo = lint(
    "INFRA-RDS-003",
    "database without deletion protection",
    Some("checkov CKV_AWS_293 (Terraform only); trivy AVD-AWS-0177; Security Hub RDS.8"),
);
pub const RDS_BACKUP: LintInfo = lint(
    "INFRA-RDS-004",
    "database backups kept fewer than 7 days",
    Some("checkov CKV_AWS_133 (Terraform only); trivy AVD-AWS-0077; Security Hub RDS.11"),
);
pub const RDS_IAM_AUTH: LintInfo = lint(
    "INFRA-RDS-005",
    "database without IAM database authentication",
    Some("checkov CKV_AWS_161; Security Hub RDS.10"),
);
pub const RDS_PLAIN_PASSWORD: LintInfo = lint(
    "INFRA-RDS-006",
    "master password written in the stack",
    Some("cfn-lint W2501; checkov CKV_SECRET_6"),
);
pub const S3_PUBLIC: LintInfo = lint("INFRA-S3-001", "bucket without a full public access block", Some("checkov CKV_AWS_53, CKV_AWS_54, CKV_AWS_55, CKV_AWS_56; trivy AVD-AWS-0086, AVD-AWS-0087, AVD-AWS-0091, AVD-AWS-0093; Security Hub S3.8"));
pub const S3_ENCRYPTION: LintInfo = lint(
    "INFRA-S3-002",
    "bucket without default encryption",
    Some("checkov CKV_AWS_19; trivy AVD-AWS-0088"),
);
pub const S3_VERSIONING: LintInfo = lint(
    "INFRA-S3-003",
    "bucket without versioning",
    Some("checkov CKV_AWS_21; trivy AVD-AWS-0090; Security Hub S3.14"),
);
pub const S3_ACCESS_LOGGING: LintInfo = lint(
    "INFRA-S3-004",
    "bucket without server access logging",
    Some("checkov CKV_AWS_18; trivy AVD-AWS-0089; Security Hub S3.9"),
);
pub const ELB_ACCESS_LOGS: LintInfo = lint(
    "INFRA-ELB-005",
    "load balancer without access logs",
    Some("checkov CKV_AWS_91; Security Hub ELB.5"),
);
pub const TG_HEALTH_PORT: LintInfo = lint(
    "INFRA-TG-001",
    "health-check port not admitted from the load balancer",
    None,
);
pub const TG_HEALTH_PORT_DIFFERS: LintInfo = lint(
    "INFRA-TG-002",
    "health-check port differs from the target port",
    None,
);
pub const TG_DOUBLE_TLS: LintInfo = lint(
    "INFRA-TG-003",
    "HTTPS target group behind an HTTPS listener",
    None,
);
pub const TG_PORT: LintInfo = lint(
    "INFRA-TG-004",
    "target port not admitted from the load balancer",
    None,
);
pub const TG_HEALTH_PROTOCOL: LintInfo = lint(
    "INFRA-TG-005",
    "health checks in another protocol than the traffic port speaks",
    None,
);
pub const ASG_HEALTH: LintInfo = lint(
    "INFRA-ASG-001",
    "group in a target group without ELB health checks",
    None,
);
pub const ASG_GRACE: LintInfo = lint(
    "INFRA-ASG-002",
    "group in a target group without a health-check grace period",
    None,
);
pub const ASG_PUBLIC_EXPOSED: LintInfo = lint(
    "INFRA-ASG-003",
    "instances with public IPs admit traffic from outside the VPC",
    Some("checkov CKV_AWS_88 (flags every public IP)"),
);
pub const ASG_NO_WAY_OUT: LintInfo = lint(
    "INFRA-ASG-004",
    "instances without public IPs in subnets routed only to an internet gateway",
    None,
);

/// Every lint, in id order.
pub const LINTS: &[LintInfo] = &[
    ASG_HEALTH,
    ASG_GRACE,
    ASG_PUBLIC_EXPOSED,
    ASG_NO_WAY_OUT,
    EC2_IMDS,
    EC2_HOP,
    EC2_SECRET,
    EC2_UNENCRYPTED_ROOT,
    ELB_HTTP,
    ELB_HEADERS,
    ELB_TLS,
    ELB_SHADOWED,
    ELB_ACCESS_LOGS,
    IAM_SERVICE_WIDE,
    IAM_WRITE_ANYWHERE,
    IAM_MISSING_GRANT,
    RDS_PUBLIC,
    RDS_ENCRYPTION,
    RDS_DELETION,
    RDS_BACKUP,
    RDS_IAM_AUTH,
    RDS_PLAIN_PASSWORD,
    S3_PUBLIC,
    S3_ENCRYPTION,
    S3_VERSIONING,
    S3_ACCESS_LOGGING,
    SG_SSH,
    SG_RDP,
    SG_DB,
    TG_HEALTH_PORT,
    TG_HEALTH_PORT_DIFFERS,
    TG_DOUBLE_TLS,
    TG_PORT,
    TG_HEALTH_PROTOCOL,
];

/// TLS policies accepted by INFRA-ELB-003: TLS 1.2 and 1.3 only, forward secrecy.
pub const TLS_POLICY_ALLOWLIST: &[&str] = &[
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
];

/// Database ports INFRA-SG-003 looks at: MySQL/MariaDB, PostgreSQL, SQL Server, Oracle,
/// MongoDB, Redis.
const DB_PORTS: &[u16] = &[3306, 5432, 1433, 1521, 27017, 6379];

/// Every lint that fires, before the stack's allow/deny settings.
pub(crate) fn check(stack: &Stack) -> Vec<Diagnostic> {
    let index = Index::new(stack);
    let mut out = Vec::new();
    for declared in &stack.resources {
        let a = declared.address();
        let out = &mut out;
        match &declared.resource {
            Resource::SecurityGroup(g) => security_group(&a, g, out),
            Resource::LoadBalancer(lb) => load_balancer(&a, lb, out),
            Resource::Listener(l) => listener(&a, l, out),
            Resource::TargetGroup(t) => target_group(&index, &a, t, out),
            Resource::LaunchTemplate(t) => {
                launch_template(&a, t, out);
                super::iam::missing_grants(&index, &a, t, out);
            }
            Resource::Role(r) => super::iam::role_lints(&a, r, out),
            Resource::AutoScalingGroup(g) => {
                auto_scaling_group(&a, g, out);
                exposed_instances(&index, &a, g, out);
                no_way_out(&index, &a, g, out);
            }
            Resource::DbInstance(db) => db_instance(&a, db, out),
            Resource::Bucket(b) => {
                bucket(&a, b, out);
                if b.access_logging.is_none() && !is_log_target(stack, &a.id) {
                    out.push(
                        Diagnostic::warning(
                            &S3_ACCESS_LOGGING,
                            &a,
                            Some("access_logging"),
                            "no server access logging: requests to the bucket leave no record",
                        )
                        .with_help("log into a log bucket: `.access_logging(&logs)` with `let logs = s.add(\"logs\", Bucket::logs(NAME))`"),
                    );
                }
            }
            _ => {}
        }
    }
    shadowed_rules(&index, &mut out);
    out
}

fn load_balancer(a: &Address, lb: &LoadBalancer, out: &mut Vec<Diagnostic>) {
    if !lb.drop_invalid_header_fields {
        out.push(
            Diagnostic::warning(
                &ELB_HEADERS,
                a,
                Some("drop_invalid_header_fields"),
                "invalid HTTP header fields are passed to the targets",
            )
            .with_help("set drop_invalid_header_fields to true"),
        );
    }
    if lb.access_logs.is_none() {
        out.push(
            Diagnostic::warning(
                &ELB_ACCESS_LOGS,
                a,
                Some("access_logs"),
                "no access logs: requests through the load balancer leave no record",
            )
            .with_help(
                "`.access_logs(&logs)` with `let logs = s.add(\"logs\", Bucket::logs(NAME))`",
            ),
        );
    }
}

fn open_to_world(peer: &Peer) -> bool {
    match peer {
        Peer::Cidr(c) | Peer::Ipv6Cidr(c) => c.parse::<Cidr>().is_ok_and(|c| c.is_everything()),
        Peer::SecurityGroup(_) => false,
    }
}

fn security_group(a: &Address, g: &SecurityGroup, out: &mut Vec<Diagnostic>) {
    for (i, rule) in g.ingress.iter().enumerate() {
        if !open_to_world(&rule.peer) {
            continue;
        }
        let field = format!("ingress[{i}]");
        let peer = match &rule.peer {
            Peer::Cidr(c) | Peer::Ipv6Cidr(c) => c.as_str(),
            Peer::SecurityGroup(_) => "",
        };
        if rule.admits_tcp(22) {
            out.push(
                Diagnostic::warning(
                    &SG_SSH,
                    a,
                    Some(&field),
                    format!("SSH (22) is open to {peer}"),
                )
                .with_help("admit SSH from a known CIDR only, or use SSM Session Manager"),
            );
        }
        if rule.admits_tcp(3389) {
            out.push(
                Diagnostic::warning(
                    &SG_RDP,
                    a,
                    Some(&field),
                    format!("RDP (3389) is open to {peer}"),
                )
                .with_help("admit RDP from a known CIDR only"),
            );
        }
        let db_ports: Vec<String> = DB_PORTS
            .iter()
            .filter(|p| rule.admits_tcp(**p))
            .map(u16::to_string)
            .collect();
        if !db_ports.is_empty() {
            out.push(
                Diagnostic::warning(
                    &SG_DB,
                    a,
                    Some(&field),
                    format!("database port(s) {} open to {peer}", db_ports.join(", ")),
                )
                .with_help("admit database traffic from the application's security group only"),
            );
        }
    }
}

fn listener(a: &Address, l: &Listener, out: &mut Vec<Diagnostic>) {
    match l.protocol {
        AppProtocol::Http => {
            let redirects = matches!(
                l.default_action,
                ListenerAction::Redirect {
                    protocol: Some(AppProtocol::Https),
                    ..
                }
            );
            if !redirects {
                out.push(
                    Diagnostic::warning(
                        &ELB_HTTP,
                        a,
                        Some("default_action"),
                        format!("HTTP listener on port {} serves plain HTTP", l.port),
                    )
                    .with_help("redirect to HTTPS: ListenerAction::redirect_to_https()"),
                );
            }
        }
        AppProtocol::Https => {
            // Without an explicit policy AWS picks ELBSecurityPolicy-2016-08, which still
            // accepts TLS 1.0 and 1.1, so a missing policy is flagged too.
            let policy = l.ssl_policy.as_deref();
            if !policy.is_some_and(|p| TLS_POLICY_ALLOWLIST.contains(&p)) {
                out.push(
                    Diagnostic::warning(
                        &ELB_TLS,
                        a,
                        Some("ssl_policy"),
                        format!(
                            "TLS policy `{}` is not in the allowlist",
                            policy.unwrap_or("(AWS default)")
                        ),
                    )
                    .with_help(format!(
                        "use {} or another TLS 1.2+/1.3 policy listed in docs/rules.md",
                        DEFAULT_TLS_POLICY
                    )),
                );
            }
        }
    }
}

/// Whether `rule` admits TCP `port` from a member of `from` groups or from a CIDR covering
/// `vpc` (which includes 0.0.0.0/0).
fn admits_from(rule: &Rule, port: u16, from: &[Ref<SecurityGroup>], vpc: Option<&Cidr>) -> bool {
    rule.admits_tcp(port)
        && match &rule.peer {
            Peer::SecurityGroup(g) => from.contains(g),
            Peer::Cidr(c) => c
                .parse::<Cidr>()
                .is_ok_and(|c| c.is_everything() || vpc.is_some_and(|v| c.contains(v))),
            Peer::Ipv6Cidr(_) => false,
        }
}

/// Whether traffic on `port` can go from the load balancer's groups to the instances' groups:
/// an egress rule of the load balancer and an ingress rule of the instances both admit it.
fn reachable(
    index: &Index<'_>,
    port: u16,
    lb_groups: &[Ref<SecurityGroup>],
    instance_groups: &[Ref<SecurityGroup>],
    vpc: Option<&Cidr>,
) -> bool {
    let egress_ok = lb_groups.is_empty()
        || lb_groups
            .iter()
            .filter_map(|g| index.security_group(g))
            .flat_map(|g| &g.egress)
            .any(|r| admits_from(r, port, instance_groups, vpc));
    let ingress_ok = instance_groups
        .iter()
        .filter_map(|g| index.security_group(g))
        .flat_map(|g| &g.ingress)
        .any(|r| admits_from(r, port, lb_groups, vpc));
    egress_ok && ingress_ok
}

fn names(groups: &[Ref<SecurityGroup>]) -> String {
    groups
        .iter()
        .map(|g| g.address().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn target_group(index: &Index<'_>, a: &Address, t: &TargetGroup, out: &mut Vec<Diagnostic>) {
    let handle: Ref<TargetGroup> = Ref::from_id(a.id.clone());
    let health_port = t.health_check.effective_port(t.port);
    if health_port != t.port {
        out.push(
            Diagnostic::warning(&TG_HEALTH_PORT_DIFFERS, a, Some("health_check.port"), format!("health checks probe port {health_port}, traffic goes to port {}", t.port))
                .with_help("probe the traffic port unless the app serves health checks elsewhere (then allow this lint with the reason)"),
        );
    }
    if health_port == t.port && t.health_check.protocol != t.protocol {
        let (check, targets) = (t.health_check.protocol.as_str(), t.protocol.as_str());
        out.push(
            Diagnostic::warning(&TG_HEALTH_PROTOCOL, a, Some("health_check.protocol"), format!("{check} health checks on the traffic port {}, which speaks {targets}: every target will be unhealthy", t.port))
                .with_help(format!("use HealthCheck::{}(path) for {targets} targets", targets.to_lowercase())),
        );
    }
    let forwarders = index.forwarders(&handle);
    if t.protocol == AppProtocol::Https {
        if let Some((listener, _)) = forwarders
            .iter()
            .find(|(l, _)| l.protocol == AppProtocol::Https)
        {
            out.push(
                Diagnostic::warning(&TG_DOUBLE_TLS, a, Some("protocol"), format!("HTTPS targets behind the HTTPS listener on port {}: TLS twice, 502 if the app speaks plain HTTP", listener.port))
                    .with_help("the load balancer already terminates TLS; use AppProtocol::Http for the targets"),
            );
        }
    }
    let instance_groups = index.instance_groups(&handle);
    if instance_groups.is_empty() {
        return;
    }
    let vpc = index.vpc_cidr(&t.vpc);
    let mut lbs: Vec<Ref<LoadBalancer>> = forwarders.into_iter().map(|(_, lb)| lb).collect();
    lbs.sort();
    lbs.dedup();
    for lb_ref in &lbs {
        let Some(lb) = index.load_balancer(lb_ref) else {
            continue;
        };
        let lb_ref = lb_ref.address();
        let lb_groups = &lb.security_groups;
        if !reachable(index, t.port, lb_groups, &instance_groups, vpc.as_ref()) {
            out.push(
                Diagnostic::warning(&TG_PORT, a, Some("port"), format!("port {} is not admitted from {lb_ref} ({}) by the instances' groups ({})", t.port, names(lb_groups), names(&instance_groups)))
                    .with_help(format!("add Rule::tcp({}).from_group(..) for the load balancer's group to the instances' group", t.port)),
            );
        }
        if health_port != t.port
            && !reachable(
                index,
                health_port,
                lb_groups,
                &instance_groups,
                vpc.as_ref(),
            )
        {
            out.push(
                Diagnostic::warning(&TG_HEALTH_PORT, a, Some("health_check.port"), format!("health-check port {health_port} is not admitted from {lb_ref} ({}) by the instances' groups ({}): every target will be unhealthy", names(lb_groups), names(&instance_groups)))
                    .with_help("probe the port the instances' security group opens, or open the health-check port to the load balancer"),
            );
        }
    }
}

/// Markers of a hard-coded credential in a key name.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
];

/// The first line of `text` that looks like it holds a secret, with what gave it away (never
/// the value itself).
pub(crate) fn find_secret(text: &str) -> Option<(usize, String)> {
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        if line.contains("PRIVATE KEY-----") {
            return Some((line_no, "a PEM private key".into()));
        }
        let bytes = line.as_bytes();
        for (i, w) in bytes.windows(4).enumerate() {
            if (w == b"AKIA" || w == b"ASIA")
                && bytes.len() >= i + 20
                && bytes[i + 4..i + 20]
                    .iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
            {
                return Some((line_no, "an AWS access key id".into()));
            }
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        for (t, token) in tokens.iter().enumerate() {
            let Some(pos) = token.find(['=', ':']) else {
                continue;
            };
            let key = token[..pos]
                .trim_matches(|c: char| c == '-' || c == '"' || c == '\'')
                .to_ascii_lowercase();
            if !SECRET_KEYS.iter().any(|k| key.contains(k)) {
                continue;
            }
            let inline = &token[pos + 1..];
            let value = if inline.is_empty() {
                tokens.get(t + 1).copied().unwrap_or("")
            } else {
                inline
            };
            let value = value.trim_matches(|c: char| c == '"' || c == '\'' || c == ';');
            // An ARN names where a secret is kept (Secrets Manager, SSM), not the secret.
            let indirect = value.is_empty()
                || value.starts_with(['$', '`', '<', '{', '('])
                || value.starts_with("arn:");
            if !indirect {
                return Some((line_no, format!("`{}` set to a literal", &token[..pos])));
            }
        }
    }
    None
}

fn launch_template(a: &Address, t: &LaunchTemplate, out: &mut Vec<Diagnostic>) {
    if t.metadata_options.http_tokens != HttpTokens::Required {
        out.push(
            Diagnostic::warning(
                &EC2_IMDS,
                a,
                Some("metadata_options.http_tokens"),
                "IMDSv1 is allowed (http_tokens `optional`)",
            )
            .with_help("set http_tokens to Required (the default)"),
        );
    }
    let hop = t.metadata_options.http_put_response_hop_limit;
    if hop > 1 {
        out.push(
            Diagnostic::warning(
                &EC2_HOP,
                a,
                Some("metadata_options.http_put_response_hop_limit"),
                format!("hop limit {hop} lets containers on the host reach instance credentials"),
            )
            .with_help("use a hop limit of 1 unless containers need the metadata service"),
        );
    }
    if !t.root_volume.encrypted {
        out.push(
            Diagnostic::warning(&EC2_UNENCRYPTED_ROOT, a, Some("root_volume.encrypted"), "the instances' root volumes are not encrypted (unless the account encrypts EBS by default)")
                .with_help("keep the root volume encrypted (the default); `root_volume_kms_key` picks the key"),
        );
    }
    if let Some((line, what)) = t.user_data.as_deref().and_then(find_secret) {
        out.push(
            Diagnostic::warning(&EC2_SECRET, a, Some("user_data"), format!("line {line} has {what}; user data is readable by anyone who can describe the instance"))
                .with_help("read secrets at boot from Secrets Manager or SSM Parameter Store instead"),
        );
    }
}

/// Instances behind a load balancer that get public IPs (the template says so, or a subnet maps
/// them on launch) are reachable from the internet on whatever their groups admit from outside
/// the VPC: anything but the load balancer (and other groups) is exposed.
fn exposed_instances(
    index: &Index<'_>,
    a: &Address,
    g: &AutoScalingGroup,
    out: &mut Vec<Diagnostic>,
) {
    let Some(template) = index.launch_template(&g.launch_template) else {
        return;
    };
    let public = template.public_ip.unwrap_or_else(|| {
        g.subnets
            .iter()
            .any(|s| index.subnet(s).is_some_and(|s| s.map_public_ip_on_launch))
    });
    if g.target_groups.is_empty() || !public {
        return;
    }
    for group_ref in &template.security_groups {
        let Some(group) = index.security_group(group_ref) else {
            continue;
        };
        let vpc = index.vpc_cidr(&group.vpc);
        let outside = group.ingress.iter().find_map(|rule| match &rule.peer {
            Peer::Cidr(c) | Peer::Ipv6Cidr(c) => {
                let inside = c
                    .parse::<Cidr>()
                    .ok()
                    .zip(vpc)
                    .is_some_and(|(c, v)| v.contains(&c));
                (!inside).then_some(c.as_str())
            }
            Peer::SecurityGroup(_) => None,
        });
        if let Some(cidr) = outside {
            out.push(
                Diagnostic::warning(&ASG_PUBLIC_EXPOSED, a, Some("subnets"), format!("the instances get public IPs and {} admits {cidr}, so they are reachable from the internet, not only through the load balancer", group_ref.address()))
                    .with_help("admit only the load balancer's group on the instances' groups (SSM Session Manager replaces SSH), or launch them in private subnets behind a NAT gateway"),
            );
        }
    }
}

/// A template that turns public IPs off, used in subnets whose way out is an internet gateway:
/// the stack has no NAT gateway, so the instances cannot reach the internet at all (package
/// installs, image pulls, SSM and Secrets Manager endpoints).
fn no_way_out(index: &Index<'_>, a: &Address, g: &AutoScalingGroup, out: &mut Vec<Diagnostic>) {
    let Some(template) = index.launch_template(&g.launch_template) else {
        return;
    };
    if template.public_ip != Some(false) {
        return;
    }
    if let Some(subnet) = g
        .subnets
        .iter()
        .find(|s| index.routed_to_internet_gateway(s))
    {
        out.push(
            Diagnostic::warning(&ASG_NO_WAY_OUT, a, Some("launch_template"), format!("{} gives the instances no public IP, and {} reaches the internet only through an internet gateway, so they cannot reach the internet (packages, images, SSM, Secrets Manager)", g.launch_template.address(), subnet.address()))
                .with_help("drop `.public_ip(false)`: the instances' security groups still decide what reaches them (the other way out, a NAT gateway, is not something infra declares)"),
        );
    }
}

fn auto_scaling_group(a: &Address, g: &AutoScalingGroup, out: &mut Vec<Diagnostic>) {
    if g.target_groups.is_empty() {
        return;
    }
    if g.health_check_type != HealthCheckType::Elb {
        out.push(
            Diagnostic::warning(&ASG_HEALTH, a, Some("health_check_type"), "the group is in a target group but only replaces instances that fail EC2 checks")
                .with_help("use HealthCheckType::Elb so instances the load balancer finds unhealthy are replaced"),
        );
    }
    if g.health_check_grace_period_seconds == 0 {
        out.push(
            Diagnostic::warning(
                &ASG_GRACE,
                a,
                Some("health_check_grace_period_seconds"),
                "no grace period: new instances can be replaced before the app has started",
            )
            .with_help("give the app time to boot, e.g. 120 seconds"),
        );
    }
}

fn db_instance(a: &Address, db: &DbInstance, out: &mut Vec<Diagnostic>) {
    if db.publicly_accessible {
        out.push(
            Diagnostic::warning(
                &RDS_PUBLIC,
                a,
                Some("publicly_accessible"),
                "the database has a public address",
            )
            .with_help("keep it private and admit the app's security group"),
        );
    }
    if !db.storage_encrypted {
        out.push(
            Diagnostic::warning(
                &RDS_ENCRYPTION,
                a,
                Some("storage_encrypted"),
                "storage is not encrypted",
            )
            .with_help("set storage_encrypted (this forces a new instance)"),
        );
    }
    if !db.deletion_protection {
        out.push(
            Diagnostic::warning(
                &RDS_DELETION,
                a,
                Some("deletion_protection"),
                "the database can be deleted by one API call",
            )
            .with_help("set deletion_protection to true"),
        );
    }
    if db.backup_retention_days < 7 {
        out.push(
            Diagnostic::warning(
                &RDS_BACKUP,
                a,
                Some("backup_retention_days"),
                format!("backups are kept {} day(s)", db.backup_retention_days),
            )
            .with_help("keep backups at least 7 days"),
        );
    }
    if !db.iam_database_authentication {
        out.push(
            Diagnostic::warning(
                &RDS_IAM_AUTH,
                a,
                Some("iam_database_authentication"),
                "only passwords can log in: IAM database authentication is off",
            )
            .with_help("turn it on (the default; it costs nothing and passwords keep working), then `db.grant_connect(user)` to a role"),
        );
    }
    if matches!(db.master_password, MasterPassword::Plain(_)) {
        out.push(
            Diagnostic::warning(
                &RDS_PLAIN_PASSWORD,
                a,
                Some("master_password"),
                "the master password (sensitive) is written in the stack, so it is in the stack file, its JSON and its history",
            )
            .with_help("use MasterPassword::Managed (the default: AWS keeps it in Secrets Manager) or MasterPassword::FromEnv(\"VAR\")"),
        );
    }
}

fn bucket(a: &Address, b: &Bucket, out: &mut Vec<Diagnostic>) {
    if !b.public_access_block.is_full() {
        out.push(
            Diagnostic::warning(
                &S3_PUBLIC,
                a,
                Some("public_access_block"),
                "public access is not fully blocked",
            )
            .with_help("use PublicAccessBlock::ALL"),
        );
    }
    if b.encryption == BucketEncryption::None {
        out.push(
            Diagnostic::warning(
                &S3_ENCRYPTION,
                a,
                Some("encryption"),
                "no default encryption",
            )
            .with_help("use BucketEncryption::S3Managed or Kms"),
        );
    }
    if !b.versioning {
        out.push(
            Diagnostic::warning(
                &S3_VERSIONING,
                a,
                Some("versioning"),
                "versioning is off: overwritten or deleted objects are gone",
            )
            .with_help("turn versioning on"),
        );
    }
}

/// Whether every string matching pattern `p` also matches pattern `q` (ALB patterns: `*` any
/// run, `?` one character). Conservative: only exact, `*`, `prefix*` and `*suffix` patterns of
/// `q` are understood.
pub(crate) fn pattern_covers(q: &str, p: &str) -> bool {
    if q == p || q == "*" {
        return true;
    }
    if q.contains('?') || q.matches('*').count() != 1 {
        return false;
    }
    if let Some(prefix) = q.strip_suffix('*') {
        return p.starts_with(prefix);
    }
    if let Some(suffix) = q.strip_prefix('*') {
        return p.ends_with(suffix);
    }
    false
}

/// Whether every request matching `later` also matches `earlier`.
fn rule_covers(earlier: &ListenerRule, later: &ListenerRule) -> bool {
    !earlier.conditions.is_empty()
        && earlier.conditions.iter().all(|ce| {
            later.conditions.iter().any(|cl| match (ce, cl) {
                (Condition::PathPattern(e), Condition::PathPattern(l)) => {
                    !l.is_empty() && l.iter().all(|p| e.iter().any(|q| pattern_covers(q, p)))
                }
                (Condition::HostHeader(e), Condition::HostHeader(l)) => {
                    !l.is_empty()
                        && l.iter().all(|p| {
                            let p = p.to_ascii_lowercase();
                            e.iter()
                                .any(|q| pattern_covers(&q.to_ascii_lowercase(), &p))
                        })
                }
                _ => false,
            })
        })
}

fn shadowed_rules(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    let rules: Vec<(&Address, &ListenerRule)> = index
        .resources()
        .filter_map(|(a, r)| match r {
            Resource::ListenerRule(r) => Some((a, r)),
            _ => None,
        })
        .collect();
    for (a, later) in &rules {
        let shadow = rules.iter().find(|(_, earlier)| {
            earlier.listener == later.listener
                && earlier.priority < later.priority
                && rule_covers(earlier, later)
        });
        if let Some((b, earlier)) = shadow {
            out.push(
                Diagnostic::warning(&ELB_SHADOWED, a, Some("priority"), format!("never matches: {b} (priority {}) matches every request this rule does first", earlier.priority))
                    .with_help("give this rule a lower priority number than the broader rule, or narrow the broader rule"),
            );
        }
    }
}
