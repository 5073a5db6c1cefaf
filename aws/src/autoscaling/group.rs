//! The Auto Scaling Group: create, update (per field group), delete, read, adopt, and the
//! group in model form.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_autoscaling::types::{
    AutoScalingGroup as AwsGroup, Filter, LaunchTemplateSpecification, Tag,
};
use infra_core::model::{
    AutoScalingGroup, CpuTargetTracking, Declared, HealthCheckType, InstanceRefresh, Resource,
};
use infra_core::naming::physical_name;
use infra_core::provider::{Context, TAG_ID, TAG_STACK};
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, ProviderError, Ref, Stack};

use super::scaling_policy::{delete_legacy_policy, put_or_delete_policy, read_policy};
use super::{refresh, tag_pairs};
use crate::support::{
    api_error, create_once, is_not_found, owned_id, ownership_tags, retry_new_profile,
    retry_not_found, wait_for, Poll,
};
use crate::AwsProvider;

/// Instance-refresh preferences are not readable from AWS until a refresh runs, so infra keeps
/// them (compact JSON) in this tag on the group.
const TAG_REFRESH: &str = "infra:refresh";
/// Attribute: the launch-template version the group is pinned to (an explicit number).
pub(crate) const LAUNCH_TEMPLATE_VERSION: &str = "launch_template_version";

const MAX_NAME: usize = 255;

pub(super) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
) -> Result<Observed, ProviderError> {
    let group = as_group(desired)?;
    let name = physical_name(ctx.stack, desired, MAX_NAME);
    let spec = template_spec(ctx, group)?;
    let subnets = subnet_ids(ctx, group)?;
    let target_groups = target_group_arns(ctx, group)?;
    let mut tags: Vec<Tag> = ownership_tags(ctx.stack, &desired.id)
        .into_iter()
        .map(|(key, value)| group_tag(&name, key, value, true))
        .collect();
    tags.push(group_tag(
        &name,
        TAG_REFRESH,
        refresh_tag(&group.instance_refresh),
        false,
    ));
    tracing::debug!(group = %name, "creating auto scaling group");
    // moto silently replaces a group on a duplicate CreateAutoScalingGroup; AWS rejects it with
    // AlreadyExists. Either way the tag lookup before each attempt is what prevents a duplicate.
    // Auto Scaling refuses a profile IAM has not propagated yet ("Invalid IamInstanceProfile").
    let name = retry_new_profile(|| {
        create_once(
            p.options.max_attempts,
            || find_by_tags(p, ctx.stack, &desired.id),
            || async {
                p.asg
                    .create_auto_scaling_group()
                    .auto_scaling_group_name(&name)
                    .launch_template(spec.clone())
                    .vpc_zone_identifier(subnets.join(","))
                    .min_size(to_i32(group.min_size))
                    .max_size(to_i32(group.max_size))
                    .desired_capacity(to_i32(group.desired_capacity.unwrap_or(group.min_size)))
                    .set_target_group_arns(Some(target_groups.clone()))
                    .health_check_type(health_check_str(group.health_check_type))
                    .health_check_grace_period(to_i32(group.health_check_grace_period_seconds))
                    .set_tags(Some(tags.clone()))
                    .customize()
                    .config_override(
                        aws_sdk_autoscaling::config::Builder::default()
                            .retry_config(RetryConfig::disabled()),
                    )
                    .send()
                    .await
                    .map_err(|e| api_error("autoscaling:CreateAutoScalingGroup", e))?;
                Ok(name.clone())
            },
        )
    })
    .await?;
    // A new group has no policy to delete. (moto keys policies by name alone, so a DeletePolicy
    // of the legacy name here would remove another group's `infra-cpu-target`.)
    // The policy is then the one just put: no need to read it back.
    let mut policies = HashMap::new();
    if let Some(tracking) = group.cpu_target_tracking {
        put_or_delete_policy(p, &name, Some(tracking)).await?;
        policies.insert(name.clone(), tracking.target_percent);
    }
    let found = retry_not_found(Duration::from_secs(30), || describe_required(p, &name)).await?;
    Ok(observe(&desired.id, &found, &policies))
}

pub(super) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    prior: &Observed,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    let group = as_group(desired)?;
    let name = prior.physical_id.as_str();
    let is_changed = |field: &str| changed.iter().any(|c| c == field);
    let current = describe_required(p, name).await?;
    let spec = template_spec(ctx, group)?;
    let pinned_version = current.launch_template().and_then(|t| t.version());
    let template_moved = current
        .launch_template()
        .and_then(|t| t.launch_template_id())
        != spec.launch_template_id()
        || pinned_version != spec.version();

    let group_fields = [
        "subnets",
        "min_size",
        "max_size",
        "desired_capacity",
        "health_check_type",
        "health_check_grace_period_seconds",
    ];
    // A new template version goes out through an instance refresh whose desired configuration
    // carries it (so auto-rollback can return to the old one), not through UpdateAutoScalingGroup.
    let roll_out = is_changed("launch_template");
    if (template_moved && !roll_out) || group_fields.iter().any(|f| is_changed(f)) {
        update_settings(p, ctx, group, name, &spec, roll_out).await?;
    }

    if is_changed("target_groups") {
        update_target_groups(p, ctx, group, name, &current).await?;
    }

    if is_changed("cpu_target_tracking") {
        put_or_delete_policy(p, name, group.cpu_target_tracking).await?;
        // A group applied before policies were named after it: its old policy goes.
        delete_legacy_policy(p, name).await?;
    }

    if is_changed("instance_refresh") {
        update_refresh_tag(p, name, group).await?;
    }

    if roll_out {
        refresh::roll_out(p, ctx, &prior.address, name, &spec, &group.instance_refresh).await?;
    }

    let found = describe_required(p, name).await?;
    Ok(observe(&desired.id, &found, &read_policy(p, name).await?))
}

/// UpdateAutoScalingGroup: the sizes, subnets and health check, and the template unless it goes
/// out through an instance refresh.
async fn update_settings(
    p: &AwsProvider,
    ctx: &Context<'_>,
    group: &AutoScalingGroup,
    name: &str,
    spec: &LaunchTemplateSpecification,
    roll_out: bool,
) -> Result<(), ProviderError> {
    tracing::debug!(group = %name, "updating auto scaling group");
    p.asg
        .update_auto_scaling_group()
        .auto_scaling_group_name(name)
        .set_launch_template((!roll_out).then(|| spec.clone()))
        .vpc_zone_identifier(subnet_ids(ctx, group)?.join(","))
        .min_size(to_i32(group.min_size))
        .max_size(to_i32(group.max_size))
        .set_desired_capacity(group.desired_capacity.map(to_i32))
        .health_check_type(health_check_str(group.health_check_type))
        .health_check_grace_period(to_i32(group.health_check_grace_period_seconds))
        .send()
        .await
        .map_err(|e| api_error("autoscaling:UpdateAutoScalingGroup", e))?;
    Ok(())
}

/// Attach the declared target groups the group lacks, then detach the ones no longer declared.
async fn update_target_groups(
    p: &AwsProvider,
    ctx: &Context<'_>,
    group: &AutoScalingGroup,
    name: &str,
    current: &AwsGroup,
) -> Result<(), ProviderError> {
    let want: BTreeSet<String> = target_group_arns(ctx, group)?.into_iter().collect();
    let have: BTreeSet<String> = current.target_group_arns().iter().cloned().collect();
    let attach: Vec<String> = want.difference(&have).cloned().collect();
    let detach: Vec<String> = have.difference(&want).cloned().collect();
    if !attach.is_empty() {
        p.asg
            .attach_load_balancer_target_groups()
            .auto_scaling_group_name(name)
            .set_target_group_arns(Some(attach))
            .send()
            .await
            .map_err(|e| api_error("autoscaling:AttachLoadBalancerTargetGroups", e))?;
    }
    if !detach.is_empty() {
        let detached = p
            .asg
            .detach_load_balancer_target_groups()
            .auto_scaling_group_name(name)
            .set_target_group_arns(Some(detach.clone()))
            .send()
            .await
            .map_err(|e| api_error("autoscaling:DetachLoadBalancerTargetGroups", e));
        if let Err(err) = detached {
            // A retry after a lost answer is refused (moto: InvalidTarget) when the first
            // attempt detached them: done if none is attached any more.
            let now = describe_required(p, name).await?;
            if now.target_group_arns().iter().any(|a| detach.contains(a)) {
                return Err(err);
            }
        }
    }
    Ok(())
}

/// Rewrite the tag holding the instance-refresh preferences.
async fn update_refresh_tag(
    p: &AwsProvider,
    name: &str,
    group: &AutoScalingGroup,
) -> Result<(), ProviderError> {
    p.asg
        .create_or_update_tags()
        .tags(group_tag(
            name,
            TAG_REFRESH,
            refresh_tag(&group.instance_refresh),
            false,
        ))
        .send()
        .await
        .map_err(|e| api_error("autoscaling:CreateOrUpdateTags", e))?;
    Ok(())
}

pub(super) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
) -> Result<(), ProviderError> {
    let name = prior.physical_id.as_str();
    tracing::debug!(group = %name, "deleting auto scaling group");
    let deleted = p
        .asg
        .delete_auto_scaling_group()
        .auto_scaling_group_name(name)
        .force_delete(true)
        .send()
        .await
        .map_err(|e| api_error("autoscaling:DeleteAutoScalingGroup", e));
    match deleted {
        Ok(_) => {}
        Err(err) if is_not_found(&err) => return Ok(()),
        Err(err) => return Err(err),
    }
    wait_for(
        ctx.progress,
        &prior.address,
        "deleted",
        p.options.wait_timeout,
        || async {
            Ok(match describe(p, name).await? {
                None => Poll::Ready(()),
                Some(g) => Poll::Pending(g.status().unwrap_or("Delete in progress").to_string()),
            })
        },
    )
    .await
}

pub(super) async fn read(
    p: &AwsProvider,
    stack: &Stack,
    address: &Address,
    physical_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    let _ = stack;
    let Some(found) = describe(p, physical_id).await? else {
        return Ok(None);
    };
    Ok(Some(observe(
        &address.id,
        &found,
        &read_policy(p, physical_id).await?,
    )))
}

pub(super) async fn adopt(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<(), ProviderError> {
    let name = observed.physical_id.as_str();
    let tags = ownership_tags(ctx.stack, &observed.address.id)
        .into_iter()
        .map(|(key, value)| group_tag(name, key, value, true));
    p.asg
        .create_or_update_tags()
        .set_tags(Some(tags.collect()))
        .send()
        .await
        .map_err(|e| api_error("autoscaling:CreateOrUpdateTags", e))?;
    Ok(())
}

fn as_group(desired: &Declared) -> Result<&AutoScalingGroup, ProviderError> {
    match &desired.resource {
        Resource::AutoScalingGroup(g) => Ok(g),
        other => Err(ProviderError::Other(format!(
            "{} is a {}, not an autoscaling_group",
            desired.address(),
            other.kind()
        ))),
    }
}

/// The launch template pinned to the version number that holds its current data. Never
/// `$Latest`/`$Default`: a group on those does not see a new version as a change to roll out.
fn template_spec(
    ctx: &Context<'_>,
    group: &AutoScalingGroup,
) -> Result<LaunchTemplateSpecification, ProviderError> {
    let id = ctx.resolved.physical_id(&group.launch_template)?;
    let version = ctx
        .resolved
        .attribute(&group.launch_template.address(), attributes::LATEST_VERSION)?;
    Ok(LaunchTemplateSpecification::builder()
        .launch_template_id(id)
        .version(version)
        .build())
}

fn subnet_ids(ctx: &Context<'_>, group: &AutoScalingGroup) -> Result<Vec<String>, ProviderError> {
    group
        .subnets
        .iter()
        .map(|s| ctx.resolved.physical_id(s).map(str::to_string))
        .collect()
}

fn target_group_arns(
    ctx: &Context<'_>,
    group: &AutoScalingGroup,
) -> Result<Vec<String>, ProviderError> {
    group
        .target_groups
        .iter()
        .map(|t| ctx.resolved.physical_id(t).map(str::to_string))
        .collect()
}

fn group_tag(name: &str, key: &str, value: impl Into<String>, propagate: bool) -> Tag {
    Tag::builder()
        .resource_id(name)
        .resource_type("auto-scaling-group")
        .key(key)
        .value(value)
        .propagate_at_launch(propagate)
        .build()
}

fn refresh_tag(preferences: &InstanceRefresh) -> String {
    serde_json::to_string(preferences).expect("refresh preferences serialize")
}

fn health_check_str(kind: HealthCheckType) -> &'static str {
    match kind {
        HealthCheckType::Ec2 => "EC2",
        HealthCheckType::Elb => "ELB",
    }
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn to_u32(n: Option<i32>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

/// The group infra created under this stack and id, if any (the lookup of [`create_once`]).
async fn find_by_tags(
    p: &AwsProvider,
    stack: &str,
    id: &str,
) -> Result<Option<String>, ProviderError> {
    let groups: Vec<AwsGroup> = p
        .asg
        .describe_auto_scaling_groups()
        .filters(
            Filter::builder()
                .name(format!("tag:{TAG_STACK}"))
                .values(stack)
                .build(),
        )
        .filters(
            Filter::builder()
                .name(format!("tag:{TAG_ID}"))
                .values(id)
                .build(),
        )
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("autoscaling:DescribeAutoScalingGroups", e))?;
    Ok(groups
        .iter()
        .find(|g| owned_id(stack, tag_pairs(g)).as_deref() == Some(id))
        .and_then(|g| g.auto_scaling_group_name().map(str::to_string)))
}

async fn describe(p: &AwsProvider, name: &str) -> Result<Option<AwsGroup>, ProviderError> {
    let out = p
        .asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(|e| api_error("autoscaling:DescribeAutoScalingGroups", e))?;
    Ok(out.auto_scaling_groups().first().cloned())
}

async fn describe_required(p: &AwsProvider, name: &str) -> Result<AwsGroup, ProviderError> {
    describe(p, name).await?.ok_or_else(|| ProviderError::Api {
        operation: "autoscaling:DescribeAutoScalingGroups".into(),
        code: "AutoScalingGroup.NotFound".into(),
        message: format!("no auto scaling group named {name}"),
    })
}

/// The group in model form. References hold physical ids (relink maps owned ones).
pub(super) fn observe(id: &str, group: &AwsGroup, policies: &HashMap<String, f64>) -> Observed {
    let name = group.auto_scaling_group_name().unwrap_or_default();
    let template = group.launch_template();
    let template_id = template
        .and_then(|t| t.launch_template_id().or(t.launch_template_name()))
        .unwrap_or_default();
    let version = template.and_then(|t| t.version()).unwrap_or_default();
    let mut subnets: Vec<Ref<_>> = group
        .vpc_zone_identifier()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Ref::from_id)
        .collect();
    subnets.sort();
    let mut target_groups: Vec<Ref<_>> =
        group.target_group_arns().iter().map(Ref::from_id).collect();
    target_groups.sort();
    let instance_refresh = tag_pairs(group)
        .find(|(key, _)| *key == TAG_REFRESH)
        .and_then(|(_, value)| serde_json::from_str(value).ok())
        .unwrap_or_default();
    let resource = AutoScalingGroup {
        launch_template: Ref::from_id(template_id),
        subnets,
        min_size: to_u32(group.min_size()),
        max_size: to_u32(group.max_size()),
        desired_capacity: group.desired_capacity().map(|d| to_u32(Some(d))),
        target_groups,
        health_check_type: match group.health_check_type() {
            Some("ELB") => HealthCheckType::Elb,
            _ => HealthCheckType::Ec2,
        },
        health_check_grace_period_seconds: to_u32(group.health_check_grace_period()),
        cpu_target_tracking: policies
            .get(name)
            .map(|&target_percent| CpuTargetTracking { target_percent }),
        instance_refresh,
    };
    let mut observed = Observed::new(
        Address::new(Kind::AutoScalingGroup, id),
        name,
        resource.into(),
    )
    .with_attribute(LAUNCH_TEMPLATE_VERSION, version);
    if let Some(arn) = group.auto_scaling_group_arn() {
        observed = observed.with_attribute(attributes::ARN, arn);
    }
    observed
}
