//! Listener and rule actions (forward, redirect, fixed response) between the model and ELBv2:
//! a listener's default action and a rule's action are the same type.

use aws_sdk_elasticloadbalancingv2 as elbv2;
use elbv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, RedirectActionConfig,
    RedirectActionStatusCodeEnum,
};
use infra_core::model::{AppProtocol, ListenerAction, RedirectStatus};
use infra_core::provider::Context;
use infra_core::{Address, ProviderError, Ref};

use super::{unmodeled, ElbError};

/// What AWS stores for redirect fields that keep the request's own value.
const KEEP_PROTOCOL: &str = "#{protocol}";
const KEEP_PORT: &str = "#{port}";
const KEEP_HOST: &str = "#{host}";
const KEEP_PATH: &str = "/#{path}";
const KEEP_QUERY: &str = "#{query}";

// ---------------------------------------------------------------------------------------------
// AWS -> model
// ---------------------------------------------------------------------------------------------

pub(super) fn action_from(
    address: &Address,
    action: &Action,
) -> Result<ListenerAction, ProviderError> {
    match action.r#type() {
        Some(ActionTypeEnum::Forward) => forward_from(address, action),
        Some(ActionTypeEnum::Redirect) => redirect_from(address, action),
        Some(ActionTypeEnum::FixedResponse) => fixed_response_from(address, action),
        other => Err(unmodeled(
            address,
            "action.type",
            other.map(|t| t.as_str().to_string()).unwrap_or_default(),
            "forward, redirect, fixed-response",
        )),
    }
}

/// A forward action's one target group, named on the action or as its forward config's only one.
fn forward_from(address: &Address, action: &Action) -> Result<ListenerAction, ProviderError> {
    let arn = action
        .target_group_arn()
        .or_else(|| match action.forward_config() {
            Some(config) if config.target_groups().len() == 1 => {
                config.target_groups()[0].target_group_arn()
            }
            _ => None,
        });
    let arn = arn.ok_or_else(|| ElbError::Missing {
        address: address.clone(),
        what: "target group in the forward action",
    })?;
    Ok(ListenerAction::forward(&Ref::from_id(arn)))
}

fn redirect_from(address: &Address, action: &Action) -> Result<ListenerAction, ProviderError> {
    let config = action.redirect_config().ok_or_else(|| ElbError::Missing {
        address: address.clone(),
        what: "redirect configuration",
    })?;
    let kept = |value: Option<&str>, keep: &str| value.filter(|v| *v != keep).map(str::to_string);
    let protocol = match kept(config.protocol(), KEEP_PROTOCOL).as_deref() {
        None => None,
        Some("HTTP") => Some(AppProtocol::Http),
        Some("HTTPS") => Some(AppProtocol::Https),
        Some(other) => {
            return Err(unmodeled(
                address,
                "redirect.protocol",
                other,
                "HTTP, HTTPS, #{protocol}",
            ))
        }
    };
    let port = match kept(config.port(), KEEP_PORT) {
        None => None,
        Some(p) => Some(
            p.parse()
                .map_err(|_| unmodeled(address, "redirect.port", p.clone(), "1-65535, #{port}"))?,
        ),
    };
    let status = match config.status_code() {
        Some(RedirectActionStatusCodeEnum::Http301) => RedirectStatus::Permanent,
        Some(RedirectActionStatusCodeEnum::Http302) => RedirectStatus::Found,
        other => {
            return Err(unmodeled(
                address,
                "redirect.status",
                other.map(|s| s.as_str().to_string()).unwrap_or_default(),
                "HTTP_301, HTTP_302",
            ))
        }
    };
    Ok(ListenerAction::Redirect {
        protocol,
        port,
        host: kept(config.host(), KEEP_HOST),
        path: kept(config.path(), KEEP_PATH),
        status,
    })
}

fn fixed_response_from(
    address: &Address,
    action: &Action,
) -> Result<ListenerAction, ProviderError> {
    let config = action
        .fixed_response_config()
        .ok_or_else(|| ElbError::Missing {
            address: address.clone(),
            what: "fixed-response configuration",
        })?;
    let code = config.status_code().unwrap_or_default();
    Ok(ListenerAction::FixedResponse {
        status_code: code
            .parse()
            .map_err(|_| unmodeled(address, "fixed_response.status_code", code, "2XX, 4XX, 5XX"))?,
        content_type: config.content_type().map(str::to_string),
        body: config.message_body().map(str::to_string),
    })
}

// ---------------------------------------------------------------------------------------------
// model -> AWS
// ---------------------------------------------------------------------------------------------

pub(super) fn action_to(
    ctx: &Context<'_>,
    action: &ListenerAction,
) -> Result<Action, ProviderError> {
    Ok(match action {
        ListenerAction::Forward { target_group } => Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(ctx.resolved.physical_id(target_group)?)
            .build(),
        ListenerAction::Redirect {
            protocol,
            port,
            host,
            path,
            status,
        } => Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol(protocol.map(AppProtocol::as_str).unwrap_or(KEEP_PROTOCOL))
                    .port(
                        port.map(|p| p.to_string())
                            .unwrap_or_else(|| KEEP_PORT.into()),
                    )
                    .host(host.as_deref().unwrap_or(KEEP_HOST))
                    .path(path.as_deref().unwrap_or(KEEP_PATH))
                    .query(KEEP_QUERY)
                    .status_code(match status {
                        RedirectStatus::Permanent => RedirectActionStatusCodeEnum::Http301,
                        RedirectStatus::Found => RedirectActionStatusCodeEnum::Http302,
                    })
                    .build(),
            )
            .build(),
        ListenerAction::FixedResponse {
            status_code,
            content_type,
            body,
        } => Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .status_code(status_code.to_string())
                    .set_content_type(content_type.clone())
                    .set_message_body(body.clone())
                    .build(),
            )
            .build(),
    })
}

#[cfg(test)]
mod tests {
    use infra_core::Kind;

    use super::*;

    fn addr() -> Address {
        Address::new(Kind::Listener, "http")
    }

    #[test]
    fn redirect_defaults_read_back_as_kept_fields() {
        let action = Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol("HTTPS")
                    .port("443")
                    .host(KEEP_HOST)
                    .path(KEEP_PATH)
                    .query(KEEP_QUERY)
                    .status_code(RedirectActionStatusCodeEnum::Http301)
                    .build(),
            )
            .build();
        assert_eq!(
            action_from(&addr(), &action).unwrap(),
            ListenerAction::redirect_to_https()
        );
    }
}
