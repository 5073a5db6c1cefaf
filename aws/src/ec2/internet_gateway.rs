//! Internet gateways: describe, observe, create and attach, re-attach on update, detach and
//! delete.

use aws_sdk_ec2::types::{self as ec2, ResourceType};
use infra_core::model::{Declared, InternetGateway};
use infra_core::provider::Context;
use infra_core::{Address, Kind, Observed, ProviderError, Ref};

use super::{
    describe, no_retries, observe_after_change, read_by_id, retry_dependency, tag_spec, wait_gone,
    Scope, CREATE_ATTEMPTS,
};
use crate::support::{api_error, create_once, error_code, wait_for, Poll};
use crate::AwsProvider;

pub(super) async fn describe_gateways(
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

pub(super) fn observe_gateway(id: String, gateway: &ec2::InternetGateway) -> Observed {
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

/// One gateway by physical id, with the logical id `id`.
pub(super) async fn read(
    p: &AwsProvider,
    id: String,
    gateway_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    Ok(describe_gateways(p, Scope::Id(gateway_id))
        .await?
        .first()
        .map(|g| observe_gateway(id, g)))
}

pub(super) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    gateway: &InternetGateway,
) -> Result<Observed, ProviderError> {
    let id = desired.id.as_str();
    let owned = Scope::Owned(ctx.stack, id);
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
                    ProviderError::Other("ec2:CreateInternetGateway returned no gateway id".into())
                })
        },
    )
    .await?;
    attach_gateway(p, &gateway_id, vpc_id).await?;
    observe_after_change(p, ctx, &desired.address(), &gateway_id).await
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

/// Its only field, `vpc`, forces a replacement; an update re-attaches a detached gateway.
pub(super) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    gateway_id: &str,
    gateway: &InternetGateway,
) -> Result<Observed, ProviderError> {
    let vpc_id = ctx.resolved.physical_id(&gateway.vpc)?;
    attach_gateway(p, gateway_id, vpc_id).await?;
    observe_after_change(p, ctx, &desired.address(), gateway_id).await
}

pub(super) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    gateway_id: &str,
) -> Result<(), ProviderError> {
    delete_gateway(p, ctx, address, gateway_id).await?;
    wait_gone(p, ctx, address, gateway_id).await
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
