//! The CPU target-tracking scaling policy a group owns: put, delete and read back.

use std::collections::HashMap;

use aws_sdk_autoscaling::types::{
    MetricType, PredefinedMetricSpecification, TargetTrackingConfiguration,
};
use infra_core::model::CpuTargetTracking;
use infra_core::ProviderError;

use crate::support::{api_error, is_not_found};
use crate::AwsProvider;

/// The name infra gave its policy before policies were named after their group. AWS keys
/// policies per group, but moto 5.2.1 keys them by name alone, so two stacks' groups shared one.
const LEGACY_NAME: &str = "infra-cpu-target";

/// The one scaling policy infra owns on the group `group`.
fn policy_name(group: &str) -> String {
    format!("{group}-cpu-target")
}

/// Whether `policy` on `group` is infra's (its own name, or the legacy one).
fn is_ours(group: &str, policy: &str) -> bool {
    policy == policy_name(group) || policy == LEGACY_NAME
}

/// CPU targets of infra's policies by group name, from ONE paginated DescribePolicies without
/// a group name (it then covers every group), filtered to infra's policy names.
pub(super) async fn cpu_policies(p: &AwsProvider) -> Result<HashMap<String, f64>, ProviderError> {
    let policies = p
        .asg
        .describe_policies()
        .policy_types("TargetTrackingScaling")
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("autoscaling:DescribePolicies", e))?;
    Ok(policies
        .iter()
        .filter_map(|policy| {
            let config = policy.target_tracking_configuration()?;
            let metric = config
                .predefined_metric_specification()?
                .predefined_metric_type()?;
            (*metric == MetricType::AsgAverageCpuUtilization).then_some(())?;
            let group = policy.auto_scaling_group_name()?;
            is_ours(group, policy.policy_name()?).then_some(())?;
            Some((group.to_string(), config.target_value()?))
        })
        .collect())
}

/// The CPU policy of one group (for reads after a change).
pub(super) async fn read_policy(
    p: &AwsProvider,
    name: &str,
) -> Result<HashMap<String, f64>, ProviderError> {
    let policies = p
        .asg
        .describe_policies()
        .auto_scaling_group_name(name)
        .policy_names(policy_name(name))
        .policy_names(LEGACY_NAME)
        .send()
        .await
        .map_err(|e| api_error("autoscaling:DescribePolicies", e))?;
    Ok(policies
        .scaling_policies()
        .iter()
        .filter_map(|policy| {
            let config = policy.target_tracking_configuration()?;
            let metric = config
                .predefined_metric_specification()?
                .predefined_metric_type()?;
            (*metric == MetricType::AsgAverageCpuUtilization).then_some(())?;
            Some((name.to_string(), config.target_value()?))
        })
        .collect())
}

pub(super) async fn put_or_delete_policy(
    p: &AwsProvider,
    name: &str,
    tracking: Option<CpuTargetTracking>,
) -> Result<(), ProviderError> {
    match tracking {
        Some(tracking) => {
            let config = TargetTrackingConfiguration::builder()
                .predefined_metric_specification(
                    PredefinedMetricSpecification::builder()
                        .predefined_metric_type(MetricType::AsgAverageCpuUtilization)
                        .build(),
                )
                .target_value(tracking.target_percent)
                .build();
            p.asg
                .put_scaling_policy()
                .auto_scaling_group_name(name)
                .policy_name(policy_name(name))
                .policy_type("TargetTrackingScaling")
                .target_tracking_configuration(config)
                .send()
                .await
                .map_err(|e| api_error("autoscaling:PutScalingPolicy", e))?;
        }
        None => delete_policy(p, name, &policy_name(name)).await?,
    }
    Ok(())
}

/// Delete the legacy-named policy of a group that had one (read back as ours by discovery).
pub(super) async fn delete_legacy_policy(p: &AwsProvider, name: &str) -> Result<(), ProviderError> {
    delete_policy(p, name, LEGACY_NAME).await
}

async fn delete_policy(p: &AwsProvider, group: &str, policy: &str) -> Result<(), ProviderError> {
    let deleted = p
        .asg
        .delete_policy()
        .auto_scaling_group_name(group)
        .policy_name(policy)
        .send()
        .await
        .map_err(|e| api_error("autoscaling:DeletePolicy", e));
    match deleted {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err),
    }
}
