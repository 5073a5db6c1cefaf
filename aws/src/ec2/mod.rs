//! EC2: VPC, subnets, internet gateway, route tables, security groups and launch templates.
//!
//! Discovery is one tag-filtered, paginated describe per type, all issued at once, plus the two
//! DescribeVpcAttribute calls per VPC (DNS settings are not in DescribeVpcs). Routes,
//! route-table associations and security-group rules have no tags: they are read with their
//! parent and reconciled as whole sets. A security group's create or update reads its rules once,
//! before changing them, and reports the declared rules after, as discovery will read them.

mod internet_gateway;
mod launch_template;
mod launch_template_data;
mod route_table;
mod security_group;
mod subnet;
mod vpc;

use std::future::Future;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use futures::future::try_join_all;
use infra_core::model::{Declared, Resource};
use infra_core::provider::{Context, TAG_ID, TAG_STACK};
use infra_core::{Address, Kind, Observed, ProviderError, Stack};

use crate::relink::relink;
use crate::support::{
    api_error, error_code, is_not_found, owned_id, retry_not_found, wait_for, Poll, VISIBLE_WITHIN,
};
use crate::AwsProvider;

/// Attempts for creates without a client token (each preceded by a lookup by tags).
const CREATE_ATTEMPTS: u32 = 4;

// ---------------------------------------------------------------------------------------------
// Shared helpers (also used by the launch-template module)
// ---------------------------------------------------------------------------------------------

/// `tag:infra:stack = stack`.
fn stack_filter(stack: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{TAG_STACK}"))
        .values(stack)
        .build()
}

/// `tag:infra:id = id`.
fn id_filter(id: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{TAG_ID}"))
        .values(id)
        .build()
}

/// EC2 tags as (key, value) pairs.
fn tag_pairs(tags: &[Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
}

/// The ownership tags as EC2 tags.
fn ownership(stack: &str, id: &str) -> Vec<Tag> {
    crate::support::ownership_tags(stack, id)
        .into_iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect()
}

/// A TagSpecification carrying the ownership tags, for a create call.
fn tag_spec(resource_type: ResourceType, stack: &str, id: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource_type)
        .set_tags(Some(ownership(stack, id)))
        .build()
}

/// SDK retries off, for creates guarded by [`create_once`](crate::support::create_once).
fn no_retries() -> aws_sdk_ec2::config::Builder {
    aws_sdk_ec2::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled())
}

/// Map physical ids in `observed` back to logical ids using what the apply already knows, so a
/// create or update returns what discovery would.
fn relinked(ctx: &Context<'_>, observed: Observed) -> Observed {
    let mut all: Vec<Observed> = ctx.resolved.iter().cloned().collect();
    all.retain(|o| o.address != observed.address);
    all.push(observed);
    relink(all).pop().expect("relink keeps every resource")
}

/// Tag an existing EC2 resource with the ownership tags.
async fn tag_resource(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<(), ProviderError> {
    p.ec2
        .create_tags()
        .resources(&observed.physical_id)
        .set_tags(Some(ownership(ctx.stack, &observed.address.id)))
        .send()
        .await
        .map_err(|e| api_error("ec2:CreateTags", e))?;
    Ok(())
}

/// Which resources a describe call asks for.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// Everything tagged with this stack.
    Stack(&'a str),
    /// Everything tagged with this stack and logical id (the lookup before a create).
    Owned(&'a str, &'a str),
    /// One resource by physical id; NotFound gives an empty list.
    Id(&'a str),
}

impl Scope<'_> {
    fn filters(self) -> Option<Vec<Filter>> {
        match self {
            Scope::Stack(stack) => Some(vec![stack_filter(stack)]),
            Scope::Owned(stack, id) => Some(vec![stack_filter(stack), id_filter(id)]),
            Scope::Id(_) => None,
        }
    }

    fn id(self) -> Option<String> {
        match self {
            Scope::Id(id) => Some(id.to_string()),
            Scope::Stack(_) | Scope::Owned(..) => None,
        }
    }
}

fn not_found_is_empty<T>(
    scope: Scope<'_>,
    result: Result<Vec<T>, ProviderError>,
) -> Result<Vec<T>, ProviderError> {
    match result {
        Err(err) if matches!(scope, Scope::Id(_)) && is_not_found(&err) => Ok(Vec::new()),
        other => other,
    }
}

/// One paginated describe call, by tag filters or by id.
macro_rules! describe {
    ($p:expr, $scope:expr, $operation:ident, $set_ids:ident, $name:literal) => {{
        let scope = $scope;
        let mut request = $p.ec2.$operation().set_filters(scope.filters());
        if let Some(id) = scope.id() {
            request = request.$set_ids(id);
        }
        let result = request
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api_error($name, e));
        super::not_found_is_empty(scope, result)
    }};
}
use describe;

/// One resource by id; a new one may not be visible at once (eventual consistency).
async fn read_by_id<T, F, Fut>(kind: Kind, id: &str, describe: F) -> Result<T, ProviderError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Vec<T>, ProviderError>>,
{
    retry_not_found(VISIBLE_WITHIN, || async {
        describe()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| gone(kind, id))
    })
    .await
}

/// A NotFound error for a resource that vanished between two calls.
fn gone(kind: Kind, physical_id: &str) -> ProviderError {
    ProviderError::Api {
        operation: format!("ec2:Describe ({kind})"),
        code: "InvalidID.NotFound".into(),
        message: format!("{physical_id} is not visible"),
    }
}

fn wrong_kind(desired: &Declared) -> ProviderError {
    ProviderError::Other(format!(
        "{}: the network module serves ec2_vpc, ec2_subnet, ec2_internet_gateway, ec2_route_table and ec2_security_group, not {}",
        desired.address(),
        desired.resource.kind()
    ))
}

// ---------------------------------------------------------------------------------------------
// Discovery: AWS descriptions into the model (physical ids in references)
// ---------------------------------------------------------------------------------------------

/// The network types and the launch templates, discovered concurrently.
pub(crate) async fn discover(
    p: &AwsProvider,
    stack: &Stack,
) -> Result<Vec<Observed>, ProviderError> {
    let (network, templates) = futures::try_join!(
        discover_network(p, stack),
        launch_template::discover(p, stack),
    )?;
    Ok([network, templates].concat())
}

async fn discover_network(p: &AwsProvider, stack: &Stack) -> Result<Vec<Observed>, ProviderError> {
    let scope = Scope::Stack(&stack.name);
    let (vpcs, subnets, gateways, tables, groups) = futures::try_join!(
        vpc::describe_vpcs(p, scope),
        subnet::describe_subnets(p, scope),
        internet_gateway::describe_gateways(p, scope),
        route_table::describe_route_tables(p, scope),
        security_group::describe_groups(p, scope),
    )?;
    let owned = |tags: &[Tag]| owned_id(&stack.name, tag_pairs(tags));

    let mut out = try_join_all(
        vpcs.iter()
            .filter_map(|v| owned(v.tags()).map(|id| vpc::observe_vpc(p, id, v))),
    )
    .await?;
    out.extend(
        subnets
            .iter()
            .filter_map(|s| owned(s.tags()).map(|id| subnet::observe_subnet(id, s))),
    );
    out.extend(
        gateways
            .iter()
            .filter_map(|g| owned(g.tags()).map(|id| internet_gateway::observe_gateway(id, g))),
    );
    out.extend(
        tables
            .iter()
            .filter_map(|t| owned(t.tags()).map(|id| route_table::observe_route_table(id, t))),
    );
    out.extend(
        groups
            .iter()
            .filter_map(|g| owned(g.tags()).map(|id| security_group::observe_group(id, g))),
    );
    tracing::debug!(stack = %stack.name, found = out.len(), "discovered network resources");
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------------------------

pub(crate) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
) -> Result<Observed, ProviderError> {
    if let Resource::LaunchTemplate(_) = &desired.resource {
        return launch_template::create(p, ctx, desired).await;
    }
    tracing::debug!(address = %desired.address(), "creating");
    match &desired.resource {
        Resource::Vpc(model) => vpc::create(p, ctx, desired, model).await,
        Resource::Subnet(model) => subnet::create(p, ctx, desired, model).await,
        Resource::InternetGateway(model) => internet_gateway::create(p, ctx, desired, model).await,
        Resource::RouteTable(model) => route_table::create(p, ctx, desired, model).await,
        Resource::SecurityGroup(model) => security_group::create(p, ctx, desired, model).await,
        _ => Err(wrong_kind(desired)),
    }
}

/// Read a resource back after a change, as discovery reports it.
async fn observe_after_change(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    physical_id: &str,
) -> Result<Observed, ProviderError> {
    let observed = retry_not_found(VISIBLE_WITHIN, || async {
        observe_one(p, address, physical_id)
            .await?
            .ok_or_else(|| gone(address.kind, physical_id))
    })
    .await?;
    Ok(relinked(ctx, observed))
}

/// One resource by physical id, with `address`'s logical id (tags are not consulted).
async fn observe_one(
    p: &AwsProvider,
    address: &Address,
    physical_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    let id = address.id.clone();
    match address.kind {
        Kind::Vpc => vpc::read(p, id, physical_id).await,
        Kind::Subnet => subnet::read(p, id, physical_id).await,
        Kind::InternetGateway => internet_gateway::read(p, id, physical_id).await,
        Kind::RouteTable => route_table::read(p, id, physical_id).await,
        Kind::SecurityGroup => security_group::read(p, id, physical_id).await,
        other => Err(ProviderError::Other(format!(
            "{address}: the network module cannot read {other} resources"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Update
// ---------------------------------------------------------------------------------------------

pub(crate) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    prior: &Observed,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    if let Resource::LaunchTemplate(_) = &desired.resource {
        return launch_template::update(p, ctx, desired, prior, changed).await;
    }
    let physical_id = prior.physical_id.as_str();
    tracing::debug!(address = %desired.address(), ?changed, "updating");
    match &desired.resource {
        Resource::Vpc(model) => vpc::update(p, ctx, desired, physical_id, model, changed).await,
        Resource::Subnet(model) => {
            subnet::update(p, ctx, desired, physical_id, model, changed).await
        }
        Resource::InternetGateway(model) => {
            internet_gateway::update(p, ctx, desired, physical_id, model).await
        }
        Resource::RouteTable(model) => {
            route_table::update(p, ctx, desired, physical_id, model).await
        }
        Resource::SecurityGroup(model) => {
            security_group::update(p, ctx, desired, physical_id, model).await
        }
        _ => Err(wrong_kind(desired)),
    }
}

// ---------------------------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------------------------

/// Run `call` until it succeeds, retrying while AWS answers DependencyViolation (ENIs of a
/// deleted load balancer or instances linger for minutes). NotFound counts as done.
async fn retry_dependency<F, Fut>(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    what: &str,
    mut call: F,
) -> Result<(), ProviderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), ProviderError>>,
{
    wait_for(ctx.progress, address, what, p.options.wait_timeout, || {
        let attempt = call();
        async move {
            match attempt.await {
                Ok(()) => Ok(Poll::Ready(())),
                Err(err) if is_not_found(&err) => Ok(Poll::Ready(())),
                Err(err) if error_code(&err) == Some("DependencyViolation") => {
                    Ok(Poll::Pending(format!("still in use ({err})")))
                }
                Err(err) => Err(err),
            }
        }
    })
    .await
}

pub(crate) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
) -> Result<(), ProviderError> {
    if prior.address.kind == Kind::LaunchTemplate {
        return launch_template::delete(p, ctx, prior).await;
    }
    let id = prior.physical_id.as_str();
    let address = &prior.address;
    tracing::debug!(%address, id, "deleting");
    match address.kind {
        Kind::Vpc => vpc::delete(p, ctx, address, id).await,
        Kind::Subnet => subnet::delete(p, ctx, address, id).await,
        Kind::InternetGateway => internet_gateway::delete(p, ctx, address, id).await,
        Kind::RouteTable => route_table::delete(p, ctx, address, id).await,
        Kind::SecurityGroup => security_group::delete(p, ctx, address, id).await,
        other => Err(ProviderError::Other(format!(
            "{address}: the network module cannot delete {other} resources"
        ))),
    }
}

/// Wait until a describe by id no longer finds the resource.
async fn wait_gone(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    physical_id: &str,
) -> Result<(), ProviderError> {
    wait_for(
        ctx.progress,
        address,
        "deleted",
        p.options.wait_timeout,
        || async {
            Ok(match observe_one(p, address, physical_id).await? {
                Some(_) => Poll::Pending("deleting".to_string()),
                None => Poll::Ready(()),
            })
        },
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------------------------

pub(crate) async fn read(
    p: &AwsProvider,
    stack: &Stack,
    address: &Address,
    physical_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    let _ = stack;
    match address.kind {
        Kind::LaunchTemplate => launch_template::read(p, address, physical_id).await,
        _ => observe_one(p, address, physical_id).await,
    }
}

/// Every EC2 type is adopted the same way: tagged with the ownership tags.
pub(crate) async fn adopt(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<(), ProviderError> {
    tag_resource(p, ctx, observed).await
}
