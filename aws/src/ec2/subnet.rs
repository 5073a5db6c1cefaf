//! Subnets: describe, observe, create, update (public IPs on launch) and delete.

use aws_sdk_ec2::types::{self as ec2, AttributeBooleanValue, ResourceType};
use infra_core::model::{Declared, Subnet};
use infra_core::provider::Context;
use infra_core::{Address, Kind, Observed, ProviderError, Ref};

use super::{
    describe, no_retries, observe_after_change, retry_dependency, tag_spec, wait_gone, Scope,
    CREATE_ATTEMPTS,
};
use crate::support::{api_error, create_once};
use crate::AwsProvider;

pub(super) async fn describe_subnets(
    p: &AwsProvider,
    scope: Scope<'_>,
) -> Result<Vec<ec2::Subnet>, ProviderError> {
    describe!(
        p,
        scope,
        describe_subnets,
        subnet_ids,
        "ec2:DescribeSubnets"
    )
}

pub(super) fn observe_subnet(id: String, subnet: &ec2::Subnet) -> Observed {
    let model = Subnet {
        vpc: Ref::from_id(subnet.vpc_id().unwrap_or_default()),
        cidr: subnet.cidr_block().unwrap_or_default().to_string(),
        availability_zone: subnet.availability_zone().unwrap_or_default().to_string(),
        map_public_ip_on_launch: subnet.map_public_ip_on_launch().unwrap_or(false),
    };
    Observed::new(
        Address::new(Kind::Subnet, id),
        subnet.subnet_id().unwrap_or_default(),
        model.into(),
    )
}

/// One subnet by physical id, with the logical id `id`.
pub(super) async fn read(
    p: &AwsProvider,
    id: String,
    subnet_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    Ok(describe_subnets(p, Scope::Id(subnet_id))
        .await?
        .first()
        .map(|s| observe_subnet(id, s)))
}

pub(super) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    subnet: &Subnet,
) -> Result<Observed, ProviderError> {
    let id = desired.id.as_str();
    let owned = Scope::Owned(ctx.stack, id);
    let vpc_id = ctx.resolved.physical_id(&subnet.vpc)?;
    let subnet_id = create_once(
        CREATE_ATTEMPTS,
        || async {
            Ok(describe_subnets(p, owned)
                .await?
                .first()
                .and_then(|s| s.subnet_id().map(str::to_string)))
        },
        || async {
            p.ec2
                .create_subnet()
                .vpc_id(vpc_id)
                .cidr_block(&subnet.cidr)
                .availability_zone(&subnet.availability_zone)
                .tag_specifications(tag_spec(ResourceType::Subnet, ctx.stack, id))
                .customize()
                .config_override(no_retries())
                .send()
                .await
                .map_err(|e| api_error("ec2:CreateSubnet", e))?
                .subnet()
                .and_then(|s| s.subnet_id().map(str::to_string))
                .ok_or_else(|| {
                    ProviderError::Other("ec2:CreateSubnet returned no subnet id".into())
                })
        },
    )
    .await?;
    // CreateSubnet cannot set it: always a second call.
    set_map_public_ip(p, &subnet_id, subnet.map_public_ip_on_launch).await?;
    observe_after_change(p, ctx, &desired.address(), &subnet_id).await
}

async fn set_map_public_ip(
    p: &AwsProvider,
    subnet_id: &str,
    on: bool,
) -> Result<(), ProviderError> {
    p.ec2
        .modify_subnet_attribute()
        .subnet_id(subnet_id)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(on).build())
        .send()
        .await
        .map_err(|e| api_error("ec2:ModifySubnetAttribute", e))?;
    Ok(())
}

pub(super) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    subnet_id: &str,
    subnet: &Subnet,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    let changes = |field: &str| changed.iter().any(|c| c == field);
    if changes("map_public_ip_on_launch") {
        set_map_public_ip(p, subnet_id, subnet.map_public_ip_on_launch).await?;
    }
    observe_after_change(p, ctx, &desired.address(), subnet_id).await
}

pub(super) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    id: &str,
) -> Result<(), ProviderError> {
    retry_dependency(p, ctx, address, "deleted", || async {
        p.ec2
            .delete_subnet()
            .subnet_id(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_error("ec2:DeleteSubnet", e))
    })
    .await?;
    wait_gone(p, ctx, address, id).await
}
