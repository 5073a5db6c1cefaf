//! The ACM certificate: requested, imported or existing; create, update, delete, read, adopt,
//! and the certificate in model form. The wait for ISSUED is in [`super::issued`].

use std::time::{Duration, Instant};

use acm::primitives::Blob;
use acm::types::{CertificateDetail, CertificateType, DomainValidation, Tag, ValidationMethod};
use aws_sdk_acm as acm;
use infra_core::model::{Certificate, Declared, Resource};
use infra_core::provider::Context;
use infra_core::stack::attributes;
use infra_core::{Address, Kind, Observed, ProviderError, Stack};

use super::owned_certificates;
use crate::support::{
    api_error, client_token, create_once, error_code, is_not_found, ownership_tags, pause,
    retry_not_found, wait_for, Poll,
};
use crate::AwsProvider;

/// How long a new certificate may take to show up, and to show its DNS validation records.
pub(super) const VISIBLE_WITHIN: Duration = Duration::from_secs(30);
/// Request tokens tried in turn (see `request`).
const TOKEN_GENERATIONS: u32 = 4;
/// How long a deleted listener may keep a certificate "in use".
const IN_USE_RETRY: Duration = Duration::from_secs(300);
#[derive(Debug, thiserror::Error)]
enum AcmError {
    #[error("{address}: cannot read `{field}` file `{path}`")]
    ReadPem {
        address: Address,
        field: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{address}: the existing certificate `{arn}` does not exist in this region (set `arn` to a certificate ARN ACM lists)")]
    ExistingMissing { address: Address, arn: String },
    #[error("{address}: field `{field}` cannot change in place (it forces a replacement)")]
    NotInPlace { address: Address, field: String },
    #[error("{address}: AWS returned no {what}")]
    Missing {
        address: Address,
        what: &'static str,
    },
    #[error("{address}: invalid tag `{key}`")]
    Tag { address: Address, key: String },
    #[error("{address} is a {found}, not an ACM certificate")]
    WrongKind { address: Address, found: Kind },
}

impl From<AcmError> for ProviderError {
    fn from(err: AcmError) -> Self {
        // The chain is flattened here: ProviderError carries text, and the io error's message
        // names only the failure (never file contents).
        let mut text = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        ProviderError::Other(text)
    }
}

fn sdk_tags(address: &Address, stack: &str) -> Result<Vec<Tag>, ProviderError> {
    ownership_tags(stack, &address.id)
        .into_iter()
        .map(|(k, v)| {
            Tag::builder().key(k).value(v).build().map_err(|_| {
                AcmError::Tag {
                    address: address.clone(),
                    key: k.to_string(),
                }
                .into()
            })
        })
        .collect()
}

pub(super) async fn describe(
    p: &AwsProvider,
    arn: &str,
) -> Result<CertificateDetail, ProviderError> {
    let out = p
        .acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .map_err(|e| api_error("acm:DescribeCertificate", e))?;
    out.certificate.ok_or_else(|| ProviderError::Api {
        operation: "acm:DescribeCertificate".into(),
        code: "ResourceNotFoundException".into(),
        message: format!("no certificate in the answer for {arn}"),
    })
}

/// `NAME CNAME VALUE` per DNS validation record, one per line, without repeats (a wildcard and
/// its apex share one record).
fn validation_records(detail: &CertificateDetail) -> String {
    record_lines(detail.domain_validation_options().iter())
}

pub(super) fn record_lines<'a>(options: impl Iterator<Item = &'a DomainValidation>) -> String {
    let mut lines: Vec<String> = Vec::new();
    for option in options {
        if let Some(r) = option.resource_record() {
            let line = format!("{} {} {}", r.name(), r.r#type().as_str(), r.value());
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    lines.join("\n")
}

fn with_status(observed: Observed, detail: &CertificateDetail) -> Observed {
    observed.with_attribute(
        attributes::STATUS,
        detail.status().map(|s| s.as_str()).unwrap_or_default(),
    )
}

pub(super) fn observe_existing(
    address: Address,
    arn: &str,
    detail: &CertificateDetail,
) -> Observed {
    let observed = Observed::new(address, arn, Certificate::existing(arn).into())
        .with_attribute(attributes::ARN, arn);
    with_status(observed, detail)
}

/// An owned certificate in model form. `declared` is what the stack declares at this address,
/// for what ACM does not keep: whether and how long apply waits for ISSUED, and the PEM file
/// paths.
pub(super) async fn observe(
    p: &AwsProvider,
    address: Address,
    declared: Option<&Resource>,
    detail: &CertificateDetail,
) -> Result<Observed, ProviderError> {
    let arn = detail.certificate_arn().unwrap_or_default().to_string();
    let resource = if detail.r#type() == Some(&CertificateType::Imported) {
        observe_imported(p, &address, declared, &arn, detail).await?
    } else {
        let domain_name = detail.domain_name().unwrap_or_default().to_string();
        // ACM lists the domain name itself first among the alternative names.
        let alternative_names = detail
            .subject_alternative_names()
            .iter()
            .filter(|n| **n != domain_name)
            .cloned()
            .collect();
        // Where the validation records go is the stack's to say: ACM does not know.
        let (wait_for_issued, issued_within_seconds, validate_in) = match declared {
            Some(Resource::Certificate(Certificate::Request {
                wait_for_issued,
                issued_within_seconds,
                validate_in,
                ..
            })) => (
                *wait_for_issued,
                *issued_within_seconds,
                validate_in.clone(),
            ),
            _ => (false, None, None),
        };
        Certificate::Request {
            domain_name,
            alternative_names,
            wait_for_issued,
            issued_within_seconds,
            validate_in,
        }
    };
    let observed = Observed::new(address, arn.as_str(), resource.into())
        .with_attribute(attributes::ARN, arn.as_str())
        .with_attribute(attributes::VALIDATION_RECORDS, validation_records(detail));
    Ok(with_status(observed, detail))
}

/// An imported certificate. ACM keeps the certificate body but not where it came from, and never
/// returns the key: the declared paths are reported when the declared certificate file still
/// holds the body ACM has, otherwise the certificate_pem field names what ACM holds, so the
/// difference shows in the plan (and an update re-imports).
async fn observe_imported(
    p: &AwsProvider,
    address: &Address,
    declared: Option<&Resource>,
    arn: &str,
    detail: &CertificateDetail,
) -> Result<Certificate, ProviderError> {
    let held = format!(
        "(imported certificate, serial {})",
        detail.serial().unwrap_or("unknown")
    );
    let Some(Resource::Certificate(Certificate::Import {
        certificate_pem,
        private_key_pem,
        chain_pem,
    })) = declared
    else {
        return Ok(Certificate::Import {
            certificate_pem: held,
            private_key_pem: "(not readable from ACM)".into(),
            chain_pem: None,
        });
    };
    let in_acm = p
        .acm
        .get_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .map_err(|e| api_error("acm:GetCertificate", e))?;
    let on_disk = tokio::fs::read_to_string(certificate_pem).await.ok();
    let same = matches!(
        (in_acm.certificate(), on_disk.as_deref()),
        (Some(a), Some(b)) if a.trim() == b.trim()
    );
    tracing::debug!(%address, same, "acm: compared imported certificate with its file");
    Ok(Certificate::Import {
        certificate_pem: if same { certificate_pem.clone() } else { held },
        private_key_pem: private_key_pem.clone(),
        chain_pem: chain_pem.clone(),
    })
}

pub(super) async fn create(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
) -> Result<Observed, ProviderError> {
    let address = desired.address();
    let Resource::Certificate(cert) = &desired.resource else {
        return Err(AcmError::WrongKind {
            address,
            found: desired.resource.kind(),
        }
        .into());
    };
    let detail = match cert {
        Certificate::Existing { arn } => {
            let detail = match describe(p, arn).await {
                Err(err)
                    if is_not_found(&err) || error_code(&err) == Some("ValidationException") =>
                {
                    return Err(AcmError::ExistingMissing {
                        address,
                        arn: arn.clone(),
                    }
                    .into())
                }
                other => other?,
            };
            return Ok(observe_existing(address, arn, &detail));
        }
        Certificate::Request {
            domain_name,
            alternative_names,
            ..
        } => {
            let names = (domain_name.as_str(), alternative_names.as_slice());
            request(p, ctx, desired, names).await?
        }
        Certificate::Import { .. } => {
            tracing::debug!(%address, "acm: importing certificate");
            let lookup = || async {
                let owned = owned_certificates(p, ctx.stack).await?;
                Ok(owned
                    .into_iter()
                    .find(|(id, _)| *id == desired.id)
                    .map(|(_, arn)| arn))
            };
            let arn = create_once(p.options.max_attempts, lookup, || {
                import(p, ctx, &address, cert, None)
            })
            .await?;
            retry_not_found(VISIBLE_WITHIN, || describe(p, &arn)).await?
        }
    };
    write_validation(p, ctx, &address, cert, &detail).await?;
    observe(p, address, Some(&desired.resource), &detail).await
}

/// Request the certificate and wait for its validation records. ACM answers a token used
/// within the hour with that request's certificate, also when it was deleted since (apply,
/// destroy, apply again): a token whose certificate stays NotFound for the whole visibility
/// window is followed by the next one. Retries of one token never make a second certificate;
/// discovery by tags covers a run that stopped mid-request.
async fn request(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    names: (&str, &[String]),
) -> Result<CertificateDetail, ProviderError> {
    let address = desired.address();
    for generation in 0..TOKEN_GENERATIONS {
        let token = client_token(ctx.stack, &desired.id, &(&desired.resource, generation));
        let arn = request_with(p, ctx, &address, names, &token).await?;
        match wait_for_records(p, &arn).await {
            Err(err) if is_not_found(&err) => {
                tracing::debug!(%address, %arn, generation, "acm: the token named a deleted certificate");
            }
            other => return other,
        }
    }
    Err(AcmError::Missing {
        address,
        what: "certificate that is not deleted for any of its request tokens",
    }
    .into())
}

/// One RequestCertificate with `token`; the certificate's ARN.
async fn request_with(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    (domain_name, alternative_names): (&str, &[String]),
    token: &str,
) -> Result<String, ProviderError> {
    tracing::debug!(%address, %domain_name, "acm: requesting certificate");
    let out = p
        .acm
        .request_certificate()
        .domain_name(domain_name)
        .set_subject_alternative_names(
            (!alternative_names.is_empty()).then(|| alternative_names.to_vec()),
        )
        .validation_method(ValidationMethod::Dns)
        .idempotency_token(token)
        .set_tags(Some(sdk_tags(address, ctx.stack)?))
        .send()
        .await
        .map_err(|e| api_error("acm:RequestCertificate", e))?;
    Ok(out.certificate_arn.ok_or(AcmError::Missing {
        address: address.clone(),
        what: "certificate ARN",
    })?)
}

/// For a certificate validated in a zone: write its DNS validation records there (they are
/// served once this returns; ACM then issues it).
async fn write_validation(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    cert: &Certificate,
    detail: &CertificateDetail,
) -> Result<(), ProviderError> {
    let Some(zone) = cert.validated_in() else {
        return Ok(());
    };
    let mut records: Vec<(String, String)> = Vec::new();
    for option in detail.domain_validation_options() {
        if let Some(r) = option.resource_record() {
            let record = (r.name().to_string(), r.value().to_string());
            if !records.contains(&record) {
                records.push(record);
            }
        }
    }
    if records.is_empty() {
        return Err(AcmError::Missing {
            address: address.clone(),
            what: "DNS validation records",
        }
        .into());
    }
    crate::route53::record::write_validation(p, ctx, address, zone, &records).await
}

/// Describe a requested certificate, again for a short while until ACM has made its DNS validation
/// records (a requested certificate has none for its first seconds).
async fn wait_for_records(p: &AwsProvider, arn: &str) -> Result<CertificateDetail, ProviderError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let detail = retry_not_found(VISIBLE_WITHIN, || describe(p, arn)).await?;
        if !validation_records(&detail).is_empty() || start.elapsed() >= VISIBLE_WITHIN {
            return Ok(detail);
        }
        pause(delay, || {
            format!("stopped waiting for the validation records of {arn}")
        })
        .await?;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn read_pem(
    address: &Address,
    field: &'static str,
    path: &str,
) -> Result<Vec<u8>, ProviderError> {
    tokio::fs::read(path).await.map_err(|source| {
        AcmError::ReadPem {
            address: address.clone(),
            field,
            path: path.to_string(),
            source,
        }
        .into()
    })
}

/// ImportCertificate from the PEM files; with `arn`, re-import into that certificate (tags
/// may only be given on a first import).
async fn import(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    cert: &Certificate,
    arn: Option<&str>,
) -> Result<String, ProviderError> {
    let Certificate::Import {
        certificate_pem,
        private_key_pem,
        chain_pem,
    } = cert
    else {
        return Err(AcmError::Missing {
            address: address.clone(),
            what: "PEM files (not an imported certificate)",
        }
        .into());
    };
    let certificate = read_pem(address, "certificate_pem", certificate_pem).await?;
    let key = read_pem(address, "private_key_pem", private_key_pem).await?;
    let chain = match chain_pem {
        Some(path) => Some(read_pem(address, "chain_pem", path).await?),
        None => None,
    };
    let tags = if arn.is_none() {
        Some(sdk_tags(address, ctx.stack)?)
    } else {
        None
    };
    let out = p
        .acm
        .import_certificate()
        .set_certificate_arn(arn.map(str::to_string))
        .certificate(Blob::new(certificate))
        .private_key(Blob::new(key))
        .set_certificate_chain(chain.map(Blob::new))
        .set_tags(tags)
        .customize()
        .config_override(
            acm::config::Builder::default()
                .retry_config(aws_config::retry::RetryConfig::disabled()),
        )
        .send()
        .await
        .map_err(|e| api_error("acm:ImportCertificate", e))?;
    out.certificate_arn.ok_or_else(|| {
        AcmError::Missing {
            address: address.clone(),
            what: "certificate ARN",
        }
        .into()
    })
}

pub(super) async fn update(
    p: &AwsProvider,
    ctx: &Context<'_>,
    desired: &Declared,
    prior: &Observed,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    let address = desired.address();
    let Resource::Certificate(cert) = &desired.resource else {
        return Err(AcmError::WrongKind {
            address,
            found: desired.resource.kind(),
        }
        .into());
    };
    match cert {
        // New file contents (or paths): re-import into the same ARN, which listeners keep using.
        Certificate::Import { .. } => {
            import(p, ctx, &address, cert, Some(&prior.physical_id)).await?;
            // AWS keeps a certificate's tags across a re-import; moto drops them. Setting the
            // ownership tags again is a no-op on AWS and keeps the certificate owned on moto.
            p.acm
                .add_tags_to_certificate()
                .certificate_arn(&prior.physical_id)
                .set_tags(Some(sdk_tags(&address, ctx.stack)?))
                .send()
                .await
                .map_err(|e| api_error("acm:AddTagsToCertificate", e))?;
        }
        // Whether and how long apply waits for ISSUED, and where the validation records go, are
        // not properties of the certificate.
        Certificate::Request { .. }
            if changed.iter().all(|c| {
                c == "wait_for_issued" || c == "issued_within_seconds" || c == "validate_in"
            }) =>
        {
            if changed.iter().any(|c| c == "validate_in") {
                let detail = describe(p, &prior.physical_id).await?;
                write_validation(p, ctx, &address, cert, &detail).await?;
            }
        }
        _ => {
            if let Some(field) = changed.first() {
                return Err(AcmError::NotInPlace {
                    address,
                    field: field.clone(),
                }
                .into());
            }
        }
    }
    let detail = describe(p, &prior.physical_id).await?;
    match cert {
        Certificate::Existing { arn } => Ok(observe_existing(address, arn, &detail)),
        _ => observe(p, address, Some(&desired.resource), &detail).await,
    }
}

pub(super) async fn delete(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
) -> Result<(), ProviderError> {
    let address = &prior.address;
    // Managed elsewhere: never deleted by this stack.
    if matches!(
        prior.resource,
        Resource::Certificate(Certificate::Existing { .. })
    ) {
        tracing::debug!(%address, "acm: existing certificate left in place");
        return Ok(());
    }
    // Its validation records first: once the certificate is gone, nothing would find them
    // again, and a failed removal must leave the certificate for the next run to retry.
    remove_validation(p, ctx, prior).await?;
    let arn = prior.physical_id.as_str();
    let start = Instant::now();
    let mut delay = Duration::from_secs(1);
    loop {
        let result = p
            .acm
            .delete_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .map_err(|e| api_error("acm:DeleteCertificate", e));
        match result {
            // Gone already (an earlier attempt's answer was lost): its records still go.
            Ok(_) => break,
            Err(err) if is_not_found(&err) => break,
            // A listener that was just deleted or changed still holds the certificate for a while.
            Err(err)
                if error_code(&err) == Some("ResourceInUseException")
                    && start.elapsed() < IN_USE_RETRY =>
            {
                ctx.progress
                    .waiting(address, "in use by a load balancer", start.elapsed());
                pause(delay, || format!("not retried after {err}")).await?;
                delay = (delay * 2).min(Duration::from_secs(20));
            }
            Err(err) => return Err(err),
        }
    }
    wait_for(
        ctx.progress,
        address,
        "deleted",
        p.options.wait_timeout,
        || async {
            match describe(p, arn).await {
                Ok(_) => Ok(Poll::Pending("deleting".into())),
                Err(err) if is_not_found(&err) => Ok(Poll::Ready(())),
                Err(err) => Err(err),
            }
        },
    )
    .await
}

/// Remove the validation records the certificate wrote (and only those) from its zone.
async fn remove_validation(
    p: &AwsProvider,
    ctx: &Context<'_>,
    prior: &Observed,
) -> Result<(), ProviderError> {
    let Resource::Certificate(cert) = &prior.resource else {
        return Ok(());
    };
    let Some(zone) = cert.validated_in() else {
        return Ok(());
    };
    let zone_id = ctx.resolved.physical_id(zone)?;
    crate::route53::record::remove_owned(p, ctx, &prior.address, zone_id).await
}

pub(super) async fn read(
    p: &AwsProvider,
    stack: &Stack,
    address: &Address,
    physical_id: &str,
) -> Result<Option<Observed>, ProviderError> {
    let detail = match describe(p, physical_id).await {
        Err(err) if is_not_found(&err) => return Ok(None),
        other => other?,
    };
    let declared = stack.get(address).map(|d| &d.resource);
    if let Some(Resource::Certificate(Certificate::Existing { arn })) = declared {
        if arn == physical_id {
            return Ok(Some(observe_existing(address.clone(), arn, &detail)));
        }
    }
    observe(p, address.clone(), declared, &detail)
        .await
        .map(Some)
}

pub(super) async fn adopt(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<(), ProviderError> {
    // Managed elsewhere: adopting it by reference never tags it.
    if matches!(
        observed.resource,
        Resource::Certificate(Certificate::Existing { .. })
    ) {
        return Ok(());
    }
    p.acm
        .add_tags_to_certificate()
        .certificate_arn(&observed.physical_id)
        .set_tags(Some(sdk_tags(&observed.address, ctx.stack)?))
        .send()
        .await
        .map_err(|e| api_error("acm:AddTagsToCertificate", e))?;
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use acm::types::{DomainStatus, RecordType, ResourceRecord};

    fn option(domain: &str, name: &str) -> DomainValidation {
        option_with(domain, name, DomainStatus::PendingValidation)
    }

    /// A DNS validation option of `domain` with its CNAME at `name`, in `status`.
    pub(in crate::acm) fn option_with(
        domain: &str,
        name: &str,
        status: DomainStatus,
    ) -> DomainValidation {
        DomainValidation::builder()
            .domain_name(domain)
            .validation_status(status)
            .resource_record(
                ResourceRecord::builder()
                    .name(name)
                    .r#type(RecordType::Cname)
                    .value("_x.acm-validations.aws.")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn validation_records_are_lines_without_repeats() {
        let detail = CertificateDetail::builder()
            .domain_validation_options(option("example.com", "_a.example.com."))
            .domain_validation_options(option("*.example.com", "_a.example.com."))
            .domain_validation_options(option("www.example.org", "_b.example.org."))
            .build();
        assert_eq!(
            validation_records(&detail),
            "_a.example.com. CNAME _x.acm-validations.aws.\n_b.example.org. CNAME _x.acm-validations.aws."
        );
    }

    #[test]
    fn unreadable_pem_names_the_field_and_path_only() {
        let err: ProviderError = AcmError::ReadPem {
            address: Address::new(Kind::Certificate, "site"),
            field: "private_key_pem",
            path: "certs/key.pem".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory"),
        }
        .into();
        assert_eq!(
            err.to_string(),
            "acm_certificate.site: cannot read `private_key_pem` file `certs/key.pem`: No such file or directory"
        );
    }
}
