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
    /// ACM publishes them, then waits for ISSUED.
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

    /// Add a subject alternative name (requests only; ignored otherwise).
    pub fn alternative_name(mut self, name: impl Into<String>) -> Self {
        if let Certificate::Request {
            alternative_names, ..
        } = &mut self
        {
            alternative_names.push(name.into());
        }
        self
    }

    /// Make apply wait until the requested certificate is ISSUED.
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
    /// set. The DNS validation records must exist by then.
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

    pub fn import(certificate_pem: impl Into<String>, private_key_pem: impl Into<String>) -> Self {
        Certificate::Import {
            certificate_pem: certificate_pem.into(),
            private_key_pem: private_key_pem.into(),
            chain_pem: None,
        }
    }

    pub fn chain(mut self, chain_path: impl Into<String>) -> Self {
        if let Certificate::Import { chain_pem, .. } = &mut self {
            *chain_pem = Some(chain_path.into());
        }
        self
    }

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
    pub fn as_str(self) -> &'static str {
        match self {
            AppProtocol::Http => "HTTP",
            AppProtocol::Https => "HTTPS",
        }
    }
}

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
    /// HTTP on the traffic port with AWS's defaults (30 s interval, 5 s timeout, 5/2 thresholds).
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

    /// Probe an explicit port instead of the traffic port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = HealthCheckPort::Port(port);
        self
    }

    pub fn matcher(mut self, matcher: impl Into<String>) -> Self {
        self.matcher = matcher.into();
        self
    }

    pub fn interval(mut self, seconds: u32) -> Self {
        self.interval_seconds = seconds;
        self
    }

    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout_seconds = seconds;
        self
    }

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
    /// HTTP targets on `port`, health-checked with HTTP on the same port at `/`.
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

    pub fn protocol(mut self, protocol: AppProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    pub fn target_type(mut self, target_type: TargetType) -> Self {
        self.target_type = target_type;
        self
    }

    pub fn health_check(mut self, health_check: HealthCheck) -> Self {
        self.health_check = health_check;
        self
    }

    /// Seconds a deregistering target keeps draining (AWS default 300).
    pub fn deregistration_delay(mut self, seconds: u32) -> Self {
        self.deregistration_delay_seconds = seconds;
        self
    }
}

impl ResourceKind for TargetGroup {
    const KIND: Kind = Kind::TargetGroup;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    InternetFacing,
    Internal,
}

/// An Application Load Balancer.
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
    /// Internet-facing, dropping invalid headers, 60 s idle timeout.
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

    pub fn internal(subnets: &[&Ref<Subnet>], security_groups: &[&Ref<SecurityGroup>]) -> Self {
        LoadBalancer {
            scheme: Scheme::Internal,
            ..LoadBalancer::internet_facing(subnets, security_groups)
        }
    }

    pub fn deletion_protection(mut self, on: bool) -> Self {
        self.deletion_protection = on;
        self
    }

    pub fn drop_invalid_header_fields(mut self, on: bool) -> Self {
        self.drop_invalid_header_fields = on;
        self
    }

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

/// A listener on a load balancer.
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
    /// Plain HTTP on `port`; set what it does with [`Listener::default_action`] (by default it
    /// redirects to HTTPS).
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

    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    pub fn ssl_policy(mut self, policy: impl Into<String>) -> Self {
        self.ssl_policy = Some(policy.into());
        self
    }

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
    pub fn values(&self) -> &[String] {
        match self {
            Condition::PathPattern(v) | Condition::HostHeader(v) => v,
        }
    }
}

/// A listener rule: lowest priority number is evaluated first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListenerRule {
    pub listener: Ref<Listener>,
    pub priority: u32,
    pub conditions: Vec<Condition>,
    pub action: ListenerAction,
}

impl ListenerRule {
    /// A rule at `priority`; add conditions with [`ListenerRule::path`] / [`ListenerRule::host`]
    /// and the target with [`ListenerRule::forward`].
    pub fn new(listener: &Ref<Listener>, priority: u32) -> Self {
        ListenerRule {
            listener: listener.clone(),
            priority,
            conditions: Vec::new(),
            action: ListenerAction::fixed_response(404, "Not Found"),
        }
    }

    /// Match request paths against a pattern (`/api/*`). Repeated calls add values to one
    /// path-pattern condition.
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

    /// Match the Host header. Repeated calls add values to one host-header condition.
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

    pub fn forward(mut self, target_group: &Ref<TargetGroup>) -> Self {
        self.action = ListenerAction::forward(target_group);
        self
    }

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
