//! VPCs: describe, observe (with the two DNS attributes), create, update and delete.

use aws_sdk_ec2::types::{self as ec2, AttributeBooleanValue, ResourceType, VpcAttributeName};
use infra_core::model::{Declared, Vpc};
use infra_core::provider::Context;
use infra_core::{Address, Kind, Observed, ProviderError};

use super::{
    describe, no_retries, observe_after_change, retry_dependency, tag_spec, wait_gone, Scope,
    CREATE_ATTEMPTS,
};
use crate::support::{api_error, create_once};
use crate::AwsProvider;

pub(super) async fn describe_vpcs(
    p: &AwsProvider,
    scope: Scope<'_>,
) -> Result<Vec<ec2::Vpc>, ProviderError> {
    describe!(p, scope, describe_vpcs, vpc_ids, "ec2:DescribeVpcs")
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

pub(super) async fn observe_vpc(
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

/// One VPC by physical id, with the logical id `id`.
pub(super) async fn read(
    p: &AwsProvider,
    id: String,
    vpc_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    Ok(match describe_vpcs(p, Scope::Id(vpc_id)).await?.first() {
        Some(vpc) => Some(observe_vpc(p, id, vpc).await?),
        None => None,
    })
}

pub(super) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    vpc: &Vpc,
) -> Result<Observed, ProviderError> {
    let id = desired.id.as_str();
    let owned = Scope::Owned(ctx.stack, id);
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
                .ok_or_else(|| ProviderError::Other("ec2:CreateVpc returned no VPC id".into()))
        },
    )
    .await?;
    set_vpc_dns(p, &vpc_id, vpc).await?;
    observe_after_change(p, ctx, &desired.address(), &vpc_id).await
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

pub(super) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    vpc_id: &str,
    vpc: &Vpc,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    let changes = |field: &str| changed.iter().any(|c| c == field);
    if changes("enable_dns_support") || changes("enable_dns_hostnames") {
        set_vpc_dns(p, vpc_id, vpc).await?;
    }
    observe_after_change(p, ctx, &desired.address(), vpc_id).await
}

pub(super) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    id: &str,
) -> Result<(), ProviderError> {
    retry_dependency(p, ctx, address, "deleted", || async {
        p.ec2
            .delete_vpc()
            .vpc_id(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_error("ec2:DeleteVpc", e))
    })
    .await?;
    wait_gone(p, ctx, address, id).await
}
