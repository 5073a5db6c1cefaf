//! Target groups: read from AWS, created, updated (health check and deregistration delay),
//! read by ARN and deleted.

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2 as elbv2;
use elbv2::types::{Matcher, TargetGroupAttribute, TargetTypeEnum};
use infra_core::model::{Declared, HealthCheck, HealthCheckPort, TargetGroup, TargetType};
use infra_core::provider::Context;
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, ProviderError, Ref};

use super::{
    gone, has, in_place_only, no_retries, physical_name, protocol_from, protocol_to, sdk_tags,
    to_i32, to_u16, to_u32, unmodeled, wait_gone, Attributes, ElbError,
};
use crate::support::{
    api_error, create_once, error_code, is_not_found, pause, retry_not_found, VISIBLE_WITHIN,
};
use crate::AwsProvider;

const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";
/// How long a target group may stay in use by a listener that is being deleted.
const IN_USE_RETRY: Duration = Duration::from_secs(120);

pub(super) async fn target_group_attributes(
    p: &AwsProvider,
    arn: &str,
) -> Result<Attributes, ProviderError> {
    let out = p
        .elb
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeTargetGroupAttributes", e))?;
    Ok(tg_attribute_map(out.attributes()))
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

pub(super) fn observe_target_group(
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

// ---------------------------------------------------------------------------------------------
// model -> AWS
// ---------------------------------------------------------------------------------------------

fn health_check_port(port: HealthCheckPort) -> String {
    match port {
        HealthCheckPort::TrafficPort => "traffic-port".into(),
        HealthCheckPort::Port(p) => p.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Create / update / delete
// ---------------------------------------------------------------------------------------------

pub(super) async fn create_target_group(
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

/// Changes the health check and the deregistration delay; any other change forces a replacement.
pub(super) async fn update(
    p: &AwsProvider,
    address: &Address,
    arn: &str,
    tg: &TargetGroup,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    in_place_only(
        address,
        changed,
        &["health_check", "deregistration_delay_seconds"],
    )?;
    // The two writes are independent, so they go at once. Each answers with its half of
    // what discovery reads; only the other half, when just one half changed, is read.
    let health_check = async {
        if !has(changed, "health_check") {
            return Ok(None);
        }
        update_health_check(p, arn, &tg.health_check).await
    };
    let delay = async {
        if !has(changed, "deregistration_delay_seconds") {
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
            retry_not_found(VISIBLE_WITHIN, || describe_target_group(p, address, arn)).await?,
            attrs,
        ),
        (None, None) => {
            return retry_not_found(VISIBLE_WITHIN, || read_target_group(p, address, arn)).await
        }
    };
    observe_target_group(&address.id, &described, &attrs)
}

/// Writes the whole health check; answers the target group as AWS now describes it.
async fn update_health_check(
    p: &AwsProvider,
    arn: &str,
    hc: &HealthCheck,
) -> Result<Option<elbv2::types::TargetGroup>, ProviderError> {
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
}

/// Deletes the target group, retrying while AWS still counts it in use, and waits until it is gone.
pub(super) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    arn: &str,
) -> Result<(), ProviderError> {
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
                if error_code(&err) == Some("ResourceInUse") && start.elapsed() < IN_USE_RETRY =>
            {
                ctx.progress
                    .waiting(address, "in use by a listener", start.elapsed());
                pause(delay, || format!("not retried after {err}")).await?;
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

pub(super) async fn read_target_group(
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
