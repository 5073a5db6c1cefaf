//! ACM certificates: requested with DNS validation, imported from PEM files, or existing ones
//! referred to by ARN.
//!
//! ACM has no tag filter: discovery lists every certificate in the region and reads each one's
//! tags (concurrently), then describes the owned ones. Certificates declared as `Existing` are
//! never tagged, changed or deleted; discovery reports them by describing the declared ARN.

mod certificate;
mod issued;

use acm::types::{CertificateStatus, Filters, KeyAlgorithm};
use aws_sdk_acm as acm;
use futures::future::try_join_all;
use infra_core::model::{Certificate, Declared, Resource};
use infra_core::provider::Context;
use infra_core::{Address, Kind, Observed, ProviderError, Stack};

use crate::support::{api_error, is_not_found, owned_id};
use crate::AwsProvider;

pub(crate) async fn discover(
    p: &AwsProvider,
    stack: &Stack,
) -> Result<Vec<Observed>, ProviderError> {
    let owned = owned_certificates(p, &stack.name).await?;
    let existing: Vec<(&str, &str)> = stack
        .resources
        .iter()
        .filter_map(|d| match &d.resource {
            Resource::Certificate(Certificate::Existing { arn }) => {
                Some((d.id.as_str(), arn.as_str()))
            }
            _ => None,
        })
        .collect();
    let owned_details = try_join_all(owned.iter().map(|(_, arn)| certificate::describe(p, arn)));
    let existing_details = try_join_all(existing.iter().map(|(_, arn)| async move {
        match certificate::describe(p, arn).await {
            Err(err) if is_not_found(&err) => Ok(None),
            other => other.map(Some),
        }
    }));
    let (owned_details, existing_details) = futures::try_join!(owned_details, existing_details)?;

    let mut out = Vec::new();
    for ((id, arn), detail) in owned.iter().zip(&owned_details) {
        let address = Address::new(Kind::Certificate, id.as_str());
        // An owned certificate the stack now declares as `Existing` by its own ARN is that
        // existing certificate: reporting it so keeps it from being replaced (deleted).
        let declared = stack.get(&address).map(|d| &d.resource);
        if let Some(Resource::Certificate(Certificate::Existing { arn: declared_arn })) = declared {
            if declared_arn == arn {
                continue;
            }
        }
        out.push(certificate::observe(p, address, declared, detail).await?);
    }
    for ((id, arn), detail) in existing.iter().zip(&existing_details) {
        let address = Address::new(Kind::Certificate, *id);
        if out.iter().any(|o| o.address == address) {
            continue;
        }
        if let Some(detail) = detail {
            out.push(certificate::observe_existing(address, arn, detail));
        }
    }
    Ok(out)
}

/// Every certificate in the region tagged as owned by `stack`: (logical id, ARN).
async fn owned_certificates(
    p: &AwsProvider,
    stack: &str,
) -> Result<Vec<(String, String)>, ProviderError> {
    // Without `Includes`, ListCertificates leaves out RSA-4096 and EC keys.
    let all_keys = Filters::builder()
        .set_key_types(Some(
            KeyAlgorithm::values()
                .iter()
                .map(|k| KeyAlgorithm::from(*k))
                .collect(),
        ))
        .build();
    let summaries: Vec<acm::types::CertificateSummary> = p
        .acm
        .list_certificates()
        .includes(all_keys)
        .set_certificate_statuses(Some(
            CertificateStatus::values()
                .iter()
                .map(|s| CertificateStatus::from(*s))
                .collect(),
        ))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| api_error("acm:ListCertificates", e))?;
    let arns: Vec<String> = summaries
        .iter()
        .filter_map(|s| s.certificate_arn().map(str::to_string))
        .collect();
    let tagged = try_join_all(arns.into_iter().map(|arn| async move {
        match p
            .acm
            .list_tags_for_certificate()
            .certificate_arn(&arn)
            .send()
            .await
        {
            Ok(out) => {
                let id = owned_id(
                    stack,
                    out.tags()
                        .iter()
                        .map(|t| (t.key(), t.value().unwrap_or_default())),
                );
                Ok(id.map(|id| (id, arn)))
            }
            Err(e) => match api_error("acm:ListTagsForCertificate", e) {
                // Deleted since the listing (the region is shared).
                err if is_not_found(&err) => Ok(None),
                err => Err(err),
            },
        }
    }))
    .await?;
    Ok(tagged.into_iter().flatten().collect())
}

pub(crate) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
) -> Result<Observed, ProviderError> {
    certificate::create(p, ctx, desired).await
}

pub(crate) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    prior: &Observed,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    certificate::update(p, ctx, desired, prior, changed).await
}

pub(crate) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
) -> Result<(), ProviderError> {
    certificate::delete(p, ctx, prior).await
}

pub(crate) async fn wait_ready(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<Observed, ProviderError> {
    issued::wait_ready(p, ctx, observed).await
}

/// Wait until a certificate (as discovered or created) is ISSUED: ELB refuses one that is not,
/// so an HTTPS listener waits for it.
pub(crate) async fn wait_issued(
    p: &AwsProvider,
    ctx: &Context<'_>,
    certificate: &Observed,
) -> Result<(), ProviderError> {
    issued::wait_issued(p, ctx.progress, certificate)
        .await
        .map(|_| ())
}

pub(crate) async fn read(
    p: &AwsProvider,
    stack: &Stack,
    address: &Address,
    physical_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    certificate::read(p, stack, address, physical_id).await
}

pub(crate) async fn adopt(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<(), ProviderError> {
    certificate::adopt(p, ctx, observed).await
}
