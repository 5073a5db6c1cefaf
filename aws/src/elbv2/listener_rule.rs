//! Listener rules: read from AWS with their conditions, created (a lost answer is found again by
//! priority), modified in place, read by ARN (their listener read off the ARN) and deleted.

use aws_sdk_elasticloadbalancingv2 as elbv2;
use elbv2::types::{
    HostHeaderConditionConfig, PathPatternConditionConfig, RuleCondition, RulePriorityPair,
};
use infra_core::model::{Condition, ListenerRule};
use infra_core::provider::Context;
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, ProviderError, Ref};

use super::actions::{action_from, action_to};
use super::discovery::{owned_among, rules_of};
use super::{gone, has, in_place_only, no_retries, sdk_tags, to_i32, unmodeled, ElbError};
use crate::support::{api_error, create_once, retry_not_found, VISIBLE_WITHIN};
use crate::AwsProvider;

// ---------------------------------------------------------------------------------------------
// AWS -> model
// ---------------------------------------------------------------------------------------------

pub(super) fn observe_rule(
    id: &str,
    listener_arn: &str,
    rule: &elbv2::types::Rule,
) -> Result<Observed, ProviderError> {
    let address = Address::new(Kind::ListenerRule, id);
    let arn = rule.rule_arn().unwrap_or_default();
    let priority = rule.priority().unwrap_or_default();
    let priority = priority
        .parse()
        .map_err(|_| unmodeled(&address, "priority", priority, "1-50000"))?;
    let mut conditions = Vec::new();
    for c in rule.conditions() {
        conditions.push(condition_from(&address, c)?);
    }
    let action = match rule.actions() {
        [action] => action_from(&address, action)?,
        _ => {
            return Err(ElbError::Missing {
                address,
                what: "single action",
            }
            .into())
        }
    };
    let resource = ListenerRule {
        listener: Ref::from_id(listener_arn),
        priority,
        conditions,
        action,
    };
    Ok(Observed::new(address, arn, resource.into()).with_attribute(attributes::ARN, arn))
}

fn condition_from(address: &Address, c: &RuleCondition) -> Result<Condition, ProviderError> {
    // The legacy `Values` and the typed config both carry the values; moto may fill only one.
    let values = |typed: Option<&[String]>| {
        let mut v: Vec<String> = match typed {
            Some(v) if !v.is_empty() => v.to_vec(),
            _ => c.values().to_vec(),
        };
        v.dedup();
        v
    };
    match c.field() {
        Some("path-pattern") => Ok(Condition::PathPattern(values(
            c.path_pattern_config()
                .map(PathPatternConditionConfig::values),
        ))),
        Some("host-header") => Ok(Condition::HostHeader(values(
            c.host_header_config()
                .map(HostHeaderConditionConfig::values),
        ))),
        other => Err(unmodeled(
            address,
            "conditions.field",
            other.unwrap_or_default(),
            "path-pattern, host-header",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// model -> AWS
// ---------------------------------------------------------------------------------------------

fn condition_to(c: &Condition) -> RuleCondition {
    match c {
        Condition::PathPattern(values) => RuleCondition::builder()
            .field("path-pattern")
            .path_pattern_config(
                PathPatternConditionConfig::builder()
                    .set_values(Some(values.clone()))
                    .build(),
            )
            .build(),
        Condition::HostHeader(values) => RuleCondition::builder()
            .field("host-header")
            .host_header_config(
                HostHeaderConditionConfig::builder()
                    .set_values(Some(values.clone()))
                    .build(),
            )
            .build(),
    }
}

// ---------------------------------------------------------------------------------------------
// Create / update / delete
// ---------------------------------------------------------------------------------------------

pub(super) async fn create_rule(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    r: &ListenerRule,
) -> Result<Observed, ProviderError> {
    let listener_arn = ctx.resolved.physical_id(&r.listener)?;
    let action = action_to(ctx, &r.action)?;
    let priority = r.priority.to_string();
    tracing::debug!(%address, priority = r.priority, "elbv2: creating listener rule");
    // Priorities are unique per listener: a rule there already, tagged as ours, is this one.
    let lookup = || async {
        let at_priority: Vec<elbv2::types::Rule> = rules_of(p, listener_arn)
            .await?
            .into_iter()
            .filter(|x| x.priority() == Some(priority.as_str()))
            .collect();
        owned_among(p, ctx, &address.id, at_priority, |x| x.rule_arn()).await
    };
    let rule = create_once(p.options.max_attempts, lookup, || async {
        let out = p
            .elb
            .create_rule()
            .listener_arn(listener_arn)
            .priority(to_i32(r.priority))
            .set_conditions(Some(r.conditions.iter().map(condition_to).collect()))
            .actions(action.clone())
            .set_tags(Some(sdk_tags(ctx.stack, &address.id)))
            .customize()
            .config_override(no_retries())
            .send()
            .await
            .map_err(|e| api_error("elasticloadbalancing:CreateRule", e))?;
        out.rules()
            .first()
            .filter(|x| x.rule_arn().is_some())
            .cloned()
            .ok_or_else(|| {
                ElbError::Missing {
                    address: address.clone(),
                    what: "rule ARN",
                }
                .into()
            })
    })
    .await?;
    observe_rule(&address.id, listener_arn, &rule)
}

/// Changes conditions and action, then priority; any other change forces a replacement.
pub(super) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    arn: &str,
    r: &ListenerRule,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    in_place_only(address, changed, &["priority", "conditions", "action"])?;
    // The last write's answer holds the rule with every change made.
    let mut latest = None;
    if has(changed, "conditions") || has(changed, "action") {
        let out = p
            .elb
            .modify_rule()
            .rule_arn(arn)
            .set_conditions(Some(r.conditions.iter().map(condition_to).collect()))
            .actions(action_to(ctx, &r.action)?)
            .send()
            .await
            .map_err(|e| api_error("elasticloadbalancing:ModifyRule", e))?;
        latest = out.rules().first().cloned();
    }
    if has(changed, "priority") {
        let out = p
            .elb
            .set_rule_priorities()
            .rule_priorities(
                RulePriorityPair::builder()
                    .rule_arn(arn)
                    .priority(to_i32(r.priority))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| api_error("elasticloadbalancing:SetRulePriorities", e))?;
        latest = out
            .rules()
            .iter()
            .find(|x| x.rule_arn() == Some(arn))
            .cloned();
    }
    match latest {
        Some(rule) => observe_rule(&address.id, &rule_listener(address, arn)?, &rule),
        None => retry_not_found(VISIBLE_WITHIN, || read_rule(p, address, arn)).await,
    }
}

pub(super) async fn delete(p: &AwsProvider, arn: &str) -> Result<(), ProviderError> {
    gone(
        p.elb
            .delete_rule()
            .rule_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| api_error("elasticloadbalancing:DeleteRule", e)),
    )
}

// ---------------------------------------------------------------------------------------------
// Reading one resource by ARN
// ---------------------------------------------------------------------------------------------

/// The listener a rule belongs to, from the rule's ARN: AWS builds
/// `…:listener-rule/app/NAME/LB/LISTENER/RULE` from `…:listener/app/NAME/LB/LISTENER`.
fn listener_arn_of_rule(rule_arn: &str) -> Option<String> {
    let (prefix, _rule) = rule_arn.rsplit_once('/')?;
    prefix
        .contains(":listener-rule/")
        .then(|| prefix.replacen(":listener-rule/", ":listener/", 1))
}

pub(super) async fn read_rule(
    p: &AwsProvider,
    address: &Address,
    arn: &str,
) -> Result<Observed, ProviderError> {
    let out = p
        .elb
        .describe_rules()
        .rule_arns(arn)
        .send()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeRules", e))?;
    let rule = out.rules().first().ok_or_else(|| ElbError::Missing {
        address: address.clone(),
        what: "rule",
    })?;
    observe_rule(&address.id, &rule_listener(address, arn)?, rule)
}

/// The listener ARN of the rule `arn`, read off the ARN.
fn rule_listener(address: &Address, arn: &str) -> Result<String, ProviderError> {
    listener_arn_of_rule(arn).ok_or_else(|| {
        unmodeled(
            address,
            "rule_arn",
            arn,
            "an ARN of the form arn:…:listener-rule/app/NAME/LB/LISTENER/RULE",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> Address {
        Address::new(Kind::Listener, "http")
    }

    #[test]
    fn rule_arn_names_its_listener() {
        let rule =
            "arn:aws:elasticloadbalancing:ap-northeast-2:123:listener-rule/app/web/50dc/f2f7/9683";
        assert_eq!(
            listener_arn_of_rule(rule).as_deref(),
            Some("arn:aws:elasticloadbalancing:ap-northeast-2:123:listener/app/web/50dc/f2f7")
        );
        assert_eq!(
            listener_arn_of_rule("arn:aws:elasticloadbalancing:x:listener/app/a/b/c"),
            None
        );
    }

    #[test]
    fn legacy_condition_values_are_read_when_the_typed_config_is_empty() {
        let legacy = RuleCondition::builder()
            .field("path-pattern")
            .values("/api/*")
            .build();
        assert_eq!(
            condition_from(&addr(), &legacy).unwrap(),
            Condition::PathPattern(vec!["/api/*".into()])
        );
        let typed = condition_to(&Condition::HostHeader(vec!["a.example.com".into()]));
        assert_eq!(
            condition_from(&addr(), &typed).unwrap(),
            Condition::HostHeader(vec!["a.example.com".into()])
        );
    }
}
