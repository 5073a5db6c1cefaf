//! Listeners: read from AWS, created (a lost answer is found again by port), modified in place,
//! read by ARN and deleted.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2 as elbv2;
use elbv2::types::Certificate as SdkCertificate;
use infra_core::model::{AppProtocol, Certificate, Listener};
use infra_core::provider::Context;
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, ProviderError, Ref};

use super::actions::{action_from, action_to};
use super::discovery::{listeners_of, owned_among};
use super::{
    gone, has, in_place_only, no_retries, protocol_from, protocol_to, sdk_tags, to_u16, ElbError,
};
use crate::support::{api_error, create_once, error_code, pause, retry_not_found, VISIBLE_WITHIN};
use crate::AwsProvider;

// ---------------------------------------------------------------------------------------------
// AWS -> model
// ---------------------------------------------------------------------------------------------

pub(super) fn observe_listener(
    id: &str,
    listener: &elbv2::types::Listener,
) -> Result<Observed, ProviderError> {
    let address = Address::new(Kind::Listener, id);
    let arn = listener.listener_arn().unwrap_or_default();
    let default_action = match listener.default_actions() {
        [action] => action_from(&address, action)?,
        _ => {
            return Err(ElbError::Missing {
                address,
                what: "single default action",
            }
            .into())
        }
    };
    let protocol = protocol_from(&address, "protocol", listener.protocol())?;
    let resource = Listener {
        load_balancer: Ref::from_id(listener.load_balancer_arn().unwrap_or_default()),
        port: to_u16(listener.port()),
        protocol,
        certificate: listener
            .certificates()
            .first()
            .and_then(|c| c.certificate_arn())
            .map(Ref::from_id),
        // A TLS policy means nothing on plain HTTP; moto reports one there anyway.
        ssl_policy: listener
            .ssl_policy()
            .filter(|_| protocol == AppProtocol::Https)
            .map(str::to_string),
        default_action,
    };
    Ok(Observed::new(address, arn, resource.into()).with_attribute(attributes::ARN, arn))
}

// ---------------------------------------------------------------------------------------------
// The certificate of an HTTPS listener
// ---------------------------------------------------------------------------------------------

/// How long ELB may refuse a certificate that ACM already reports ISSUED (ELB learns of it
/// late). terraform-provider-aws retries CreateListener and ModifyListener on
/// `CertificateNotFound` for 5 minutes (internal/service/elbv2/listener.go); ELB answers
/// `UnsupportedCertificate` ("must have a fully-qualified domain name...") in the same window
/// (hashicorp/terraform-provider-aws#41789).
const CERTIFICATE_PROPAGATION: Duration = Duration::from_secs(300);

/// Whether ELB refused the certificate as not (yet) issued.
fn certificate_not_seen(err: &ProviderError) -> bool {
    matches!(
        error_code(err),
        Some("CertificateNotFound" | "UnsupportedCertificate")
    )
}

/// The ARN of the listener's certificate, once ACM reports it ISSUED (ELB refuses it before).
async fn issued_certificate<'a>(
    p: &AwsProvider,
    ctx: &'a Context<'_>,
    certificate: &Ref<Certificate>,
) -> Result<&'a str, ProviderError> {
    let observed = ctx
        .resolved
        .get(&certificate.address())
        .ok_or_else(|| ProviderError::Unresolved(certificate.address()))?;
    crate::acm::wait_issued(p, ctx, observed).await?;
    Ok(observed.physical_id.as_str())
}

/// `call` (a CreateListener or ModifyListener with a certificate) again, with backoff, while ELB
/// does not see the issued certificate yet, for up to [`CERTIFICATE_PROPAGATION`].
async fn retry_certificate_not_seen<T, F, Fut>(
    ctx: &Context<'_>,
    address: &Address,
    mut call: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_secs(2);
    loop {
        match call().await {
            Err(err) if certificate_not_seen(&err) && start.elapsed() < CERTIFICATE_PROPAGATION => {
                let code = error_code(&err).unwrap_or_default();
                ctx.progress.waiting(
                    address,
                    &format!("the load balancer does not accept the certificate yet ({code})"),
                    start.elapsed(),
                );
                pause(delay, || format!("not retried after {err}")).await?;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            other => return other,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Create / update / delete
// ---------------------------------------------------------------------------------------------

pub(super) async fn create_listener(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    l: &Listener,
) -> Result<Observed, ProviderError> {
    let lb_arn = ctx.resolved.physical_id(&l.load_balancer)?;
    let certificate = match &l.certificate {
        Some(c) => Some(issued_certificate(p, ctx, c).await?),
        None => None,
    };
    let action = action_to(ctx, &l.default_action)?;
    tracing::debug!(%address, port = l.port, "elbv2: creating listener");
    // A load balancer has one listener per port: one there already, tagged as ours, is this one.
    let lookup = || async {
        let on_port: Vec<elbv2::types::Listener> = listeners_of(p, lb_arn)
            .await?
            .into_iter()
            .filter(|x| x.port() == Some(i32::from(l.port)))
            .collect();
        owned_among(p, ctx, &address.id, on_port, |x| x.listener_arn()).await
    };
    let send = || async {
        let out = p
            .elb
            .create_listener()
            .load_balancer_arn(lb_arn)
            .port(i32::from(l.port))
            .protocol(protocol_to(l.protocol))
            .set_certificates(
                certificate.map(|arn| vec![SdkCertificate::builder().certificate_arn(arn).build()]),
            )
            .set_ssl_policy(l.ssl_policy.clone())
            .default_actions(action.clone())
            .set_tags(Some(sdk_tags(ctx.stack, &address.id)))
            .customize()
            .config_override(no_retries())
            .send()
            .await
            .map_err(|e| api_error("elasticloadbalancing:CreateListener", e))?;
        out.listeners()
            .first()
            .filter(|x| x.listener_arn().is_some())
            .cloned()
            .ok_or_else(|| {
                ElbError::Missing {
                    address: address.clone(),
                    what: "listener ARN",
                }
                .into()
            })
    };
    let listener = create_once(p.options.max_attempts, lookup, || {
        retry_certificate_not_seen(ctx, address, send)
    })
    .await?;
    observe_listener(&address.id, &listener)
}

/// One ModifyListener with the changed fields; any other change forces a replacement.
pub(super) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    arn: &str,
    l: &Listener,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    in_place_only(
        address,
        changed,
        &[
            "port",
            "protocol",
            "certificate",
            "ssl_policy",
            "default_action",
        ],
    )?;
    let mut call = p.elb.modify_listener().listener_arn(arn);
    if has(changed, "port") {
        call = call.port(i32::from(l.port));
    }
    if has(changed, "protocol") {
        call = call.protocol(protocol_to(l.protocol));
    }
    if has(changed, "certificate") {
        if let Some(c) = &l.certificate {
            let cert = issued_certificate(p, ctx, c).await?;
            call = call.certificates(SdkCertificate::builder().certificate_arn(cert).build());
        }
    }
    if has(changed, "ssl_policy") || has(changed, "protocol") {
        call = call.set_ssl_policy(l.ssl_policy.clone());
    }
    if has(changed, "default_action") {
        call = call.default_actions(action_to(ctx, &l.default_action)?);
    }
    let out = retry_certificate_not_seen(ctx, address, || {
        let call = call.clone();
        async move {
            call.send()
                .await
                .map_err(|e| api_error("elasticloadbalancing:ModifyListener", e))
        }
    })
    .await?;
    match out.listeners().first() {
        Some(listener) => observe_listener(&address.id, listener),
        None => retry_not_found(VISIBLE_WITHIN, || read_listener(p, address, arn)).await,
    }
}

pub(super) async fn delete(p: &AwsProvider, arn: &str) -> Result<(), ProviderError> {
    gone(
        p.elb
            .delete_listener()
            .listener_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| api_error("elasticloadbalancing:DeleteListener", e)),
    )
}

// ---------------------------------------------------------------------------------------------
// Reading one resource by ARN
// ---------------------------------------------------------------------------------------------

pub(super) async fn read_listener(
    p: &AwsProvider,
    address: &Address,
    arn: &str,
) -> Result<Observed, ProviderError> {
    let out = p
        .elb
        .describe_listeners()
        .listener_arns(arn)
        .send()
        .await
        .map_err(|e| api_error("elasticloadbalancing:DescribeListeners", e))?;
    let listener = out.listeners().first().ok_or_else(|| ElbError::Missing {
        address: address.clone(),
        what: "listener",
    })?;
    observe_listener(&address.id, listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str) -> ProviderError {
        ProviderError::Api {
            operation: "elasticloadbalancing:CreateListener".into(),
            code: code.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn only_a_certificate_elb_does_not_see_yet_is_retried() {
        assert!(certificate_not_seen(&api("CertificateNotFound")));
        assert!(certificate_not_seen(&api("UnsupportedCertificate")));
        assert!(!certificate_not_seen(&api("DuplicateListener")));
        assert!(!certificate_not_seen(&api("ValidationError")));
        assert!(!certificate_not_seen(&ProviderError::Other(
            "CertificateNotFound".into()
        )));
    }
}
