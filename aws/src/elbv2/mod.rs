//! Elastic Load Balancing v2: target groups, Application Load Balancers, listeners and rules.
//!
//! ELBv2 has no tag filter, so discovery describes every load balancer and target group in the
//! region, reads their tags in batches of 20 ARNs, and reads the owned ones' details
//! (attributes, listeners, rules) with concurrent per-resource calls, starting them early for
//! resources named as this stack names them (see [`discover`]). Creates and updates build what
//! they return from the answers of their write calls, which carry the object, not from a read.

mod actions;
mod discovery;
mod listener;
mod listener_rule;
mod load_balancer;
mod target_group;

use std::collections::HashMap;

use aws_config::retry::RetryConfig;
use aws_sdk_elasticloadbalancingv2 as elbv2;
use elbv2::types::{ProtocolEnum, Tag};
use infra_core::model::{AppProtocol, Declared, Resource};
use infra_core::provider::Context;
use infra_core::{Address, Kind, Observed, ProviderError, Stack};

use crate::support::{api_error, is_not_found, ownership_tags, wait_for, Poll};
use crate::AwsProvider;

pub(crate) use discovery::discover;

/// The longest name a load balancer or target group may have.
const NAME_MAX: usize = 32;

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

/// The name of a target group or load balancer; AWS allows 32 characters.
fn physical_name(stack: &str, desired: &Declared) -> String {
    infra_core::naming::physical_name(stack, desired, NAME_MAX)
}

type Attributes = HashMap<String, String>;

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
        Resource::TargetGroup(tg) => target_group::create_target_group(p, ctx, desired, tg).await,
        Resource::LoadBalancer(lb) => {
            load_balancer::create_load_balancer(p, ctx, desired, lb).await
        }
        Resource::Listener(l) => listener::create_listener(p, ctx, &address, l).await,
        Resource::ListenerRule(r) => listener_rule::create_rule(p, ctx, &address, r).await,
        other => Err(ElbError::WrongKind {
            address,
            found: other.kind(),
        }
        .into()),
    }
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
    match &desired.resource {
        Resource::TargetGroup(tg) => target_group::update(p, &address, arn, tg, changed).await,
        Resource::LoadBalancer(lb) => {
            load_balancer::update(p, ctx, &address, arn, lb, changed).await
        }
        Resource::Listener(l) => listener::update(p, ctx, &address, arn, l, changed).await,
        Resource::ListenerRule(r) => listener_rule::update(p, ctx, &address, arn, r, changed).await,
        other => Err(ElbError::WrongKind {
            address,
            found: other.kind(),
        }
        .into()),
    }
}

/// Whether `field` is among the `changed` fields of an update.
fn has(changed: &[String], field: &str) -> bool {
    changed.iter().any(|c| c == field)
}

/// Fails on the first of the `changed` fields that `allowed` lacks: it cannot change in place.
fn in_place_only(
    address: &Address,
    changed: &[String],
    allowed: &[&str],
) -> Result<(), ProviderError> {
    match changed.iter().find(|c| !allowed.contains(&c.as_str())) {
        Some(field) => Err(ElbError::NotInPlace {
            address: address.clone(),
            field: field.clone(),
        }
        .into()),
        None => Ok(()),
    }
}

pub(crate) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
) -> Result<(), ProviderError> {
    let address = &prior.address;
    let arn = prior.physical_id.as_str();
    tracing::debug!(%address, "elbv2: deleting");
    match address.kind {
        Kind::TargetGroup => target_group::delete(p, ctx, address, arn).await,
        Kind::LoadBalancer => load_balancer::delete(p, ctx, address, arn).await,
        Kind::Listener => listener::delete(p, arn).await,
        Kind::ListenerRule => listener_rule::delete(p, arn).await,
        other => Err(ElbError::WrongKind {
            address: address.clone(),
            found: other,
        }
        .into()),
    }
}

/// A delete's result, with NotFound (already gone) as success.
fn gone(result: Result<(), ProviderError>) -> Result<(), ProviderError> {
    match result {
        Err(err) if is_not_found(&err) => Ok(()),
        other => other,
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
    match observed.address.kind {
        Kind::LoadBalancer => load_balancer::wait_ready(p, ctx, observed).await,
        _ => Ok(observed.clone()),
    }
}

// ---------------------------------------------------------------------------------------------
// Reading one resource by ARN
// ---------------------------------------------------------------------------------------------

pub(crate) async fn read(
    p: &AwsProvider,
    _stack: &Stack,
    address: &Address,
    physical_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    let result = match address.kind {
        Kind::TargetGroup => target_group::read_target_group(p, address, physical_id).await,
        Kind::LoadBalancer => load_balancer::read_load_balancer(p, address, physical_id).await,
        Kind::Listener => listener::read_listener(p, address, physical_id).await,
        Kind::ListenerRule => listener_rule::read_rule(p, address, physical_id).await,
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
    fn unknown_protocols_name_the_field_and_valid_values() {
        let err = protocol_from(&addr(), "protocol", Some(&ProtocolEnum::Tcp)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "elbv2_listener.http: AWS reports protocol = `TCP`, which infra does not model (valid: HTTP, HTTPS)"
        );
    }
}
