//! ACM certificates and the Application Load Balancer: target groups, load balancers,
//! listeners and listener rules.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::data::Bucket;
use super::dns::HostedZone;
use super::logs::AccessLogs;
use super::network::{SecurityGroup, Subnet, Vpc};
use crate::refs::{Kind, Ref, ResourceKind};

/// An ACM certificate: requested with DNS validation, imported from PEM files, or an existing ARN.
///
/// Builders for one source leave the others unchanged: [`Certificate::validate_in`],
/// [`Certificate::alternative_name`], [`Certificate::wait_for_issued`] and
/// [`Certificate::issued_within`] only act on a request, [`Certificate::chain`] only on an import.
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// let zone = s.add("site", HostedZone::existing("example.com"));
/// let cert = s.add(
///     "site",
///     Certificate::request("example.com")
///         .alternative_name("www.example.com")
///         .validate_in(&zone),
/// );
/// s.output("certificate_arn", cert.arn());
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Certificate {
    /// Request a public certificate validated by DNS; the CNAME records to create become outputs.
    Request {
        domain_name: String,
        alternative_names: Vec<String>,
        /// Apply waits until ACM reports ISSUED.
        wait_for_issued: bool,
        /// How long apply waits for ISSUED (here and before an HTTPS listener uses the
        /// certificate); `None`: 75 minutes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issued_within_seconds: Option<u64>,
        /// The zone apply writes the DNS validation records into (with their ownership
        /// records), before it waits for ISSUED; destroy removes them with the certificate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        validate_in: Option<Ref<HostedZone>>,
    },
    /// Import PEM files. The files are read at apply time, so no key material is ever part of
    /// the stack's JSON or a plan.
    Import {
        certificate_pem: String,
        private_key_pem: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chain_pem: Option<String>,
    },
    /// A certificate managed elsewhere, by ARN. Never created, changed or deleted.
    Existing { arn: String },
}

impl Certificate {
    /// Request a public certificate for `domain_name` (`*.example.com` for a wildcard), validated
    /// by DNS. Its validation records are the attribute [`Ref::validation_records`]; with
    /// [`Certificate::validate_in`] apply writes them itself. Apply does not wait for ISSUED
    /// here unless told ([`Certificate::wait_for_issued`]); an HTTPS listener using it waits.
    pub fn request(domain_name: impl Into<String>) -> Self {
        Certificate::Request {
            domain_name: domain_name.into(),
            alternative_names: Vec::new(),
            wait_for_issued: false,
            issued_within_seconds: None,
            validate_in: None,
        }
    }

    /// Write the DNS validation records into `zone` (requests only): apply creates them once
    /// ACM publishes them, then waits for ISSUED. Every name of the certificate must be the
    /// zone or below it (`E0706`). Default: no zone; the records are only an output.
    pub fn validate_in(mut self, zone: &Ref<HostedZone>) -> Self {
        if let Certificate::Request { validate_in, .. } = &mut self {
            *validate_in = Some(zone.clone());
        }
        self
    }

    /// The zone the validation records go into, if any.
    pub fn validated_in(&self) -> Option<&Ref<HostedZone>> {
        match self {
            Certificate::Request { validate_in, .. } => validate_in.as_ref(),
            _ => None,
        }
    }

    /// Add a subject alternative name (requests only; ignored otherwise). Call once per name;
    /// default: none.
    pub fn alternative_name(mut self, name: impl Into<String>) -> Self {
        if let Certificate::Request {
            alternative_names, ..
        } = &mut self
        {
            alternative_names.push(name.into());
        }
        self
    }

    /// Make apply wait until the requested certificate is ISSUED before going on to the
    /// resources that need it (requests only). Default: no wait here; an HTTPS listener using
    /// the certificate waits for it anyway.
    pub fn wait_for_issued(mut self) -> Self {
        if let Certificate::Request {
            wait_for_issued, ..
        } = &mut self
        {
            *wait_for_issued = true;
        }
        self
    }

    /// How long apply waits for the requested certificate to be ISSUED, here (with
    /// [`Certificate::wait_for_issued`]) and before an HTTPS listener uses it; 75 minutes unless
    /// set. The DNS validation records must exist by then. Requests only.
    pub fn issued_within(mut self, limit: Duration) -> Self {
        if let Certificate::Request {
            issued_within_seconds,
            ..
        } = &mut self
        {
            *issued_within_seconds = Some(limit.as_secs());
        }
        self
    }

    /// Import the certificate and private key from PEM files at these paths. The files are read
    /// at apply time (never part of the stack's JSON or a plan); changed files are re-imported
    /// into the same ARN.
    pub fn import(certificate_pem: impl Into<String>, private_key_pem: impl Into<String>) -> Self {
        Certificate::Import {
            certificate_pem: certificate_pem.into(),
            private_key_pem: private_key_pem.into(),
            chain_pem: None,
        }
    }

    /// The PEM file of the certificate chain (imports only; ignored otherwise). Default: none.
    pub fn chain(mut self, chain_path: impl Into<String>) -> Self {
        if let Certificate::Import { chain_pem, .. } = &mut self {
            *chain_pem = Some(chain_path.into());
        }
        self
    }

    /// A certificate managed elsewhere, by ARN: never created, changed or deleted. An ACM ARN
    /// in the stack's region (`E0319`): a load balancer takes certificates of its own region
    /// only.
    pub fn existing(arn: impl Into<String>) -> Self {
        Certificate::Existing { arn: arn.into() }
    }
}

impl ResourceKind for Certificate {
    const KIND: Kind = Kind::Certificate;
}

/// HTTP or HTTPS, for target groups, health checks and listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AppProtocol {
    Http,
    Https,
}

impl AppProtocol {
    /// `HTTP` or `HTTPS`, as AWS spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AppProtocol::Http => "HTTP",
            AppProtocol::Https => "HTTPS",
        }
    }
}

/// What a target group's targets are: instances (the default, what Auto Scaling Groups
/// register) or IP addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetType {
    Instance,
    Ip,
}

/// Which port the health check probes: the target's traffic port, or an explicit one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheckPort {
    TrafficPort,
    Port(u16),
}

/// A target group's health check. Checked by validation: interval 5-300 s (`E0303`), timeout
/// 2-120 s and shorter than the interval (`E0304`), thresholds 2-10 (`E0305`), path starting
/// with `/` (`E0306`), matcher (`E0307`), port 1-65535 (`E0302`).
///
/// ```
/// use infra_core::prelude::*;
///
/// let check = HealthCheck::http("/api/health")
///     .matcher("200-299")
///     .interval(15)
///     .timeout(5)
///     .thresholds(3, 2);
/// assert_eq!(check.effective_port(8080), 8080);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub protocol: AppProtocol,
    pub port: HealthCheckPort,
    pub path: String,
    /// HTTP codes counted healthy: `200`, `200,302` or `200-299`.
    pub matcher: String,
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

impl HealthCheck {
    /// HTTP on the traffic port at `path` (starts with `/`, at most 1024 characters: `E0306`),
    /// with AWS's defaults: matcher `200`, 30 s interval, 5 s timeout, 5/2 thresholds.
    pub fn http(path: impl Into<String>) -> Self {
        HealthCheck {
            protocol: AppProtocol::Http,
            port: HealthCheckPort::TrafficPort,
            path: path.into(),
            matcher: "200".into(),
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold: 5,
            unhealthy_threshold: 2,
        }
    }

    /// As [`HealthCheck::http`], over HTTPS: for [`AppProtocol::Https`] targets, whose traffic
    /// port answers TLS (an HTTP probe there fails and `INFRA-TG-005` fires). The load balancer
    /// does not check the targets' certificates.
    pub fn https(path: impl Into<String>) -> Self {
        HealthCheck {
            protocol: AppProtocol::Https,
            ..HealthCheck::http(path)
        }
    }

    /// Probe an explicit port (1-65535, `E0302`) instead of the traffic port (the default).
    /// Lints: `INFRA-TG-002` when it differs from the target port, `INFRA-TG-001` when the load
    /// balancer cannot reach it.
    pub fn port(mut self, port: u16) -> Self {
        self.port = HealthCheckPort::Port(port);
        self
    }

    /// The HTTP codes counted healthy: `200`, `200,302` or `200-299`, codes 200-499 (`E0307`).
    /// Default: `200`.
    pub fn matcher(mut self, matcher: impl Into<String>) -> Self {
        self.matcher = matcher.into();
        self
    }

    /// Seconds between checks, 5-300 (`E0303`). Default: 30.
    pub fn interval(mut self, seconds: u32) -> Self {
        self.interval_seconds = seconds;
        self
    }

    /// Seconds a check may take, 2-120 and less than the interval (`E0304`). Default: 5.
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout_seconds = seconds;
        self
    }

    /// Consecutive successes to become healthy and failures to become unhealthy, each 2-10
    /// (`E0305`). Default: 5 and 2.
    pub fn thresholds(mut self, healthy: u32, unhealthy: u32) -> Self {
        self.healthy_threshold = healthy;
        self.unhealthy_threshold = unhealthy;
        self
    }

    /// The port probed, given the target group's traffic port.
    pub fn effective_port(&self, traffic_port: u16) -> u16 {
        match self.port {
            HealthCheckPort::TrafficPort => traffic_port,
            HealthCheckPort::Port(p) => p,
        }
    }
}

/// A target group. The default protocol is HTTP: the ALB terminates TLS (seed 002's 502).
///
/// Lints (`INFRA-TG-001` to `-004`) check that the instances' security groups admit the target
/// and health-check ports from the load balancer.
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
/// let api = s.add(
///     "api",
///     TargetGroup::http(&vpc, 8080)
///         .health_check(HealthCheck::http("/api/health"))
///         .deregistration_delay(30),
/// );
/// s.output("api_target_group", api.arn());
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetGroup {
    pub vpc: Ref<Vpc>,
    pub protocol: AppProtocol,
    pub port: u16,
    pub target_type: TargetType,
    pub health_check: HealthCheck,
    pub deregistration_delay_seconds: u32,
}

impl TargetGroup {
    /// HTTP instance targets on `port` (1-65535, `E0302`), health-checked with
    /// [`HealthCheck::http`] at `/` on the same port, 300 s deregistration delay.
    pub fn http(vpc: &Ref<Vpc>, port: u16) -> Self {
        TargetGroup {
            vpc: vpc.clone(),
            protocol: AppProtocol::Http,
            port,
            target_type: TargetType::Instance,
            health_check: HealthCheck::http("/"),
            deregistration_delay_seconds: 300,
        }
    }

    /// The targets' protocol. Default: [`AppProtocol::Http`]; HTTPS targets behind an HTTPS
    /// listener fire `INFRA-TG-003`, and want [`HealthCheck::https`] (`INFRA-TG-005`).
    pub fn protocol(mut self, protocol: AppProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Instances or IP addresses. Default: [`TargetType::Instance`].
    pub fn target_type(mut self, target_type: TargetType) -> Self {
        self.target_type = target_type;
        self
    }

    /// The health check. Default: `HealthCheck::http("/")`.
    pub fn health_check(mut self, health_check: HealthCheck) -> Self {
        self.health_check = health_check;
        self
    }

    /// Seconds a deregistering target keeps draining, 0-3600 (`E0318`). Default: 300, as AWS.
    pub fn deregistration_delay(mut self, seconds: u32) -> Self {
        self.deregistration_delay_seconds = seconds;
        self
    }
}

impl ResourceKind for TargetGroup {
    const KIND: Kind = Kind::TargetGroup;
}

/// Whether a load balancer has public addresses ([`LoadBalancer::internet_facing`]) or private
/// ones ([`LoadBalancer::internal`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    InternetFacing,
    Internal,
}

/// An Application Load Balancer. Its subnets are in at least two zones (`E0301`); its subnets
/// and security groups, and the target groups its listeners forward to, are in one VPC
/// (`E0312`).
///
/// ```
/// use infra_core::prelude::*;
///
/// let mut s = Stack::new("demo", "ap-northeast-2");
/// let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
/// let a = s.add("public_a", Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"));
/// let c = s.add("public_c", Subnet::public(&vpc, "10.0.2.0/24", "ap-northeast-2c"));
/// let sg = s.add(
///     "alb",
///     SecurityGroup::new(&vpc, "HTTPS from anywhere").ingress(Rule::tcp(443).from_anywhere()),
/// );
/// let alb = s.add("web", LoadBalancer::internet_facing(&[&a, &c], &[&sg]));
/// s.output("alb_dns_name", alb.dns_name());
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub scheme: Scheme,
    pub subnets: Vec<Ref<Subnet>>,
    pub security_groups: Vec<Ref<SecurityGroup>>,
    pub drop_invalid_header_fields: bool,
    pub deletion_protection: bool,
    pub idle_timeout_seconds: u32,
    /// Access logs into a bucket; `None`: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_logs: Option<AccessLogs>,
}

impl LoadBalancer {
    /// Internet-facing, in `subnets` (two zones at least), with `security_groups`; dropping
    /// invalid header fields, 60 s idle timeout, no deletion protection.
    pub fn internet_facing(
        subnets: &[&Ref<Subnet>],
        security_groups: &[&Ref<SecurityGroup>],
    ) -> Self {
        LoadBalancer {
            scheme: Scheme::InternetFacing,
            subnets: subnets.iter().map(|s| (*s).clone()).collect(),
            security_groups: security_groups.iter().map(|s| (*s).clone()).collect(),
            drop_invalid_header_fields: true,
            deletion_protection: false,
            idle_timeout_seconds: 60,
            access_logs: None,
        }
    }

    /// As [`LoadBalancer::internet_facing`], with private addresses only.
    pub fn internal(subnets: &[&Ref<Subnet>], security_groups: &[&Ref<SecurityGroup>]) -> Self {
        LoadBalancer {
            scheme: Scheme::Internal,
            ..LoadBalancer::internet_facing(subnets, security_groups)
        }
    }

    /// Refuse deletion in AWS (destroy then fails until it is turned off). Default: off.
    pub fn deletion_protection(mut self, on: bool) -> Self {
        self.deletion_protection = on;
        self
    }

    /// Drop HTTP headers with invalid names. Default: on; off fires `INFRA-ELB-002`.
    pub fn drop_invalid_header_fields(mut self, on: bool) -> Self {
        self.drop_invalid_header_fields = on;
        self
    }

    /// Seconds a connection may stay idle, 1-4000 (`E0317`). Default: 60.
    pub fn idle_timeout(mut self, seconds: u32) -> Self {
        self.idle_timeout_seconds = seconds;
        self
    }

    /// Write access logs into `bucket` (a [`Bucket::logs`]), under `alb/` and the load
    /// balancer's logical id. The bucket's policy lets the region's log delivery write them.
    pub fn access_logs(mut self, bucket: &Ref<Bucket>) -> Self {
        self.access_logs = Some(AccessLogs {
            bucket: bucket.clone(),
            prefix: None,
        });
        self
    }

    /// Write access logs into `bucket` under `prefix` (without `AWSLogs`, and no `/` at either
    /// end; `""` for none).
    pub fn access_logs_with_prefix(
        mut self,
        bucket: &Ref<Bucket>,
        prefix: impl Into<String>,
    ) -> Self {
        self.access_logs = Some(AccessLogs {
            bucket: bucket.clone(),
            prefix: Some(prefix.into()),
        });
        self
    }
}

impl ResourceKind for LoadBalancer {
    const KIND: Kind = Kind::LoadBalancer;
}

/// A redirect's status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedirectStatus {
    #[serde(rename = "HTTP_301")]
    Permanent,
    #[serde(rename = "HTTP_302")]
    Found,
}

/// What a listener (or rule) does with a request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ListenerAction {
    Forward {
        target_group: Ref<TargetGroup>,
    },
    /// Redirect. Fields left `None` keep the request's own value (`#{protocol}` etc. in AWS).
    Redirect {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol: Option<AppProtocol>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        status: RedirectStatus,
    },
    FixedResponse {
        status_code: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_type: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
}

impl ListenerAction {
    /// Forward to a target group in the load balancer's VPC (`E0312`).
    pub fn forward(target_group: &Ref<TargetGroup>) -> Self {
        ListenerAction::Forward {
            target_group: target_group.clone(),
        }
    }

    /// Permanent redirect to HTTPS on 443, keeping host, path and query.
    pub fn redirect_to_https() -> Self {
        ListenerAction::Redirect {
            protocol: Some(AppProtocol::Https),
            port: Some(443),
            host: None,
            path: None,
            status: RedirectStatus::Permanent,
        }
    }

    /// Answer with `status_code` (2XX, 4XX or 5XX: `E0314`) and `body` as `text/plain`.
    pub fn fixed_response(status_code: u16, body: impl Into<String>) -> Self {
        ListenerAction::FixedResponse {
            status_code,
            content_type: Some("text/plain".into()),
            body: Some(body.into()),
        }
    }
}

/// The TLS policy new HTTPS listeners get: TLS 1.3 and 1.2 only.
pub const DEFAULT_TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// A listener on a load balancer: one per port of a load balancer (`E0313`).
///
/// ```
/// use infra_core::prelude::*;
///
/// # let mut s = Stack::new("demo", "ap-northeast-2");
/// # let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
/// # let a = s.add("public_a", Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"));
/// # let c = s.add("public_c", Subnet::public(&vpc, "10.0.2.0/24", "ap-northeast-2c"));
/// # let sg = s.add("alb", SecurityGroup::new(&vpc, "load balancer"));
/// let alb = s.add("web", LoadBalancer::internet_facing(&[&a, &c], &[&sg]));
/// let cert = s.add(
///     "site",
///     Certificate::existing("arn:aws:acm:ap-northeast-2:123456789012:certificate/abc"),
/// );
/// let web = s.add("web", TargetGroup::http(&vpc, 8080));
/// s.add("http", Listener::http(&alb, 80)); // redirects to HTTPS
/// s.add("https", Listener::https(&alb, &cert).forward(&web));
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Listener {
    pub load_balancer: Ref<LoadBalancer>,
    pub port: u16,
    pub protocol: AppProtocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Ref<Certificate>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    pub default_action: ListenerAction,
}

impl Listener {
    /// Plain HTTP on `port` (1-65535, `E0302`); set what it does with
    /// [`Listener::default_action`] (by default it redirects to HTTPS on 443; anything else
    /// fires `INFRA-ELB-001`).
    pub fn http(load_balancer: &Ref<LoadBalancer>, port: u16) -> Self {
        Listener {
            load_balancer: load_balancer.clone(),
            port,
            protocol: AppProtocol::Http,
            certificate: None,
            ssl_policy: None,
            default_action: ListenerAction::redirect_to_https(),
        }
    }

    /// HTTPS on 443 with the certificate and [`DEFAULT_TLS_POLICY`]; by default it answers 404
    /// until given a default action.
    pub fn https(load_balancer: &Ref<LoadBalancer>, certificate: &Ref<Certificate>) -> Self {
        Listener {
            load_balancer: load_balancer.clone(),
            port: 443,
            protocol: AppProtocol::Https,
            certificate: Some(certificate.clone()),
            ssl_policy: Some(DEFAULT_TLS_POLICY.into()),
            default_action: ListenerAction::fixed_response(404, "Not Found"),
        }
    }

    /// The listener's port (1-65535, `E0302`). Default: the constructor's (443 for HTTPS).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The TLS policy of an HTTPS listener (on HTTP: `E0311`). Default:
    /// [`DEFAULT_TLS_POLICY`]; a policy outside the allowlist fires `INFRA-ELB-003`.
    pub fn ssl_policy(mut self, policy: impl Into<String>) -> Self {
        self.ssl_policy = Some(policy.into());
        self
    }

    /// What the listener does with requests no rule matches.
    pub fn default_action(mut self, action: ListenerAction) -> Self {
        self.default_action = action;
        self
    }

    /// Forward everything not matched by a rule to `target_group`.
    pub fn forward(self, target_group: &Ref<TargetGroup>) -> Self {
        self.default_action(ListenerAction::forward(target_group))
    }
}

impl ResourceKind for Listener {
    const KIND: Kind = Kind::Listener;
}

/// A condition of a listener rule; all of a rule's conditions must hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "field", content = "values", rename_all = "kebab-case")]
pub enum Condition {
    PathPattern(Vec<String>),
    HostHeader(Vec<String>),
}

impl Condition {
    /// The condition's values (path patterns or host names).
    pub fn values(&self) -> &[String] {
        match self {
            Condition::PathPattern(v) | Condition::HostHeader(v) => v,
        }
    }
}

/// A listener rule: lowest priority number is evaluated first. A rule that an earlier rule
/// always matches first fires `INFRA-ELB-004`.
///
/// ```
/// use infra_core::prelude::*;
///
/// # let mut s = Stack::new("demo", "ap-northeast-2");
/// # let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
/// # let a = s.add("public_a", Subnet::public(&vpc, "10.0.1.0/24", "ap-northeast-2a"));
/// # let c = s.add("public_c", Subnet::public(&vpc, "10.0.2.0/24", "ap-northeast-2c"));
/// # let alb = s.add("web", LoadBalancer::internet_facing(&[&a, &c], &[]));
/// # let arn = "arn:aws:acm:ap-northeast-2:123456789012:certificate/abc";
/// # let cert = s.add("site", Certificate::existing(arn));
/// let api = s.add("api", TargetGroup::http(&vpc, 8080));
/// let https = s.add("https", Listener::https(&alb, &cert));
/// s.add("api", ListenerRule::new(&https, 10).path("/api/*").forward(&api));
/// # assert!(!infra_core::validate::validate(&s).has_errors());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListenerRule {
    pub listener: Ref<Listener>,
    pub priority: u32,
    pub conditions: Vec<Condition>,
    pub action: ListenerAction,
}

impl ListenerRule {
    /// A rule at `priority` (1-50000, `E0308`; unique per listener, `E0309`); add conditions
    /// with [`ListenerRule::path`] / [`ListenerRule::host`] (at least one value, `E0310`) and
    /// the target with [`ListenerRule::forward`]. Default action: a fixed 404.
    pub fn new(listener: &Ref<Listener>, priority: u32) -> Self {
        ListenerRule {
            listener: listener.clone(),
            priority,
            conditions: Vec::new(),
            action: ListenerAction::fixed_response(404, "Not Found"),
        }
    }

    /// Match request paths against a pattern (`/api/*`). Repeated calls add values to one
    /// path-pattern condition; a rule has 1-5 condition values in all (`E0310`).
    pub fn path(mut self, pattern: impl Into<String>) -> Self {
        match self
            .conditions
            .iter_mut()
            .find(|c| matches!(c, Condition::PathPattern(_)))
        {
            Some(Condition::PathPattern(v)) => v.push(pattern.into()),
            _ => self
                .conditions
                .push(Condition::PathPattern(vec![pattern.into()])),
        }
        self
    }

    /// Match the Host header. Repeated calls add values to one host-header condition; a rule
    /// has 1-5 condition values in all (`E0310`).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        match self
            .conditions
            .iter_mut()
            .find(|c| matches!(c, Condition::HostHeader(_)))
        {
            Some(Condition::HostHeader(v)) => v.push(host.into()),
            _ => self
                .conditions
                .push(Condition::HostHeader(vec![host.into()])),
        }
        self
    }

    /// Forward matching requests to `target_group`.
    pub fn forward(mut self, target_group: &Ref<TargetGroup>) -> Self {
        self.action = ListenerAction::forward(target_group);
        self
    }

    /// What the rule does with matching requests. Default: a fixed 404.
    pub fn action(mut self, action: ListenerAction) -> Self {
        self.action = action;
        self
    }
}

impl ResourceKind for ListenerRule {
    const KIND: Kind = Kind::ListenerRule;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_without_a_wait_limit_reads_and_writes_as_before() {
        let old = r#"{"source":"request","domain_name":"a.example.com","alternative_names":[],"wait_for_issued":false}"#;
        let read: Certificate = serde_json::from_str(old).unwrap();
        assert_eq!(read, Certificate::request("a.example.com"));
        assert_eq!(serde_json::to_string(&read).unwrap(), old);
        let patient = Certificate::request("a.example.com").issued_within(Duration::from_secs(90));
        assert!(matches!(
            patient,
            Certificate::Request {
                issued_within_seconds: Some(90),
                ..
            }
        ));
    }
}
