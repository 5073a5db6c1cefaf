//! Elastic Load Balancing v2: target groups, Application Load Balancers, listeners and rules.
//!
//! ELBv2 has no tag filter, so discovery describes every load balancer and target group in the
//! region, reads their tags in batches of 20 ARNs, and reads the owned ones' details
//! (attributes, listeners, rules) with concurrent per-resource calls, starting them early for
//! resources named as this stack names them (see [`discover`]). Creates and updates build what
//! they return from the answers of their write calls, which carry the object, not from a read.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_elasticloadbalancingv2 as elbv2;
use elbv2::types::{
    Action, ActionTypeEnum, Certificate as SdkCertificate, FixedResponseActionConfig,
    HostHeaderConditionConfig, LoadBalancerAttribute, LoadBalancerSchemeEnum,
    LoadBalancerStateEnum, LoadBalancerTypeEnum, Matcher, PathPatternConditionConfig, ProtocolEnum,
    RedirectActionConfig, RedirectActionStatusCodeEnum, RuleCondition, RulePriorityPair, Tag,
    TargetGroupAttribute, TargetTypeEnum,
};
use futures::future::{join_all, try_join_all};
use futures::FutureExt;
use infra_core::model::{
    AppProtocol, Condition, Declared, HealthCheck, HealthCheckPort, Listener, ListenerAction,
    ListenerRule, LoadBalancer, RedirectStatus, Resource, Scheme, TargetGroup, TargetType,
};
use infra_core::provider::Context;
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, ProviderError, Ref, Stack};

use crate::support::{
    api_error, create_once, error_code, is_not_found, owned_id, ownership_tags, retry_not_found,
    wait_for, Poll, VISIBLE_WITHIN,
};
use crate::AwsProvider;

/// DescribeTags takes at most 20 ARNs per call.
const TAG_BATCH: usize = 20;
/// The largest page AWS allows on DescribeLoadBalancers, DescribeTargetGroups,
/// DescribeListeners and DescribeRules. moto 5.2.1 pages load balancers and rules by 50 unless
/// asked, and does not page target groups or listeners.
const PAGE_SIZE: i32 = 400;
/// The longest name a load balancer or target group may have.
const NAME_MAX: usize = 32;
const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";
const DROP_INVALID_HEADERS: &str = "routing.http.drop_invalid_header_fields.enabled";
const DELETION_PROTECTION: &str = "deletion_protection.enabled";
const IDLE_TIMEOUT: &str = "idle_timeout.timeout_seconds";
/// What AWS stores for redirect fields that keep the request's own value.
const KEEP_PROTOCOL: &str = "#{protocol}";
const KEEP_PORT: &str = "#{port}";
const KEEP_HOST: &str = "#{host}";
const KEEP_PATH: &str = "/#{path}";
const KEEP_QUERY: &str = "#{query}";
/// How long a target group may stay in use by a listener that is being deleted.
const IN_USE_RETRY: Duration = Duration::from_secs(120);

/// What cannot be translated between the model and ELBv2.
#[derive(Debug, thiserror::Error)]
enum ElbError {
    #[error(
        "{address}: AWS reports {field} = `{value}`, which infra does not model (valid: {valid})"
    )]
    Unmodeled {
        address: Address,
        field: &'static str,
        value: String,
        valid: &'static str,
    },
    #[error(
        "cannot delete {address}: deletion protection is on in AWS; set `deletion_protection` to false \
         and apply, then destroy again"
    )]
    DeletionProtected { address: Address },
    #[error("{address}: field `{field}` cannot change in place (it forces a replacement)")]
    NotInPlace { address: Address, field: String },
    #[error("{address} is a {found}, not an ELBv2 resource")]
    WrongKind { address: Address, found: Kind },
    #[error("{address}: AWS returned no {what}")]
    Missing {
        address: Address,
        what: &'static str,
    },
}

impl From<ElbError> for ProviderError {
    fn from(err: ElbError) -> Self {
        ProviderError::Other(err.to_string())
    }
}

fn sdk_tags(stack: &str, id: &str) -> Vec<Tag> {
    ownership_tags(stack, id)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// SDK retries off for one create: a lost response is followed by a lookup, never a blind retry.
fn no_retries() -> elbv2::config::Builder {
    elbv2::config::Builder::default().retry_config(RetryConfig::disabled())
}

fn unmodeled(
    address: &Address,
    field: &'static str,
    value: impl Into<String>,
    valid: &'static str,
) -> ProviderError {
    ElbError::Unmodeled {
        address: address.clone(),
        field,
        value: value.into(),
        valid,
    }
    .into()
}

fn protocol_from(
    address: &Address,
    field: &'static str,
    p: Option<&ProtocolEnum>,
) -> Result<AppProtocol, ProviderError> {
    match p {
        Some(ProtocolEnum::Http) => Ok(AppProtocol::Http),
        Some(ProtocolEnum::Https) => Ok(AppProtocol::Https),
        other => Err(unmodeled(
            address,
            field,
            other.map(|p| p.as_str().to_string()).unwrap_or_default(),
            "HTTP, HTTPS",
        )),
    }
}

fn protocol_to(p: AppProtocol) -> ProtocolEnum {
    match p {
        AppProtocol::Http => ProtocolEnum::Http,
        AppProtocol::Https => ProtocolEnum::Https,
    }
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn to_u32(n: Option<i32>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or_default()
}

fn to_u16(n: Option<i32>) -> u16 {
    n.and_then(|n| u16::try_from(n).ok()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------

/// Discovery in four waves of concurrent calls; a wave waits for the answers it needs:
///
/// 1. every load balancer and target group in the region (ELBv2 has no tag filter);
/// 2. their tags, which decide ownership, and, for the ones bearing a name this stack gives a
///    declared resource, the reads that need only an ARN (listeners and attributes), started
///    before ownership is known;
/// 3. the rules of the owned load balancers' listeners, and the listeners' tags;
/// 4. the rules' tags (none, and no fourth wave, when the listeners have only default rules).
///
/// A speculative read's answer, error included, is used only once the tags show the resource is
/// this stack's; a resource not tagged so is never reported. An owned resource with another name
/// (adopted, or no longer declared) gets its listeners and attributes in wave 3, and so its
/// rules a wave later. A rule is reported only when its own tags say it is ours, so its tags
/// cannot be asked for before its ARN is known: that is what wave 4 waits for.
pub(crate) async fn discover(
    p: &AwsProvider,
    stack: &Stack,
) -> Result<Vec<Observed>, ProviderError> {
    let (lbs, tgs) = futures::try_join!(all_load_balancers(p), all_target_groups(p))?;
    let arns: Vec<String> = lbs
        .iter()
        .filter_map(|lb| lb.load_balancer_arn().map(str::to_string))
        .chain(
            tgs.iter()
                .filter_map(|tg| tg.target_group_arn().map(str::to_string)),
        )
        .collect();
    let lb_names = declared_names(stack, Kind::LoadBalancer);
    let tg_names = declared_names(stack, Kind::TargetGroup);
    let named =
        |name: Option<&str>, names: &HashSet<String>| name.is_some_and(|n| names.contains(n));
    let early_lbs = join_all(
        lbs.iter()
            .filter(|lb| named(lb.load_balancer_name(), &lb_names))
            .filter_map(|lb| lb.load_balancer_arn())
            .map(|arn| async move { (arn.to_string(), load_balancer_details(p, arn).await) }),
    );
    let early_tgs = join_all(
        tgs.iter()
            .filter(|tg| named(tg.target_group_name(), &tg_names))
            .filter_map(|tg| tg.target_group_arn())
            .map(|arn| async move { (arn.to_string(), target_group_attributes(p, arn).await) }),
    );
    let (tags, early_lbs, early_tgs) = futures::try_join!(
        describe_tags(p, &arns),
        early_lbs.map(Ok),
        early_tgs.map(Ok),
    )?;
    let mut early_lbs: HashMap<String, Result<LbDetails, ProviderError>> =
        early_lbs.into_iter().collect();
    let mut early_tgs: HashMap<String, Result<Attributes, ProviderError>> =
        early_tgs.into_iter().collect();
    let owned_lbs: Vec<Owned<elbv2::types::LoadBalancer, LbDetails>> = lbs
        .into_iter()
        .filter_map(|lb| {
            let arn = lb.load_balancer_arn()?;
            let id = owner(&stack.name, &tags, arn)?;
            let early = early_lbs.remove(arn);
            Some((id, lb, early))
        })
        .collect();
    let owned_tgs: Vec<Owned<elbv2::types::TargetGroup, Attributes>> = tgs
        .into_iter()
        .filter_map(|tg| {
            let arn = tg.target_group_arn()?;
            let id = owner(&stack.name, &tags, arn)?;
            let early = early_tgs.remove(arn);
            Some((id, tg, early))
        })
        .collect();
    tracing::debug!(
        load_balancers = owned_lbs.len(),
        target_groups = owned_tgs.len(),
        "elbv2: owned resources found"
    );

    let target_groups = try_join_all(owned_tgs.into_iter().map(|(id, tg, early)| async move {
        let attrs = match early {
            Some(attrs) => attrs?,
            None => target_group_attributes(p, tg.target_group_arn().unwrap_or_default()).await?,
        };
        observe_target_group(&id, &tg, &attrs)
    }));
    let (mut out, load_balancing) =
        futures::try_join!(target_groups, discover_load_balancers(p, stack, owned_lbs))?;
    out.extend(load_balancing);
    Ok(out)
}

/// An owned resource: its logical id, its description, and the answer of the read started for
/// it before its ownership was known, if one was.
type Owned<T, D> = (String, T, Option<Result<D, ProviderError>>);

/// A load balancer's listeners and attributes.
type LbDetails = (Vec<elbv2::types::Listener>, Attributes);

/// The owned load balancers, their listeners and the listeners' rules (waves 3 and 4).
async fn discover_load_balancers(
    p: &AwsProvider,
    stack: &Stack,
    owned: Vec<Owned<elbv2::types::LoadBalancer, LbDetails>>,
) -> Result<Vec<Observed>, ProviderError> {
    let details = try_join_all(owned.into_iter().map(|(id, lb, early)| async move {
        let (listeners, attrs) = match early {
            Some(details) => details?,
            None => load_balancer_details(p, lb.load_balancer_arn().unwrap_or_default()).await?,
        };
        Ok::<_, ProviderError>((observe_load_balancer(&id, &lb, &attrs)?, listeners))
    }))
    .await?;
    let mut out = Vec::new();
    let mut listeners = Vec::new();
    for (observed, of_lb) in details {
        out.push(observed);
        listeners.extend(of_lb);
    }

    // Every listener of an owned load balancer may carry owned rules, whoever owns it.
    let listener_arns: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.listener_arn().map(str::to_string))
        .collect();
    let (rules, listener_tags) = futures::try_join!(
        try_join_all(listener_arns.iter().map(|arn| rules_of(p, arn))),
        describe_tags(p, &listener_arns),
    )?;
    let rule_arns: Vec<String> = rules
        .iter()
        .flatten()
        .filter_map(|r| r.rule_arn().map(str::to_string))
        .collect();
    let rule_tags = describe_tags(p, &rule_arns).await?;

    for (listener, rules) in listeners.iter().zip(&rules) {
        let listener_arn = listener.listener_arn().unwrap_or_default();
        if let Some(id) = owner(&stack.name, &listener_tags, listener_arn) {
            out.push(observe_listener(&id, listener)?);
        }
        for rule in rules {
            let rule_arn = rule.rule_arn().unwrap_or_default();
            if let Some(id) = owner(&stack.name, &rule_tags, rule_arn) {
                out.push(observe_rule(&id, listener_arn, rule)?);
            }
        }
    }
    Ok(out)
}

/// The logical id `arn` has in `stack`, when its tags mark it as the stack's own.
fn owner(stack: &str, tags: &Tags, arn: &str) -> Option<String> {
    let tags = tags.get(arn)?;
    owned_id(stack, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// The names this stack gives its declared resources of `kind` (target groups or load balancers).
fn declared_names(stack: &Stack, kind: Kind) -> HashSet<String> {
    stack
        .resources
        .iter()
        .filter(|d| d.resource.kind() == kind)
        .map(|d| physical_name(&stack.name, d))
        .collect()
}

/// The name of a target group or load balancer; AWS allows 32 characters.
fn physical_name(stack: &str, desired: &Declared) -> String {
    infra_core::naming::physical_name(stack, desired, NAME_MAX)
}

async fn all_load_balancers(
    p: &AwsProvider,
) -> Result<Vec<elbv2::types::LoadBalancer>, ProviderError> {
    p.elb
        .describe_load_balancers()
        .page_size(PAGE_SIZE)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeLoadBalancers", e))
}

async fn all_target_groups(
    p: &AwsProvider,
) -> Result<Vec<elbv2::types::TargetGroup>, ProviderError> {
    p.elb
        .describe_target_groups()
        .page_size(PAGE_SIZE)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeTargetGroups", e))
}

type Tags = HashMap<String, Vec<(String, String)>>;

/// Tags of `arns`, 20 per call, all batches at once. A resource deleted meanwhile (by another
/// stack: the region is shared) fails its whole batch with NotFound; that batch is then read
/// one ARN at a time and the vanished ones are skipped.
async fn describe_tags(p: &AwsProvider, arns: &[String]) -> Result<Tags, ProviderError> {
    let batches = try_join_all(arns.chunks(TAG_BATCH).map(|chunk| async move {
        match tags_batch(p, chunk).await {
            Err(err) if is_not_found(&err) && chunk.len() > 1 => {
                let singles = try_join_all(chunk.iter().map(|arn| async move {
                    match tags_batch(p, std::slice::from_ref(arn)).await {
                        Err(err) if is_not_found(&err) => Ok(Tags::new()),
                        other => other,
                    }
                }))
                .await?;
                Ok(singles.into_iter().flatten().collect())
            }
            other => other,
        }
    }))
    .await?;
    Ok(batches.into_iter().flatten().collect())
}

async fn tags_batch(p: &AwsProvider, arns: &[String]) -> Result<Tags, ProviderError> {
    let out = p
        .elb
        .describe_tags()
        .set_resource_arns(Some(arns.to_vec()))
        .send()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeTags", e))?;
    Ok(out
        .tag_descriptions()
        .iter()
        .filter_map(|d| {
            let tags = d
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            Some((d.resource_arn()?.to_string(), tags))
        })
        .collect())
}

async fn listeners_of(
    p: &AwsProvider,
    lb_arn: &str,
) -> Result<Vec<elbv2::types::Listener>, ProviderError> {
    p.elb
        .describe_listeners()
        .load_balancer_arn(lb_arn)
        .page_size(PAGE_SIZE)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeListeners", e))
}

/// The listener's rules without its default rule (that one is the listener's default action).
async fn rules_of(
    p: &AwsProvider,
    listener_arn: &str,
) -> Result<Vec<elbv2::types::Rule>, ProviderError> {
    let rules: Vec<elbv2::types::Rule> = p
        .elb
        .describe_rules()
        .listener_arn(listener_arn)
        .page_size(PAGE_SIZE)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeRules", e))?;
    Ok(rules
        .into_iter()
        .filter(|r| r.is_default() != Some(true))
        .collect())
}

type Attributes = HashMap<String, String>;

async fn load_balancer_details(p: &AwsProvider, arn: &str) -> Result<LbDetails, ProviderError> {
    futures::try_join!(listeners_of(p, arn), load_balancer_attributes(p, arn))
}

async fn load_balancer_attributes(p: &AwsProvider, arn: &str) -> Result<Attributes, ProviderError> {
    let out = p
        .elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeLoadBalancerAttributes", e))?;
    Ok(lb_attribute_map(out.attributes()))
}

async fn target_group_attributes(p: &AwsProvider, arn: &str) -> Result<Attributes, ProviderError> {
    let out = p
        .elb
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeTargetGroupAttributes", e))?;
    Ok(tg_attribute_map(out.attributes()))
}

fn lb_attribute_map(attrs: &[LoadBalancerAttribute]) -> Attributes {
    attrs
        .iter()
        .filter_map(|a| Some((a.key()?.to_string(), a.value()?.to_string())))
        .collect()
}

fn tg_attribute_map(attrs: &[TargetGroupAttribute]) -> Attributes {
    attrs
        .iter()
        .filter_map(|a| Some((a.key()?.to_string(), a.value()?.to_string())))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// AWS -> model
// ---------------------------------------------------------------------------------------------

fn observe_target_group(
    id: &str,
    tg: &elbv2::types::TargetGroup,
    attrs: &Attributes,
) -> Result<Observed, ProviderError> {
    let address = Address::new(Kind::TargetGroup, id);
    let arn = tg.target_group_arn().unwrap_or_default();
    let target_type = match tg.target_type() {
        Some(TargetTypeEnum::Instance) | None => TargetType::Instance,
        Some(TargetTypeEnum::Ip) => TargetType::Ip,
        Some(other) => {
            return Err(unmodeled(
                &address,
                "target_type",
                other.as_str(),
                "instance, ip",
            ))
        }
    };
    let port =
        match tg.health_check_port() {
            Some("traffic-port") | None => HealthCheckPort::TrafficPort,
            Some(p) => HealthCheckPort::Port(p.parse().map_err(|_| {
                unmodeled(&address, "health_check.port", p, "traffic-port or 1-65535")
            })?),
        };
    let health_check = HealthCheck {
        protocol: protocol_from(
            &address,
            "health_check.protocol",
            tg.health_check_protocol(),
        )?,
        port,
        path: tg.health_check_path().unwrap_or("/").to_string(),
        matcher: tg
            .matcher()
            .and_then(Matcher::http_code)
            .unwrap_or("200")
            .to_string(),
        interval_seconds: to_u32(tg.health_check_interval_seconds()),
        timeout_seconds: to_u32(tg.health_check_timeout_seconds()),
        healthy_threshold: to_u32(tg.healthy_threshold_count()),
        unhealthy_threshold: to_u32(tg.unhealthy_threshold_count()),
    };
    let resource = TargetGroup {
        vpc: Ref::from_id(tg.vpc_id().unwrap_or_default()),
        protocol: protocol_from(&address, "protocol", tg.protocol())?,
        port: to_u16(tg.port()),
        target_type,
        health_check,
        deregistration_delay_seconds: attrs
            .get(DEREGISTRATION_DELAY)
            .and_then(|v| v.parse().ok())
            .unwrap_or(300),
    };
    Ok(Observed::new(address, arn, resource.into()).with_attribute(attributes::ARN, arn))
}

fn observe_load_balancer(
    id: &str,
    lb: &elbv2::types::LoadBalancer,
    attrs: &Attributes,
) -> Result<Observed, ProviderError> {
    let address = Address::new(Kind::LoadBalancer, id);
    let arn = lb.load_balancer_arn().unwrap_or_default();
    let scheme = match lb.scheme() {
        Some(LoadBalancerSchemeEnum::InternetFacing) => Scheme::InternetFacing,
        Some(LoadBalancerSchemeEnum::Internal) => Scheme::Internal,
        other => {
            return Err(unmodeled(
                &address,
                "scheme",
                other.map(|s| s.as_str().to_string()).unwrap_or_default(),
                "internet-facing, internal",
            ))
        }
    };
    let flag = |key: &str, default: bool| attrs.get(key).map(|v| v == "true").unwrap_or(default);
    let resource = LoadBalancer {
        scheme,
        subnets: lb
            .availability_zones()
            .iter()
            .filter_map(|az| az.subnet_id().map(Ref::from_id))
            .collect(),
        security_groups: lb.security_groups().iter().map(Ref::from_id).collect(),
        drop_invalid_header_fields: flag(DROP_INVALID_HEADERS, false),
        deletion_protection: flag(DELETION_PROTECTION, false),
        idle_timeout_seconds: attrs
            .get(IDLE_TIMEOUT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    };
    Ok(Observed::new(address, arn, resource.into())
        .with_attribute(attributes::ARN, arn)
        .with_attribute(attributes::DNS_NAME, lb.dns_name().unwrap_or_default())
        .with_attribute(
            attributes::STATUS,
            lb.state()
                .and_then(|s| s.code())
                .map(|c| c.as_str())
                .unwrap_or_default(),
        ))
}

fn observe_listener(
    id: &str,
    listener: &elbv2::types::Listener,
) -> Result<Observed, ProviderError> {
    let address = Address::new(Kind::Listener, id);
    let arn = listener.listener_arn().unwrap_or_default();
    let default_action = match listener.default_actions() {
        [action] => action_from(&address, action)?,
        _ => {
            return Err(ElbError::Missing {
                address,
                what: "single default action",
            }
            .into())
        }
    };
    let protocol = protocol_from(&address, "protocol", listener.protocol())?;
    let resource = Listener {
        load_balancer: Ref::from_id(listener.load_balancer_arn().unwrap_or_default()),
        port: to_u16(listener.port()),
        protocol,
        certificate: listener
            .certificates()
            .first()
            .and_then(|c| c.certificate_arn())
            .map(Ref::from_id),
        // A TLS policy means nothing on plain HTTP; moto reports one there anyway.
        ssl_policy: listener
            .ssl_policy()
            .filter(|_| protocol == AppProtocol::Https)
            .map(str::to_string),
        default_action,
    };
    Ok(Observed::new(address, arn, resource.into()).with_attribute(attributes::ARN, arn))
}

fn observe_rule(
    id: &str,
    listener_arn: &str,
    rule: &elbv2::types::Rule,
) -> Result<Observed, ProviderError> {
    let address = Address::new(Kind::ListenerRule, id);
    let arn = rule.rule_arn().unwrap_or_default();
    let priority = rule.priority().unwrap_or_default();
    let priority = priority
        .parse()
        .map_err(|_| unmodeled(&address, "priority", priority, "1-50000"))?;
    let mut conditions = Vec::new();
    for c in rule.conditions() {
        conditions.push(condition_from(&address, c)?);
    }
    let action = match rule.actions() {
        [action] => action_from(&address, action)?,
        _ => {
            return Err(ElbError::Missing {
                address,
                what: "single action",
            }
            .into())
        }
    };
    let resource = ListenerRule {
        listener: Ref::from_id(listener_arn),
        priority,
        conditions,
        action,
    };
    Ok(Observed::new(address, arn, resource.into()).with_attribute(attributes::ARN, arn))
}

fn condition_from(address: &Address, c: &RuleCondition) -> Result<Condition, ProviderError> {
    // The legacy `Values` and the typed config both carry the values; moto may fill only one.
    let values = |typed: Option<&[String]>| {
        let mut v: Vec<String> = match typed {
            Some(v) if !v.is_empty() => v.to_vec(),
            _ => c.values().to_vec(),
        };
        v.dedup();
        v
    };
    match c.field() {
        Some("path-pattern") => Ok(Condition::PathPattern(values(
            c.path_pattern_config()
                .map(PathPatternConditionConfig::values),
        ))),
        Some("host-header") => Ok(Condition::HostHeader(values(
            c.host_header_config()
                .map(HostHeaderConditionConfig::values),
        ))),
        other => Err(unmodeled(
            address,
            "conditions.field",
            other.unwrap_or_default(),
            "path-pattern, host-header",
        )),
    }
}

fn action_from(address: &Address, action: &Action) -> Result<ListenerAction, ProviderError> {
    match action.r#type() {
        Some(ActionTypeEnum::Forward) => {
            let arn = action
                .target_group_arn()
                .or_else(|| match action.forward_config() {
                    Some(config) if config.target_groups().len() == 1 => {
                        config.target_groups()[0].target_group_arn()
                    }
                    _ => None,
                });
            let arn = arn.ok_or_else(|| ElbError::Missing {
                address: address.clone(),
                what: "target group in the forward action",
            })?;
            Ok(ListenerAction::forward(&Ref::from_id(arn)))
        }
        Some(ActionTypeEnum::Redirect) => {
            let config = action.redirect_config().ok_or_else(|| ElbError::Missing {
                address: address.clone(),
                what: "redirect configuration",
            })?;
            let kept =
                |value: Option<&str>, keep: &str| value.filter(|v| *v != keep).map(str::to_string);
            let protocol = match kept(config.protocol(), KEEP_PROTOCOL).as_deref() {
                None => None,
                Some("HTTP") => Some(AppProtocol::Http),
                Some("HTTPS") => Some(AppProtocol::Https),
                Some(other) => {
                    return Err(unmodeled(
                        address,
                        "redirect.protocol",
                        other,
                        "HTTP, HTTPS, #{protocol}",
                    ))
                }
            };
            let port = match kept(config.port(), KEEP_PORT) {
                None => None,
                Some(p) => Some(p.parse().map_err(|_| {
                    unmodeled(address, "redirect.port", p.clone(), "1-65535, #{port}")
                })?),
            };
            let status = match config.status_code() {
                Some(RedirectActionStatusCodeEnum::Http301) => RedirectStatus::Permanent,
                Some(RedirectActionStatusCodeEnum::Http302) => RedirectStatus::Found,
                other => {
                    return Err(unmodeled(
                        address,
                        "redirect.status",
                        other.map(|s| s.as_str().to_string()).unwrap_or_default(),
                        "HTTP_301, HTTP_302",
                    ))
                }
            };
            Ok(ListenerAction::Redirect {
                protocol,
                port,
                host: kept(config.host(), KEEP_HOST),
                path: kept(config.path(), KEEP_PATH),
                status,
            })
        }
        Some(ActionTypeEnum::FixedResponse) => {
            let config = action
                .fixed_response_config()
                .ok_or_else(|| ElbError::Missing {
                    address: address.clone(),
                    what: "fixed-response configuration",
                })?;
            let code = config.status_code().unwrap_or_default();
            Ok(ListenerAction::FixedResponse {
                status_code: code.parse().map_err(|_| {
                    unmodeled(address, "fixed_response.status_code", code, "2XX, 4XX, 5XX")
                })?,
                content_type: config.content_type().map(str::to_string),
                body: config.message_body().map(str::to_string),
            })
        }
        other => Err(unmodeled(
            address,
            "action.type",
            other.map(|t| t.as_str().to_string()).unwrap_or_default(),
            "forward, redirect, fixed-response",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// model -> AWS
// ---------------------------------------------------------------------------------------------

fn action_to(ctx: &Context<'_>, action: &ListenerAction) -> Result<Action, ProviderError> {
    Ok(match action {
        ListenerAction::Forward { target_group } => Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(ctx.resolved.physical_id(target_group)?)
            .build(),
        ListenerAction::Redirect {
            protocol,
            port,
            host,
            path,
            status,
        } => Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol(protocol.map(AppProtocol::as_str).unwrap_or(KEEP_PROTOCOL))
                    .port(
                        port.map(|p| p.to_string())
                            .unwrap_or_else(|| KEEP_PORT.into()),
                    )
                    .host(host.as_deref().unwrap_or(KEEP_HOST))
                    .path(path.as_deref().unwrap_or(KEEP_PATH))
                    .query(KEEP_QUERY)
                    .status_code(match status {
                        RedirectStatus::Permanent => RedirectActionStatusCodeEnum::Http301,
                        RedirectStatus::Found => RedirectActionStatusCodeEnum::Http302,
                    })
                    .build(),
            )
            .build(),
        ListenerAction::FixedResponse {
            status_code,
            content_type,
            body,
        } => Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .status_code(status_code.to_string())
                    .set_content_type(content_type.clone())
                    .set_message_body(body.clone())
                    .build(),
            )
            .build(),
    })
}

fn condition_to(c: &Condition) -> RuleCondition {
    match c {
        Condition::PathPattern(values) => RuleCondition::builder()
            .field("path-pattern")
            .path_pattern_config(
                PathPatternConditionConfig::builder()
                    .set_values(Some(values.clone()))
                    .build(),
            )
            .build(),
        Condition::HostHeader(values) => RuleCondition::builder()
            .field("host-header")
            .host_header_config(
                HostHeaderConditionConfig::builder()
                    .set_values(Some(values.clone()))
                    .build(),
            )
            .build(),
    }
}

fn health_check_port(port: HealthCheckPort) -> String {
    match port {
        HealthCheckPort::TrafficPort => "traffic-port".into(),
        HealthCheckPort::Port(p) => p.to_string(),
    }
}

fn lb_attributes(lb: &LoadBalancer) -> Vec<LoadBalancerAttribute> {
    [
        (
            DROP_INVALID_HEADERS,
            lb.drop_invalid_header_fields.to_string(),
        ),
        (DELETION_PROTECTION, lb.deletion_protection.to_string()),
        (IDLE_TIMEOUT, lb.idle_timeout_seconds.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| LoadBalancerAttribute::builder().key(k).value(v).build())
    .collect()
}

// ---------------------------------------------------------------------------------------------
// Create / update / delete
// ---------------------------------------------------------------------------------------------

pub(crate) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
) -> Result<Observed, ProviderError> {
    let address = desired.address();
    match &desired.resource {
        Resource::TargetGroup(tg) => create_target_group(p, ctx, desired, tg).await,
        Resource::LoadBalancer(lb) => create_load_balancer(p, ctx, desired, lb).await,
        Resource::Listener(l) => create_listener(p, ctx, &address, l).await,
        Resource::ListenerRule(r) => create_rule(p, ctx, &address, r).await,
        other => Err(ElbError::WrongKind {
            address,
            found: other.kind(),
        }
        .into()),
    }
}

async fn create_target_group(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    tg: &TargetGroup,
) -> Result<Observed, ProviderError> {
    let address = desired.address();
    let name = physical_name(ctx.stack, desired);
    let vpc = ctx.resolved.physical_id(&tg.vpc)?;
    let hc = &tg.health_check;
    tracing::debug!(%address, %name, "elbv2: creating target group");
    let created = create_once(
        p.options.max_attempts,
        || target_group_by_name(p, &name),
        || async {
            let out = p
                .elb
                .create_target_group()
                .name(&name)
                .protocol(protocol_to(tg.protocol))
                .port(i32::from(tg.port))
                .vpc_id(vpc)
                .target_type(match tg.target_type {
                    TargetType::Instance => TargetTypeEnum::Instance,
                    TargetType::Ip => TargetTypeEnum::Ip,
                })
                .health_check_enabled(true)
                .health_check_protocol(protocol_to(hc.protocol))
                .health_check_port(health_check_port(hc.port))
                .health_check_path(&hc.path)
                .matcher(Matcher::builder().http_code(&hc.matcher).build())
                .health_check_interval_seconds(to_i32(hc.interval_seconds))
                .health_check_timeout_seconds(to_i32(hc.timeout_seconds))
                .healthy_threshold_count(to_i32(hc.healthy_threshold))
                .unhealthy_threshold_count(to_i32(hc.unhealthy_threshold))
                .set_tags(Some(sdk_tags(ctx.stack, &desired.id)))
                .customize()
                .config_override(no_retries())
                .send()
                .await
                .map_err(|e| api_error("elasticloadbalancing:CreateTargetGroup", e))?;
            out.target_groups().first().cloned().ok_or_else(|| {
                ElbError::Missing {
                    address: address.clone(),
                    what: "target group",
                }
                .into()
            })
        },
    )
    .await?;
    let arn = created
        .target_group_arn()
        .ok_or_else(|| ElbError::Missing {
            address: address.clone(),
            what: "target group ARN",
        })?;
    let attrs = retry_not_found(VISIBLE_WITHIN, || {
        set_deregistration_delay(p, arn, tg.deregistration_delay_seconds)
    })
    .await?;
    observe_target_group(&address.id, &created, &attrs)
}

/// The target group named `name`, if there is one (a create whose answer was lost).
async fn target_group_by_name(
    p: &AwsProvider,
    name: &str,
) -> Result<Option<elbv2::types::TargetGroup>, ProviderError> {
    match p.elb.describe_target_groups().names(name).send().await {
        Ok(out) => Ok(out.target_groups().first().cloned()),
        Err(e) => {
            let err = api_error("elasticloadbalancing:DescribeTargetGroups", e);
            if is_not_found(&err) {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

/// Sets the deregistration delay and returns the target group's attributes as AWS answers them:
/// all of them (moto 5.2.1 answers only the ones sent, which holds the one the model reads).
async fn set_deregistration_delay(
    p: &AwsProvider,
    arn: &str,
    seconds: u32,
) -> Result<Attributes, ProviderError> {
    let out = p
        .elb
        .modify_target_group_attributes()
        .target_group_arn(arn)
        .attributes(
            TargetGroupAttribute::builder()
                .key(DEREGISTRATION_DELAY)
                .value(seconds.to_string())
                .build(),
        )
        .send()
        .await
        .map_err(|e| api_error("elasticloadbalancing:ModifyTargetGroupAttributes", e))?;
    Ok(tg_attribute_map(out.attributes()))
}

async fn create_load_balancer(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    lb: &LoadBalancer,
) -> Result<Observed, ProviderError> {
    let address = desired.address();
    let name = physical_name(ctx.stack, desired);
    let subnets = lb
        .subnets
        .iter()
        .map(|s| ctx.resolved.physical_id(s).map(str::to_string))
        .collect::<Result<Vec<_>, _>>()?;
    let groups = lb
        .security_groups
        .iter()
        .map(|s| ctx.resolved.physical_id(s).map(str::to_string))
        .collect::<Result<Vec<_>, _>>()?;
    tracing::debug!(%address, %name, "elbv2: creating load balancer");
    let created = create_once(
        p.options.max_attempts,
        || load_balancer_by_name(p, &name),
        || async {
            let out = p
                .elb
                .create_load_balancer()
                .name(&name)
                .r#type(LoadBalancerTypeEnum::Application)
                .scheme(match lb.scheme {
                    Scheme::InternetFacing => LoadBalancerSchemeEnum::InternetFacing,
                    Scheme::Internal => LoadBalancerSchemeEnum::Internal,
                })
                .set_subnets(Some(subnets.clone()))
                .set_security_groups(Some(groups.clone()))
                .set_tags(Some(sdk_tags(ctx.stack, &desired.id)))
                .customize()
                .config_override(no_retries())
                .send()
                .await
                .map_err(|e| api_error("elasticloadbalancing:CreateLoadBalancer", e))?;
            out.load_balancers().first().cloned().ok_or_else(|| {
                ElbError::Missing {
                    address: address.clone(),
                    what: "load balancer",
                }
                .into()
            })
        },
    )
    .await?;
    let arn = created
        .load_balancer_arn()
        .ok_or_else(|| ElbError::Missing {
            address: address.clone(),
            what: "load balancer ARN",
        })?;
    let attrs = retry_not_found(VISIBLE_WITHIN, || modify_lb_attributes(p, arn, lb)).await?;
    observe_load_balancer(&address.id, &created, &attrs)
}

/// The load balancer named `name`, if there is one (a create whose answer was lost).
async fn load_balancer_by_name(
    p: &AwsProvider,
    name: &str,
) -> Result<Option<elbv2::types::LoadBalancer>, ProviderError> {
    match p.elb.describe_load_balancers().names(name).send().await {
        Ok(out) => Ok(out.load_balancers().first().cloned()),
        Err(e) => {
            let err = api_error("elasticloadbalancing:DescribeLoadBalancers", e);
            if is_not_found(&err) {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

/// Sets the modelled attributes and returns all of the load balancer's, as AWS answers them.
async fn modify_lb_attributes(
    p: &AwsProvider,
    arn: &str,
    lb: &LoadBalancer,
) -> Result<Attributes, ProviderError> {
    let out = p
        .elb
        .modify_load_balancer_attributes()
        .load_balancer_arn(arn)
        .set_attributes(Some(lb_attributes(lb)))
        .send()
        .await
        .map_err(|e| api_error("elasticloadbalancing:ModifyLoadBalancerAttributes", e))?;
    Ok(lb_attribute_map(out.attributes()))
}

/// The one of `candidates` (listeners or rules) tagged with this stack and `id`.
async fn owned_among<T>(
    p: &AwsProvider,
    ctx: &Context<'_>,
    id: &str,
    candidates: Vec<T>,
    arn_of: impl Fn(&T) -> Option<&str>,
) -> Result<Option<T>, ProviderError> {
    let arns: Vec<String> = candidates
        .iter()
        .filter_map(|c| arn_of(c).map(str::to_string))
        .collect();
    let tags = describe_tags(p, &arns).await?;
    Ok(candidates.into_iter().find(|c| {
        arn_of(c)
            .and_then(|arn| owner(ctx.stack, &tags, arn))
            .as_deref()
            == Some(id)
    }))
}

async fn create_listener(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    l: &Listener,
) -> Result<Observed, ProviderError> {
    let lb_arn = ctx.resolved.physical_id(&l.load_balancer)?;
    let certificate = match &l.certificate {
        Some(c) => Some(ctx.resolved.physical_id(c)?),
        None => None,
    };
    let action = action_to(ctx, &l.default_action)?;
    tracing::debug!(%address, port = l.port, "elbv2: creating listener");
    // A load balancer has one listener per port: one there already, tagged as ours, is this one.
    let lookup = || async {
        let on_port: Vec<elbv2::types::Listener> = listeners_of(p, lb_arn)
            .await?
            .into_iter()
            .filter(|x| x.port() == Some(i32::from(l.port)))
            .collect();
        owned_among(p, ctx, &address.id, on_port, |x| x.listener_arn()).await
    };
    let listener = create_once(p.options.max_attempts, lookup, || async {
        let out = p
            .elb
            .create_listener()
            .load_balancer_arn(lb_arn)
            .port(i32::from(l.port))
            .protocol(protocol_to(l.protocol))
            .set_certificates(
                certificate.map(|arn| vec![SdkCertificate::builder().certificate_arn(arn).build()]),
            )
            .set_ssl_policy(l.ssl_policy.clone())
            .default_actions(action.clone())
            .set_tags(Some(sdk_tags(ctx.stack, &address.id)))
            .customize()
            .config_override(no_retries())
            .send()
            .await
            .map_err(|e| api_error("elasticloadbalancing:CreateListener", e))?;
        out.listeners()
            .first()
            .filter(|x| x.listener_arn().is_some())
            .cloned()
            .ok_or_else(|| {
                ElbError::Missing {
                    address: address.clone(),
                    what: "listener ARN",
                }
                .into()
            })
    })
    .await?;
    observe_listener(&address.id, &listener)
}

async fn create_rule(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    r: &ListenerRule,
) -> Result<Observed, ProviderError> {
    let listener_arn = ctx.resolved.physical_id(&r.listener)?;
    let action = action_to(ctx, &r.action)?;
    let priority = r.priority.to_string();
    tracing::debug!(%address, priority = r.priority, "elbv2: creating listener rule");
    // Priorities are unique per listener: a rule there already, tagged as ours, is this one.
    let lookup = || async {
        let at_priority: Vec<elbv2::types::Rule> = rules_of(p, listener_arn)
            .await?
            .into_iter()
            .filter(|x| x.priority() == Some(priority.as_str()))
            .collect();
        owned_among(p, ctx, &address.id, at_priority, |x| x.rule_arn()).await
    };
    let rule = create_once(p.options.max_attempts, lookup, || async {
        let out = p
            .elb
            .create_rule()
            .listener_arn(listener_arn)
            .priority(to_i32(r.priority))
            .set_conditions(Some(r.conditions.iter().map(condition_to).collect()))
            .actions(action.clone())
            .set_tags(Some(sdk_tags(ctx.stack, &address.id)))
            .customize()
            .config_override(no_retries())
            .send()
            .await
            .map_err(|e| api_error("elasticloadbalancing:CreateRule", e))?;
        out.rules()
            .first()
            .filter(|x| x.rule_arn().is_some())
            .cloned()
            .ok_or_else(|| {
                ElbError::Missing {
                    address: address.clone(),
                    what: "rule ARN",
                }
                .into()
            })
    })
    .await?;
    observe_rule(&address.id, listener_arn, &rule)
}

pub(crate) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    prior: &Observed,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    let address = desired.address();
    let arn = prior.physical_id.as_str();
    let has = |field: &str| changed.iter().any(|c| c == field);
    let not_in_place = |allowed: &[&str]| {
        changed
            .iter()
            .find(|c| !allowed.contains(&c.as_str()))
            .map(|field| -> ProviderError {
                ElbError::NotInPlace {
                    address: address.clone(),
                    field: field.clone(),
                }
                .into()
            })
    };
    match &desired.resource {
        Resource::TargetGroup(tg) => {
            if let Some(err) = not_in_place(&["health_check", "deregistration_delay_seconds"]) {
                return Err(err);
            }
            // The two writes are independent, so they go at once. Each answers with its half of
            // what discovery reads; only the other half, when just one half changed, is read.
            let health_check = async {
                if !has("health_check") {
                    return Ok(None);
                }
                let hc = &tg.health_check;
                let out = p
                    .elb
                    .modify_target_group()
                    .target_group_arn(arn)
                    .health_check_enabled(true)
                    .health_check_protocol(protocol_to(hc.protocol))
                    .health_check_port(health_check_port(hc.port))
                    .health_check_path(&hc.path)
                    .matcher(Matcher::builder().http_code(&hc.matcher).build())
                    .health_check_interval_seconds(to_i32(hc.interval_seconds))
                    .health_check_timeout_seconds(to_i32(hc.timeout_seconds))
                    .healthy_threshold_count(to_i32(hc.healthy_threshold))
                    .unhealthy_threshold_count(to_i32(hc.unhealthy_threshold))
                    .send()
                    .await
                    .map_err(|e| api_error("elasticloadbalancing:ModifyTargetGroup", e))?;
                Ok(out.target_groups().first().cloned())
            };
            let delay = async {
                if !has("deregistration_delay_seconds") {
                    return Ok(None);
                }
                set_deregistration_delay(p, arn, tg.deregistration_delay_seconds)
                    .await
                    .map(Some)
            };
            let (described, attrs) = futures::try_join!(health_check, delay)?;
            // A read right after a write that succeeded: NotFound is eventual consistency.
            let (described, attrs) = match (described, attrs) {
                (Some(tg), Some(attrs)) => (tg, attrs),
                (Some(tg), None) => (
                    tg,
                    retry_not_found(VISIBLE_WITHIN, || target_group_attributes(p, arn)).await?,
                ),
                (None, Some(attrs)) => (
                    retry_not_found(VISIBLE_WITHIN, || describe_target_group(p, &address, arn))
                        .await?,
                    attrs,
                ),
                (None, None) => {
                    return retry_not_found(VISIBLE_WITHIN, || read_target_group(p, &address, arn))
                        .await
                }
            };
            observe_target_group(&address.id, &described, &attrs)
        }
        Resource::LoadBalancer(lb) => {
            if let Some(err) = not_in_place(&[
                "subnets",
                "security_groups",
                "drop_invalid_header_fields",
                "deletion_protection",
                "idle_timeout_seconds",
            ]) {
                return Err(err);
            }
            if has("subnets") {
                let subnets = lb
                    .subnets
                    .iter()
                    .map(|s| ctx.resolved.physical_id(s).map(str::to_string))
                    .collect::<Result<Vec<_>, _>>()?;
                p.elb
                    .set_subnets()
                    .load_balancer_arn(arn)
                    .set_subnets(Some(subnets))
                    .send()
                    .await
                    .map_err(|e| api_error("elasticloadbalancing:SetSubnets", e))?;
            }
            if has("security_groups") {
                let groups = lb
                    .security_groups
                    .iter()
                    .map(|s| ctx.resolved.physical_id(s).map(str::to_string))
                    .collect::<Result<Vec<_>, _>>()?;
                p.elb
                    .set_security_groups()
                    .load_balancer_arn(arn)
                    .set_security_groups(Some(groups))
                    .send()
                    .await
                    .map_err(|e| api_error("elasticloadbalancing:SetSecurityGroups", e))?;
            }
            if has("drop_invalid_header_fields")
                || has("deletion_protection")
                || has("idle_timeout_seconds")
            {
                // The attributes come with the answer; the rest (subnets, state) is read.
                let (attrs, described) = futures::try_join!(
                    modify_lb_attributes(p, arn, lb),
                    retry_not_found(VISIBLE_WITHIN, || describe_load_balancer(p, &address, arn))
                )?;
                return observe_load_balancer(&address.id, &described, &attrs);
            }
            retry_not_found(VISIBLE_WITHIN, || read_load_balancer(p, &address, arn)).await
        }
        Resource::Listener(l) => {
            if let Some(err) = not_in_place(&[
                "port",
                "protocol",
                "certificate",
                "ssl_policy",
                "default_action",
            ]) {
                return Err(err);
            }
            let mut call = p.elb.modify_listener().listener_arn(arn);
            if has("port") {
                call = call.port(i32::from(l.port));
            }
            if has("protocol") {
                call = call.protocol(protocol_to(l.protocol));
            }
            if has("certificate") {
                if let Some(c) = &l.certificate {
                    let cert = ctx.resolved.physical_id(c)?;
                    call =
                        call.certificates(SdkCertificate::builder().certificate_arn(cert).build());
                }
            }
            if has("ssl_policy") || has("protocol") {
                call = call.set_ssl_policy(l.ssl_policy.clone());
            }
            if has("default_action") {
                call = call.default_actions(action_to(ctx, &l.default_action)?);
            }
            let out = call
                .send()
                .await
                .map_err(|e| api_error("elasticloadbalancing:ModifyListener", e))?;
            match out.listeners().first() {
                Some(listener) => observe_listener(&address.id, listener),
                None => retry_not_found(VISIBLE_WITHIN, || read_listener(p, &address, arn)).await,
            }
        }
        Resource::ListenerRule(r) => {
            if let Some(err) = not_in_place(&["priority", "conditions", "action"]) {
                return Err(err);
            }
            // The last write's answer holds the rule with every change made.
            let mut latest = None;
            if has("conditions") || has("action") {
                let out = p
                    .elb
                    .modify_rule()
                    .rule_arn(arn)
                    .set_conditions(Some(r.conditions.iter().map(condition_to).collect()))
                    .actions(action_to(ctx, &r.action)?)
                    .send()
                    .await
                    .map_err(|e| api_error("elasticloadbalancing:ModifyRule", e))?;
                latest = out.rules().first().cloned();
            }
            if has("priority") {
                let out = p
                    .elb
                    .set_rule_priorities()
                    .rule_priorities(
                        RulePriorityPair::builder()
                            .rule_arn(arn)
                            .priority(to_i32(r.priority))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| api_error("elasticloadbalancing:SetRulePriorities", e))?;
                latest = out
                    .rules()
                    .iter()
                    .find(|x| x.rule_arn() == Some(arn))
                    .cloned();
            }
            match latest {
                Some(rule) => observe_rule(&address.id, &rule_listener(&address, arn)?, &rule),
                None => retry_not_found(VISIBLE_WITHIN, || read_rule(p, &address, arn)).await,
            }
        }
        other => Err(ElbError::WrongKind {
            address,
            found: other.kind(),
        }
        .into()),
    }
}

pub(crate) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
) -> Result<(), ProviderError> {
    let address = &prior.address;
    let arn = prior.physical_id.as_str();
    let gone = |result: Result<(), ProviderError>| match result {
        Err(err) if is_not_found(&err) => Ok(()),
        other => other,
    };
    tracing::debug!(%address, "elbv2: deleting");
    match address.kind {
        Kind::TargetGroup => {
            // Right after its listener or rule is deleted, AWS may still count the group in use.
            let start = std::time::Instant::now();
            let mut delay = Duration::from_secs(1);
            loop {
                let result = p
                    .elb
                    .delete_target_group()
                    .target_group_arn(arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| api_error("elasticloadbalancing:DeleteTargetGroup", e));
                match result {
                    Err(err)
                        if error_code(&err) == Some("ResourceInUse")
                            && start.elapsed() < IN_USE_RETRY =>
                    {
                        ctx.progress
                            .waiting(address, "in use by a listener", start.elapsed());
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(15));
                    }
                    other => break gone(other)?,
                }
            }
            wait_gone(p, ctx, address, || async {
                p.elb
                    .describe_target_groups()
                    .target_group_arns(arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| api_error("elasticloadbalancing:DescribeTargetGroups", e))
            })
            .await
        }
        Kind::LoadBalancer => {
            let attrs = match load_balancer_attributes(p, arn).await {
                Err(err) if is_not_found(&err) => return Ok(()),
                other => other?,
            };
            if attrs.get(DELETION_PROTECTION).map(String::as_str) == Some("true") {
                return Err(ElbError::DeletionProtected {
                    address: address.clone(),
                }
                .into());
            }
            gone(
                p.elb
                    .delete_load_balancer()
                    .load_balancer_arn(arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| api_error("elasticloadbalancing:DeleteLoadBalancer", e)),
            )?;
            wait_gone(p, ctx, address, || async {
                p.elb
                    .describe_load_balancers()
                    .load_balancer_arns(arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| api_error("elasticloadbalancing:DescribeLoadBalancers", e))
            })
            .await
        }
        Kind::Listener => gone(
            p.elb
                .delete_listener()
                .listener_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api_error("elasticloadbalancing:DeleteListener", e)),
        ),
        Kind::ListenerRule => gone(
            p.elb
                .delete_rule()
                .rule_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api_error("elasticloadbalancing:DeleteRule", e)),
        ),
        other => Err(ElbError::WrongKind {
            address: address.clone(),
            found: other,
        }
        .into()),
    }
}

/// Poll `describe` until it answers NotFound.
async fn wait_gone<F, Fut>(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    describe: F,
) -> Result<(), ProviderError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), ProviderError>>,
{
    wait_for(
        ctx.progress,
        address,
        "deleted",
        p.options.wait_timeout,
        || async {
            match describe().await {
                Ok(()) => Ok(Poll::Pending("deleting".into())),
                Err(err) if is_not_found(&err) => Ok(Poll::Ready(())),
                Err(err) => Err(err),
            }
        },
    )
    .await
}

pub(crate) async fn wait_ready(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<Observed, ProviderError> {
    if observed.address.kind != Kind::LoadBalancer {
        return Ok(observed.clone());
    }
    let address = &observed.address;
    let status = |o: &Observed| {
        o.attributes
            .get(attributes::STATUS)
            .cloned()
            .unwrap_or_default()
    };
    if status(observed) == LoadBalancerStateEnum::Active.as_str() {
        return Ok(observed.clone());
    }
    // Provisioning changes the load balancer's state, not its attributes: `observed` holds them
    // as the create's or update's answer gave them, so each look is one DescribeLoadBalancers.
    let attrs = match &observed.resource {
        Resource::LoadBalancer(lb) => lb_attribute_map(&lb_attributes(lb)),
        other => {
            return Err(ElbError::WrongKind {
                address: address.clone(),
                found: other.kind(),
            }
            .into())
        }
    };
    wait_for(
        ctx.progress,
        address,
        "active",
        p.options.wait_timeout,
        || async {
            // A read can still miss a new load balancer even after an earlier one found it.
            let described = retry_not_found(VISIBLE_WITHIN, || {
                describe_load_balancer(p, address, &observed.physical_id)
            })
            .await?;
            let current = observe_load_balancer(&address.id, &described, &attrs)?;
            let status = status(&current);
            if status == LoadBalancerStateEnum::Active.as_str() {
                Ok(Poll::Ready(current))
            } else if status == LoadBalancerStateEnum::Failed.as_str() {
                Err(ProviderError::Other(format!(
                    "{address} failed to provision (state `failed`)"
                )))
            } else {
                Ok(Poll::Pending(status))
            }
        },
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Reading one resource by ARN
// ---------------------------------------------------------------------------------------------

async fn describe_target_group(
    p: &AwsProvider,
    address: &Address,
    arn: &str,
) -> Result<elbv2::types::TargetGroup, ProviderError> {
    let out = p
        .elb
        .describe_target_groups()
        .target_group_arns(arn)
        .send()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeTargetGroups", e))?;
    out.target_groups().first().cloned().ok_or_else(|| {
        ElbError::Missing {
            address: address.clone(),
            what: "target group",
        }
        .into()
    })
}

async fn read_target_group(
    p: &AwsProvider,
    address: &Address,
    arn: &str,
) -> Result<Observed, ProviderError> {
    let (tg, attrs) = futures::try_join!(
        describe_target_group(p, address, arn),
        target_group_attributes(p, arn)
    )?;
    observe_target_group(&address.id, &tg, &attrs)
}

async fn describe_load_balancer(
    p: &AwsProvider,
    address: &Address,
    arn: &str,
) -> Result<elbv2::types::LoadBalancer, ProviderError> {
    let out = p
        .elb
        .describe_load_balancers()
        .load_balancer_arns(arn)
        .send()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeLoadBalancers", e))?;
    out.load_balancers().first().cloned().ok_or_else(|| {
        ElbError::Missing {
            address: address.clone(),
            what: "load balancer",
        }
        .into()
    })
}

async fn read_load_balancer(
    p: &AwsProvider,
    address: &Address,
    arn: &str,
) -> Result<Observed, ProviderError> {
    let (lb, attrs) = futures::try_join!(
        describe_load_balancer(p, address, arn),
        load_balancer_attributes(p, arn)
    )?;
    observe_load_balancer(&address.id, &lb, &attrs)
}

async fn read_listener(
    p: &AwsProvider,
    address: &Address,
    arn: &str,
) -> Result<Observed, ProviderError> {
    let out = p
        .elb
        .describe_listeners()
        .listener_arns(arn)
        .send()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeListeners", e))?;
    let listener = out.listeners().first().ok_or_else(|| ElbError::Missing {
        address: address.clone(),
        what: "listener",
    })?;
    observe_listener(&address.id, listener)
}

/// The listener a rule belongs to, from the rule's ARN: AWS builds
/// `…:listener-rule/app/NAME/LB/LISTENER/RULE` from `…:listener/app/NAME/LB/LISTENER`.
fn listener_arn_of_rule(rule_arn: &str) -> Option<String> {
    let (prefix, _rule) = rule_arn.rsplit_once('/')?;
    prefix
        .contains(":listener-rule/")
        .then(|| prefix.replacen(":listener-rule/", ":listener/", 1))
}

async fn read_rule(
    p: &AwsProvider,
    address: &Address,
    arn: &str,
) -> Result<Observed, ProviderError> {
    let out = p
        .elb
        .describe_rules()
        .rule_arns(arn)
        .send()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeRules", e))?;
    let rule = out.rules().first().ok_or_else(|| ElbError::Missing {
        address: address.clone(),
        what: "rule",
    })?;
    observe_rule(&address.id, &rule_listener(address, arn)?, rule)
}

/// The listener ARN of the rule `arn`, read off the ARN.
fn rule_listener(address: &Address, arn: &str) -> Result<String, ProviderError> {
    listener_arn_of_rule(arn).ok_or_else(|| {
        unmodeled(
            address,
            "rule_arn",
            arn,
            "an ARN of the form arn:…:listener-rule/app/NAME/LB/LISTENER/RULE",
        )
    })
}

pub(crate) async fn read(
    p: &AwsProvider,
    _stack: &Stack,
    address: &Address,
    physical_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    let result = match address.kind {
        Kind::TargetGroup => read_target_group(p, address, physical_id).await,
        Kind::LoadBalancer => read_load_balancer(p, address, physical_id).await,
        Kind::Listener => read_listener(p, address, physical_id).await,
        Kind::ListenerRule => read_rule(p, address, physical_id).await,
        other => {
            return Err(ElbError::WrongKind {
                address: address.clone(),
                found: other,
            }
            .into())
        }
    };
    match result {
        Ok(observed) => Ok(Some(observed)),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(err),
    }
}

pub(crate) async fn adopt(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<(), ProviderError> {
    p.elb
        .add_tags()
        .resource_arns(&observed.physical_id)
        .set_tags(Some(sdk_tags(ctx.stack, &observed.address.id)))
        .send()
        .await
        .map_err(|e| api_error("elasticloadbalancing:AddTags", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> Address {
        Address::new(Kind::Listener, "http")
    }

    #[test]
    fn rule_arn_names_its_listener() {
        let rule =
            "arn:aws:elasticloadbalancing:ap-northeast-2:123:listener-rule/app/web/50dc/f2f7/9683";
        assert_eq!(
            listener_arn_of_rule(rule).as_deref(),
            Some("arn:aws:elasticloadbalancing:ap-northeast-2:123:listener/app/web/50dc/f2f7")
        );
        assert_eq!(
            listener_arn_of_rule("arn:aws:elasticloadbalancing:x:listener/app/a/b/c"),
            None
        );
    }

    #[test]
    fn redirect_defaults_read_back_as_kept_fields() {
        let action = Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol("HTTPS")
                    .port("443")
                    .host(KEEP_HOST)
                    .path(KEEP_PATH)
                    .query(KEEP_QUERY)
                    .status_code(RedirectActionStatusCodeEnum::Http301)
                    .build(),
            )
            .build();
        assert_eq!(
            action_from(&addr(), &action).unwrap(),
            ListenerAction::redirect_to_https()
        );
    }

    #[test]
    fn legacy_condition_values_are_read_when_the_typed_config_is_empty() {
        let legacy = RuleCondition::builder()
            .field("path-pattern")
            .values("/api/*")
            .build();
        assert_eq!(
            condition_from(&addr(), &legacy).unwrap(),
            Condition::PathPattern(vec!["/api/*".into()])
        );
        let typed = condition_to(&Condition::HostHeader(vec!["a.example.com".into()]));
        assert_eq!(
            condition_from(&addr(), &typed).unwrap(),
            Condition::HostHeader(vec!["a.example.com".into()])
        );
    }

    #[test]
    fn unknown_protocols_name_the_field_and_valid_values() {
        let err = protocol_from(&addr(), "protocol", Some(&ProtocolEnum::Tcp)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "elbv2_listener.http: AWS reports protocol = `TCP`, which infra does not model (valid: HTTP, HTTPS)"
        );
    }
}
