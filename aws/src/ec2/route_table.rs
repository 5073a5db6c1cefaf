//! Route tables: describe, observe, create, routes and subnet associations reconciled as whole
//! sets, and delete.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{self as ec2, Filter, ResourceType};
use infra_core::model::{Declared, Route, RouteTable};
use infra_core::provider::Context;
use infra_core::{Address, Kind, Observed, ProviderError, Ref};

use super::{
    describe, observe_after_change, read_by_id, retry_dependency, tag_spec, wait_gone, Scope,
};
use crate::support::{api_error, error_code, is_not_found};
use crate::AwsProvider;

pub(super) async fn describe_route_tables(
    p: &AwsProvider,
    scope: Scope<'_>,
) -> Result<Vec<ec2::RouteTable>, ProviderError> {
    describe!(
        p,
        scope,
        describe_route_tables,
        route_table_ids,
        "ec2:DescribeRouteTables"
    )
}

/// Destination of a route: its IPv4 CIDR, IPv6 CIDR or prefix list.
fn route_destination(route: &ec2::Route) -> Option<&str> {
    route
        .destination_cidr_block()
        .or(route.destination_ipv6_cidr_block())
        .or(route.destination_prefix_list_id())
}

/// Target of a route. Only internet gateways can be declared; any other target is reported by
/// its id so it shows up as a diff (and is removed by the next apply).
fn route_target(route: &ec2::Route) -> &str {
    route
        .gateway_id()
        .or(route.nat_gateway_id())
        .or(route.transit_gateway_id())
        .or(route.vpc_peering_connection_id())
        .or(route.egress_only_internet_gateway_id())
        .or(route.network_interface_id())
        .or(route.instance_id())
        .or(route.local_gateway_id())
        .or(route.carrier_gateway_id())
        .unwrap_or_default()
}

/// Routes of a table as (destination, target), without the VPC's `local` route.
fn table_routes(table: &ec2::RouteTable) -> BTreeMap<String, String> {
    table
        .routes()
        .iter()
        .filter(|r| {
            r.gateway_id() != Some("local")
                && r.origin() != Some(&ec2::RouteOrigin::CreateRouteTable)
        })
        .filter_map(|r| route_destination(r).map(|d| (d.to_string(), route_target(r).to_string())))
        .collect()
}

/// Explicit subnet associations of a table: subnet id -> association id. The main-table
/// association is not a subnet association and is never touched.
fn table_associations(table: &ec2::RouteTable) -> BTreeMap<String, String> {
    table
        .associations()
        .iter()
        .filter(|a| a.main() != Some(true))
        .filter(|a| {
            !matches!(
                a.association_state().and_then(|s| s.state()),
                Some(
                    ec2::RouteTableAssociationStateCode::Disassociated
                        | ec2::RouteTableAssociationStateCode::Disassociating
                )
            )
        })
        .filter_map(|a| {
            Some((
                a.subnet_id()?.to_string(),
                a.route_table_association_id()?.to_string(),
            ))
        })
        .collect()
}

pub(super) fn observe_route_table(id: String, table: &ec2::RouteTable) -> Observed {
    let model = RouteTable {
        vpc: Ref::from_id(table.vpc_id().unwrap_or_default()),
        routes: table_routes(table)
            .into_iter()
            .map(|(destination, target)| Route {
                destination,
                internet_gateway: Ref::from_id(target),
            })
            .collect(),
        subnets: table_associations(table)
            .into_keys()
            .map(Ref::from_id)
            .collect(),
    };
    Observed::new(
        Address::new(Kind::RouteTable, id),
        table.route_table_id().unwrap_or_default(),
        model.into(),
    )
}

/// One route table by physical id, with the logical id `id`.
pub(super) async fn read(
    p: &AwsProvider,
    id: String,
    table_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    Ok(describe_route_tables(p, Scope::Id(table_id))
        .await?
        .first()
        .map(|t| observe_route_table(id, t)))
}

pub(super) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    table: &RouteTable,
) -> Result<Observed, ProviderError> {
    let id = desired.id.as_str();
    let vpc_id = ctx.resolved.physical_id(&table.vpc)?;
    let table_id = p
        .ec2
        .create_route_table()
        .vpc_id(vpc_id)
        .client_token(crate::support::client_token(
            ctx.stack,
            id,
            &desired.resource,
        ))
        .tag_specifications(tag_spec(ResourceType::RouteTable, ctx.stack, id))
        .send()
        .await
        .map_err(|e| api_error("ec2:CreateRouteTable", e))?
        .route_table()
        .and_then(|t| t.route_table_id().map(str::to_string))
        .ok_or_else(|| {
            ProviderError::Other("ec2:CreateRouteTable returned no route table id".into())
        })?;
    reconcile_route_table(p, ctx, &table_id, table).await?;
    observe_after_change(p, ctx, &desired.address(), &table_id).await
}

async fn read_route_table(
    p: &AwsProvider,
    table_id: &str,
) -> Result<ec2::RouteTable, ProviderError> {
    read_by_id(Kind::RouteTable, table_id, || {
        describe_route_tables(p, Scope::Id(table_id))
    })
    .await
}

/// Set the destination field a route request needs: IPv4 CIDR, IPv6 CIDR or prefix list.
macro_rules! with_destination {
    ($request:expr, $destination:expr) => {{
        let destination: &str = $destination;
        if destination.starts_with("pl-") {
            $request.destination_prefix_list_id(destination)
        } else if destination.contains(':') {
            $request.destination_ipv6_cidr_block(destination)
        } else {
            $request.destination_cidr_block(destination)
        }
    }};
}

/// Make the table's routes and subnet associations exactly the declared ones.
async fn reconcile_route_table(
    p: &AwsProvider,
    ctx: &Context<'_>,
    table_id: &str,
    desired: &RouteTable,
) -> Result<(), ProviderError> {
    let current = read_route_table(p, table_id).await?;
    reconcile_routes(p, ctx, table_id, &current, desired).await?;
    reconcile_associations(p, ctx, table_id, &current, desired).await
}

/// Make the routes of `current` (the table as read) exactly the declared ones.
async fn reconcile_routes(
    p: &AwsProvider,
    ctx: &Context<'_>,
    table_id: &str,
    current: &ec2::RouteTable,
    desired: &RouteTable,
) -> Result<(), ProviderError> {
    let actual_routes = table_routes(current);
    let mut wanted_routes = BTreeMap::new();
    for route in &desired.routes {
        wanted_routes.insert(
            route.destination.clone(),
            ctx.resolved
                .physical_id(&route.internet_gateway)?
                .to_string(),
        );
    }
    for (destination, gateway) in &wanted_routes {
        match actual_routes.get(destination) {
            Some(target) if target == gateway => {}
            Some(_) => {
                let request = p
                    .ec2
                    .replace_route()
                    .route_table_id(table_id)
                    .gateway_id(gateway);
                with_destination!(request, destination)
                    .send()
                    .await
                    .map_err(|e| api_error("ec2:ReplaceRoute", e))?;
            }
            None => {
                let request = p
                    .ec2
                    .create_route()
                    .route_table_id(table_id)
                    .gateway_id(gateway);
                let created = with_destination!(request, destination)
                    .send()
                    .await
                    .map_err(|e| api_error("ec2:CreateRoute", e));
                match created {
                    // An attempt whose answer was lost made it; the SDK's retry is told so.
                    Err(e) if error_code(&e) == Some("RouteAlreadyExists") => {
                        let now = table_routes(&read_route_table(p, table_id).await?);
                        if now.get(destination) != Some(gateway) {
                            return Err(e);
                        }
                    }
                    other => drop(other?),
                }
            }
        }
    }
    for destination in actual_routes
        .keys()
        .filter(|d| !wanted_routes.contains_key(*d))
    {
        let request = p.ec2.delete_route().route_table_id(table_id);
        // NotFound: gone already, or an attempt whose answer was lost deleted it.
        let deleted = with_destination!(request, destination)
            .send()
            .await
            .map_err(|e| api_error("ec2:DeleteRoute", e));
        match deleted {
            Err(e) if is_not_found(&e) => {}
            other => drop(other?),
        }
    }
    Ok(())
}

/// Make the subnet associations of `current` (the table as read) exactly the declared ones.
async fn reconcile_associations(
    p: &AwsProvider,
    ctx: &Context<'_>,
    table_id: &str,
    current: &ec2::RouteTable,
    desired: &RouteTable,
) -> Result<(), ProviderError> {
    let actual_subnets = table_associations(current);
    let mut wanted_subnets = Vec::new();
    for subnet in &desired.subnets {
        wanted_subnets.push(ctx.resolved.physical_id(subnet)?.to_string());
    }
    for subnet_id in wanted_subnets
        .iter()
        .filter(|s| !actual_subnets.contains_key(*s))
    {
        associate_subnet(p, table_id, subnet_id).await?;
    }
    for (subnet_id, association_id) in &actual_subnets {
        if !wanted_subnets.contains(subnet_id) {
            let done = p
                .ec2
                .disassociate_route_table()
                .association_id(association_id)
                .send()
                .await
                .map_err(|e| api_error("ec2:DisassociateRouteTable", e));
            match done {
                Err(e) if is_not_found(&e) => {}
                other => drop(other?),
            }
        }
    }
    Ok(())
}

/// Associate a subnet; if it is explicitly associated with another table, move it here.
async fn associate_subnet(
    p: &AwsProvider,
    table_id: &str,
    subnet_id: &str,
) -> Result<(), ProviderError> {
    let result = p
        .ec2
        .associate_route_table()
        .route_table_id(table_id)
        .subnet_id(subnet_id)
        .send()
        .await
        .map_err(|e| api_error("ec2:AssociateRouteTable", e));
    match result {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("Resource.AlreadyAssociated") => {
            let filter = Filter::builder()
                .name("association.subnet-id")
                .values(subnet_id)
                .build();
            let tables: Vec<ec2::RouteTable> = p
                .ec2
                .describe_route_tables()
                .filters(filter)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| api_error("ec2:DescribeRouteTables", e))?;
            let Some(association_id) = tables
                .iter()
                .find_map(|t| table_associations(t).remove(subnet_id))
            else {
                return Err(err);
            };
            tracing::debug!(
                subnet_id,
                table_id,
                "moving the subnet's association from another route table"
            );
            p.ec2
                .replace_route_table_association()
                .association_id(association_id)
                .route_table_id(table_id)
                .send()
                .await
                .map_err(|e| api_error("ec2:ReplaceRouteTableAssociation", e))?;
            Ok(())
        }
        Err(err) => Err(err),
    }
}

pub(super) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    table_id: &str,
    table: &RouteTable,
) -> Result<Observed, ProviderError> {
    reconcile_route_table(p, ctx, table_id, table).await?;
    observe_after_change(p, ctx, &desired.address(), table_id).await
}

pub(super) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    id: &str,
) -> Result<(), ProviderError> {
    let Some(table) = describe_route_tables(p, Scope::Id(id))
        .await?
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    for association_id in table_associations(&table).values() {
        match p
            .ec2
            .disassociate_route_table()
            .association_id(association_id)
            .send()
            .await
            .map_err(|e| api_error("ec2:DisassociateRouteTable", e))
        {
            Err(err) if !is_not_found(&err) => return Err(err),
            _ => {}
        }
    }
    retry_dependency(p, ctx, address, "deleted", || async {
        p.ec2
            .delete_route_table()
            .route_table_id(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_error("ec2:DeleteRouteTable", e))
    })
    .await?;
    wait_gone(p, ctx, address, id).await
}
