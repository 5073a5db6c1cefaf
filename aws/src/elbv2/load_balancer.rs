//! Application Load Balancers: read from AWS with their attributes, created, updated (subnets,
//! security groups, attributes), read by ARN, deleted, and waited for until active.

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2 as elbv2;
use elbv2::types::{
    LoadBalancerAttribute, LoadBalancerSchemeEnum, LoadBalancerStateEnum, LoadBalancerTypeEnum,
};
use infra_core::model::{AccessLogs, Declared, LoadBalancer, Resource, Scheme};
use infra_core::provider::Context;
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, ProviderError, Ref};

use super::{
    gone, has, in_place_only, no_retries, physical_name, sdk_tags, unmodeled, wait_gone,
    Attributes, ElbError,
};
use crate::support::{
    api_error, create_once, is_not_found, retry_not_found, retry_while, wait_for, Poll,
    VISIBLE_WITHIN,
};
use crate::AwsProvider;

const DROP_INVALID_HEADERS: &str = "routing.http.drop_invalid_header_fields.enabled";
const DELETION_PROTECTION: &str = "deletion_protection.enabled";
const IDLE_TIMEOUT: &str = "idle_timeout.timeout_seconds";
const ACCESS_LOGS: &str = "access_logs.s3.enabled";
const ACCESS_LOGS_BUCKET: &str = "access_logs.s3.bucket";
const ACCESS_LOGS_PREFIX: &str = "access_logs.s3.prefix";

pub(super) async fn load_balancer_attributes(
    p: &AwsProvider,
    arn: &str,
) -> Result<Attributes, ProviderError> {
    let out = p
        .elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeLoadBalancerAttributes", e))?;
    Ok(lb_attribute_map(out.attributes()))
}

fn lb_attribute_map(attrs: &[LoadBalancerAttribute]) -> Attributes {
    attrs
        .iter()
        .filter_map(|a| Some((a.key()?.to_string(), a.value()?.to_string())))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// AWS -> model
// ---------------------------------------------------------------------------------------------

pub(super) fn observe_load_balancer(
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
        // The bucket is its name here; discovery's relink makes it the logical id.
        access_logs: flag(ACCESS_LOGS, false).then(|| AccessLogs {
            bucket: Ref::from_id(attrs.get(ACCESS_LOGS_BUCKET).cloned().unwrap_or_default()),
            prefix: Some(attrs.get(ACCESS_LOGS_PREFIX).cloned().unwrap_or_default()),
        }),
    };
    Ok(Observed::new(address, arn, resource.into())
        .with_attribute(attributes::ARN, arn)
        .with_attribute(attributes::DNS_NAME, lb.dns_name().unwrap_or_default())
        .with_attribute(
            attributes::CANONICAL_HOSTED_ZONE_ID,
            lb.canonical_hosted_zone_id().unwrap_or_default(),
        )
        .with_attribute(
            attributes::STATUS,
            lb.state()
                .and_then(|s| s.code())
                .map(|c| c.as_str())
                .unwrap_or_default(),
        ))
}

// ---------------------------------------------------------------------------------------------
// model -> AWS
// ---------------------------------------------------------------------------------------------

/// The modelled attributes; `log_bucket` is the access-log bucket's name.
fn lb_attributes(lb: &LoadBalancer, log_bucket: Option<&str>) -> Vec<LoadBalancerAttribute> {
    let mut attrs = vec![
        (
            DROP_INVALID_HEADERS,
            lb.drop_invalid_header_fields.to_string(),
        ),
        (DELETION_PROTECTION, lb.deletion_protection.to_string()),
        (IDLE_TIMEOUT, lb.idle_timeout_seconds.to_string()),
    ];
    match (&lb.access_logs, log_bucket) {
        (Some(logs), Some(bucket)) => attrs.extend([
            (ACCESS_LOGS, "true".to_string()),
            (ACCESS_LOGS_BUCKET, bucket.to_string()),
            (ACCESS_LOGS_PREFIX, logs.prefix.clone().unwrap_or_default()),
        ]),
        _ => attrs.push((ACCESS_LOGS, "false".to_string())),
    }
    attrs
        .into_iter()
        .map(|(k, v)| LoadBalancerAttribute::builder().key(k).value(v).build())
        .collect()
}

/// The access-log bucket's name, resolved from the stack's handle.
fn log_bucket<'a>(
    ctx: &'a Context<'_>,
    lb: &LoadBalancer,
) -> Result<Option<&'a str>, ProviderError> {
    lb.access_logs
        .as_ref()
        .map(|l| ctx.resolved.physical_id(&l.bucket))
        .transpose()
}

/// ELB writes a test object when access logs are turned on and answers this until the bucket's
/// policy lets it (on AWS, for a while after the policy was written).
fn is_log_access_denied(err: &ProviderError) -> bool {
    match err {
        ProviderError::Api { code, message, .. } => {
            code == "InvalidConfigurationRequest" && message.contains("Access Denied for bucket")
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Create / update / delete
// ---------------------------------------------------------------------------------------------

pub(super) async fn create_load_balancer(
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
    let bucket = log_bucket(ctx, lb)?;
    let attrs = retry_not_found(VISIBLE_WITHIN, || {
        modify_lb_attributes(p, &address, arn, lb, bucket)
    })
    .await?;
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
/// Access logs refused by the bucket are retried for `log_policy_propagation` (the bucket's
/// policy was written just before, and takes a while to reach ELB), then fail saying so.
async fn modify_lb_attributes(
    p: &AwsProvider,
    address: &Address,
    arn: &str,
    lb: &LoadBalancer,
    log_bucket: Option<&str>,
) -> Result<Attributes, ProviderError> {
    let within = p.options.log_policy_propagation;
    let backoff = (Duration::from_secs(2), Duration::from_secs(15));
    let answer = retry_while(
        within,
        backoff,
        is_log_access_denied,
        "the access-log bucket's policy has not reached ELB",
        || async {
            p.elb
                .modify_load_balancer_attributes()
                .load_balancer_arn(arn)
                .set_attributes(Some(lb_attributes(lb, log_bucket)))
                .send()
                .await
                .map_err(|e| api_error("elasticloadbalancing:ModifyLoadBalancerAttributes", e))
        },
    )
    .await;
    match answer {
        Ok(out) => Ok(lb_attribute_map(out.attributes())),
        Err(err) if is_log_access_denied(&err) => Err(ProviderError::Other(format!(
            "{address}: ELB still cannot write access logs into bucket `{}` after {} s: {err}; \
             the bucket's policy (written by infra on a bucket something logs into) must let \
             the region's log delivery write under the prefix; check it with \
             `aws s3api get-bucket-policy`",
            log_bucket.unwrap_or_default(),
            within.as_secs()
        ))),
        Err(err) => Err(err),
    }
}

/// Changes subnets, security groups and attributes, in that order; any other change forces a
/// replacement.
pub(super) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    arn: &str,
    lb: &LoadBalancer,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    in_place_only(
        address,
        changed,
        &[
            "subnets",
            "security_groups",
            "drop_invalid_header_fields",
            "deletion_protection",
            "idle_timeout_seconds",
            "access_logs",
        ],
    )?;
    if has(changed, "subnets") {
        set_subnets(p, ctx, arn, lb).await?;
    }
    if has(changed, "security_groups") {
        set_security_groups(p, ctx, arn, lb).await?;
    }
    if has(changed, "drop_invalid_header_fields")
        || has(changed, "deletion_protection")
        || has(changed, "idle_timeout_seconds")
        || has(changed, "access_logs")
    {
        // The attributes come with the answer; the rest (subnets, state) is read.
        let bucket = log_bucket(ctx, lb)?;
        let (attrs, described) = futures::try_join!(
            modify_lb_attributes(p, address, arn, lb, bucket),
            retry_not_found(VISIBLE_WITHIN, || describe_load_balancer(p, address, arn))
        )?;
        return observe_load_balancer(&address.id, &described, &attrs);
    }
    retry_not_found(VISIBLE_WITHIN, || read_load_balancer(p, address, arn)).await
}

async fn set_subnets(
    p: &AwsProvider,
    ctx: &Context<'_>,
    arn: &str,
    lb: &LoadBalancer,
) -> Result<(), ProviderError> {
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
    Ok(())
}

async fn set_security_groups(
    p: &AwsProvider,
    ctx: &Context<'_>,
    arn: &str,
    lb: &LoadBalancer,
) -> Result<(), ProviderError> {
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
    Ok(())
}

/// Deletes the load balancer unless deletion protection is on, and waits until it is gone.
pub(super) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    arn: &str,
) -> Result<(), ProviderError> {
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

/// Waits until the load balancer is active; a failed one is an error.
pub(super) async fn wait_ready(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<Observed, ProviderError> {
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
        Resource::LoadBalancer(lb) => {
            // An observed load balancer names its log bucket by name.
            let bucket = lb.access_logs.as_ref().map(|l| l.bucket.id());
            lb_attribute_map(&lb_attributes(lb, bucket))
        }
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

pub(super) async fn read_load_balancer(
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

#[cfg(test)]
mod tests {
    use super::*;
    use infra_core::model::Bucket;

    fn lb() -> LoadBalancer {
        LoadBalancer::internet_facing(&[], &[])
    }

    fn sent(attrs: Vec<LoadBalancerAttribute>) -> Attributes {
        lb_attribute_map(&attrs)
    }

    /// An internet-facing load balancer with `attrs`, as discovery reads it.
    fn read_back(attrs: &Attributes) -> LoadBalancer {
        let described = elbv2::types::LoadBalancer::builder()
            .scheme(LoadBalancerSchemeEnum::InternetFacing)
            .build();
        match observe_load_balancer("web", &described, attrs)
            .unwrap()
            .resource
        {
            Resource::LoadBalancer(read) => read,
            other => panic!("a load balancer, not {other:?}"),
        }
    }

    #[test]
    fn access_logs_are_sent_with_the_bucket_name_and_read_back() {
        let logs = Ref::<Bucket>::from_id("logs");
        let declared = lb().access_logs_with_prefix(&logs, "alb/web");
        let attrs = sent(lb_attributes(&declared, Some("my-logs")));
        assert_eq!(attrs[ACCESS_LOGS], "true");
        assert_eq!(attrs[ACCESS_LOGS_BUCKET], "my-logs");
        assert_eq!(attrs[ACCESS_LOGS_PREFIX], "alb/web");
        let read = read_back(&attrs);
        let read = read.access_logs.unwrap();
        assert_eq!(
            (read.bucket.id(), read.prefix.as_deref()),
            ("my-logs", Some("alb/web"))
        );
    }

    #[test]
    fn without_access_logs_they_are_turned_off_and_read_as_none() {
        let attrs = sent(lb_attributes(&lb(), None));
        assert_eq!(attrs[ACCESS_LOGS], "false");
        assert!(!attrs.contains_key(ACCESS_LOGS_BUCKET));
        let read = read_back(&attrs);
        assert!(read.access_logs.is_none());
    }

    #[test]
    fn only_elb_access_denied_is_waited_out() {
        let error = |code: &str, message: &str| ProviderError::Api {
            operation: "elasticloadbalancing:ModifyLoadBalancerAttributes".into(),
            code: code.into(),
            message: message.into(),
        };
        assert!(is_log_access_denied(&error(
            "InvalidConfigurationRequest",
            "Access Denied for bucket: logs. Please check S3bucket permission"
        )));
        assert!(!is_log_access_denied(&error(
            "InvalidConfigurationRequest",
            "Load balancer attribute key 'x' is not recognized"
        )));
        assert!(!is_log_access_denied(&error(
            "ValidationError",
            "Access Denied for bucket"
        )));
    }
}
