//! Discovery in four waves, and the lookups it shares with creates: tags in batches of 20, a
//! load balancer's listeners, a listener's rules, the one of several candidates the stack owns.

use std::collections::{HashMap, HashSet};

use aws_sdk_elasticloadbalancingv2 as elbv2;
use futures::future::{join_all, try_join_all};
use futures::FutureExt;
use infra_core::provider::Context;
use infra_core::{Kind, Observed, ProviderError, Stack};

use super::listener::observe_listener;
use super::listener_rule::observe_rule;
use super::load_balancer::{load_balancer_attributes, observe_load_balancer};
use super::target_group::{observe_target_group, target_group_attributes};
use super::{physical_name, Attributes};
use crate::support::{api_error, is_not_found, owned_id};
use crate::AwsProvider;

/// DescribeTags takes at most 20 ARNs per call.
const TAG_BATCH: usize = 20;
/// The largest page AWS allows on DescribeLoadBalancers, DescribeTargetGroups,
/// DescribeListeners and DescribeRules. moto 5.2.1 pages load balancers and rules by 50 unless
/// asked, and does not page target groups or listeners.
const PAGE_SIZE: i32 = 400;

/// Discovery in four waves of concurrent calls; a wave waits for the answers it needs:
///
/// 1. every load balancer and target group in the region (ELBv2 has no tag filter);
/// 2. their tags, which decide ownership, and, for the ones bearing a name this stack gives a
///    declared resource, the reads that need only an ARN (listeners and attributes), started
///    before ownership is known;
/// 3. the rules of the owned load balancers' listeners, and the listeners' tags;
/// 4. the rules' tags (none, and no fourth wave, when the listeners have only default rules).
///
/// A speculative read's answer, error included, is used only once the tags show the resource is
/// this stack's; a resource not tagged so is never reported. An owned resource with another name
/// (adopted, or no longer declared) gets its listeners and attributes in wave 3, and so its
/// rules a wave later. A rule is reported only when its own tags say it is ours, so its tags
/// cannot be asked for before its ARN is known: that is what wave 4 waits for.
pub(crate) async fn discover(
    p: &AwsProvider,
    stack: &Stack,
) -> Result<Vec<Observed>, ProviderError> {
    let (lbs, tgs) = futures::try_join!(all_load_balancers(p), all_target_groups(p))?;
    let arns: Vec<String> = lbs
        .iter()
        .filter_map(|lb| lb.load_balancer_arn().map(str::to_string))
        .chain(
            tgs.iter()
                .filter_map(|tg| tg.target_group_arn().map(str::to_string)),
        )
        .collect();
    let lb_names = declared_names(stack, Kind::LoadBalancer);
    let tg_names = declared_names(stack, Kind::TargetGroup);
    let named =
        |name: Option<&str>, names: &HashSet<String>| name.is_some_and(|n| names.contains(n));
    let early_lbs = join_all(
        lbs.iter()
            .filter(|lb| named(lb.load_balancer_name(), &lb_names))
            .filter_map(|lb| lb.load_balancer_arn())
            .map(|arn| async move { (arn.to_string(), load_balancer_details(p, arn).await) }),
    );
    let early_tgs = join_all(
        tgs.iter()
            .filter(|tg| named(tg.target_group_name(), &tg_names))
            .filter_map(|tg| tg.target_group_arn())
            .map(|arn| async move { (arn.to_string(), target_group_attributes(p, arn).await) }),
    );
    let (tags, early_lbs, early_tgs) = futures::try_join!(
        describe_tags(p, &arns),
        early_lbs.map(Ok),
        early_tgs.map(Ok),
    )?;
    let mut early_lbs: HashMap<String, Result<LbDetails, ProviderError>> =
        early_lbs.into_iter().collect();
    let mut early_tgs: HashMap<String, Result<Attributes, ProviderError>> =
        early_tgs.into_iter().collect();
    let owned_lbs: Vec<Owned<elbv2::types::LoadBalancer, LbDetails>> = lbs
        .into_iter()
        .filter_map(|lb| {
            let arn = lb.load_balancer_arn()?;
            let id = owner(&stack.name, &tags, arn)?;
            let early = early_lbs.remove(arn);
            Some((id, lb, early))
        })
        .collect();
    let owned_tgs: Vec<Owned<elbv2::types::TargetGroup, Attributes>> = tgs
        .into_iter()
        .filter_map(|tg| {
            let arn = tg.target_group_arn()?;
            let id = owner(&stack.name, &tags, arn)?;
            let early = early_tgs.remove(arn);
            Some((id, tg, early))
        })
        .collect();
    tracing::debug!(
        load_balancers = owned_lbs.len(),
        target_groups = owned_tgs.len(),
        "elbv2: owned resources found"
    );

    let target_groups = try_join_all(owned_tgs.into_iter().map(|(id, tg, early)| async move {
        let attrs = match early {
            Some(attrs) => attrs?,
            None => target_group_attributes(p, tg.target_group_arn().unwrap_or_default()).await?,
        };
        observe_target_group(&id, &tg, &attrs)
    }));
    let (mut out, load_balancing) =
        futures::try_join!(target_groups, discover_load_balancers(p, stack, owned_lbs))?;
    out.extend(load_balancing);
    Ok(out)
}

/// An owned resource: its logical id, its description, and the answer of the read started for
/// it before its ownership was known, if one was.
type Owned<T, D> = (String, T, Option<Result<D, ProviderError>>);

/// A load balancer's listeners and attributes.
type LbDetails = (Vec<elbv2::types::Listener>, Attributes);

/// The owned load balancers, their listeners and the listeners' rules (waves 3 and 4).
async fn discover_load_balancers(
    p: &AwsProvider,
    stack: &Stack,
    owned: Vec<Owned<elbv2::types::LoadBalancer, LbDetails>>,
) -> Result<Vec<Observed>, ProviderError> {
    let details = try_join_all(owned.into_iter().map(|(id, lb, early)| async move {
        let (listeners, attrs) = match early {
            Some(details) => details?,
            None => load_balancer_details(p, lb.load_balancer_arn().unwrap_or_default()).await?,
        };
        Ok::<_, ProviderError>((observe_load_balancer(&id, &lb, &attrs)?, listeners))
    }))
    .await?;
    let mut out = Vec::new();
    let mut listeners = Vec::new();
    for (observed, of_lb) in details {
        out.push(observed);
        listeners.extend(of_lb);
    }

    // Every listener of an owned load balancer may carry owned rules, whoever owns it.
    let listener_arns: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.listener_arn().map(str::to_string))
        .collect();
    let (rules, listener_tags) = futures::try_join!(
        try_join_all(listener_arns.iter().map(|arn| rules_of(p, arn))),
        describe_tags(p, &listener_arns),
    )?;
    let rule_arns: Vec<String> = rules
        .iter()
        .flatten()
        .filter_map(|r| r.rule_arn().map(str::to_string))
        .collect();
    let rule_tags = describe_tags(p, &rule_arns).await?;

    for (listener, rules) in listeners.iter().zip(&rules) {
        let listener_arn = listener.listener_arn().unwrap_or_default();
        if let Some(id) = owner(&stack.name, &listener_tags, listener_arn) {
            out.push(observe_listener(&id, listener)?);
        }
        for rule in rules {
            let rule_arn = rule.rule_arn().unwrap_or_default();
            if let Some(id) = owner(&stack.name, &rule_tags, rule_arn) {
                out.push(observe_rule(&id, listener_arn, rule)?);
            }
        }
    }
    Ok(out)
}

/// The logical id `arn` has in `stack`, when its tags mark it as the stack's own.
fn owner(stack: &str, tags: &Tags, arn: &str) -> Option<String> {
    let tags = tags.get(arn)?;
    owned_id(stack, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// The names this stack gives its declared resources of `kind` (target groups or load balancers).
fn declared_names(stack: &Stack, kind: Kind) -> HashSet<String> {
    stack
        .resources
        .iter()
        .filter(|d| d.resource.kind() == kind)
        .map(|d| physical_name(&stack.name, d))
        .collect()
}

async fn all_load_balancers(
    p: &AwsProvider,
) -> Result<Vec<elbv2::types::LoadBalancer>, ProviderError> {
    p.elb
        .describe_load_balancers()
        .page_size(PAGE_SIZE)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeLoadBalancers", e))
}

async fn all_target_groups(
    p: &AwsProvider,
) -> Result<Vec<elbv2::types::TargetGroup>, ProviderError> {
    p.elb
        .describe_target_groups()
        .page_size(PAGE_SIZE)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeTargetGroups", e))
}

type Tags = HashMap<String, Vec<(String, String)>>;

/// Tags of `arns`, 20 per call, all batches at once. A resource deleted meanwhile (by another
/// stack: the region is shared) fails its whole batch with NotFound; that batch is then read
/// one ARN at a time and the vanished ones are skipped.
async fn describe_tags(p: &AwsProvider, arns: &[String]) -> Result<Tags, ProviderError> {
    let batches = try_join_all(arns.chunks(TAG_BATCH).map(|chunk| async move {
        match tags_batch(p, chunk).await {
            Err(err) if is_not_found(&err) && chunk.len() > 1 => {
                let singles = try_join_all(chunk.iter().map(|arn| async move {
                    match tags_batch(p, std::slice::from_ref(arn)).await {
                        Err(err) if is_not_found(&err) => Ok(Tags::new()),
                        other => other,
                    }
                }))
                .await?;
                Ok(singles.into_iter().flatten().collect())
            }
            other => other,
        }
    }))
    .await?;
    Ok(batches.into_iter().flatten().collect())
}

async fn tags_batch(p: &AwsProvider, arns: &[String]) -> Result<Tags, ProviderError> {
    let out = p
        .elb
        .describe_tags()
        .set_resource_arns(Some(arns.to_vec()))
        .send()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeTags", e))?;
    Ok(out
        .tag_descriptions()
        .iter()
        .filter_map(|d| {
            let tags = d
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            Some((d.resource_arn()?.to_string(), tags))
        })
        .collect())
}

pub(super) async fn listeners_of(
    p: &AwsProvider,
    lb_arn: &str,
) -> Result<Vec<elbv2::types::Listener>, ProviderError> {
    p.elb
        .describe_listeners()
        .load_balancer_arn(lb_arn)
        .page_size(PAGE_SIZE)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeListeners", e))
}

/// The listener's rules without its default rule (that one is the listener's default action).
pub(super) async fn rules_of(
    p: &AwsProvider,
    listener_arn: &str,
) -> Result<Vec<elbv2::types::Rule>, ProviderError> {
    let rules: Vec<elbv2::types::Rule> = p
        .elb
        .describe_rules()
        .listener_arn(listener_arn)
        .page_size(PAGE_SIZE)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeRules", e))?;
    Ok(rules
        .into_iter()
        .filter(|r| r.is_default() != Some(true))
        .collect())
}

async fn load_balancer_details(p: &AwsProvider, arn: &str) -> Result<LbDetails, ProviderError> {
    futures::try_join!(listeners_of(p, arn), load_balancer_attributes(p, arn))
}

/// The one of `candidates` (listeners or rules) tagged with this stack and `id`.
pub(super) async fn owned_among<T>(
    p: &AwsProvider,
    ctx: &Context<'_>,
    id: &str,
    candidates: Vec<T>,
    arn_of: impl Fn(&T) -> Option<&str>,
) -> Result<Option<T>, ProviderError> {
    let arns: Vec<String> = candidates
        .iter()
        .filter_map(|c| arn_of(c).map(str::to_string))
        .collect();
    let tags = describe_tags(p, &arns).await?;
    Ok(candidates.into_iter().find(|c| {
        arn_of(c)
            .and_then(|arn| owner(ctx.stack, &tags, arn))
            .as_deref()
            == Some(id)
    }))
}
