//! The wait for ISSUED: ELB refuses a certificate that is not, so a requested certificate (and
//! every HTTPS listener) waits for it, handing the user the DNS validation records meanwhile.

use std::sync::Mutex;
use std::time::Duration;

use acm::types::{CertificateDetail, CertificateStatus, DomainStatus};
use aws_sdk_acm as acm;
use infra_core::model::{Certificate, Resource};
use infra_core::provider::{Context, Progress};
use infra_core::{Address, Observed, ProviderError};

use super::certificate::{describe, observe, record_lines, VISIBLE_WITHIN};
use crate::support::{retry_not_found, wait_for, Poll};
use crate::AwsProvider;

/// How long apply waits for ISSUED unless the stack says (`issued_within`): the create timeout
/// of terraform-provider-aws's `aws_acm_certificate_validation`
/// (internal/service/acm/certificate_validation.go), which also fails at once on FAILED and
/// REVOKED with ACM's reason.
const ISSUED_WITHIN: Duration = Duration::from_secs(75 * 60);

#[derive(Debug, thiserror::Error)]
enum IssuedError {
    #[error("{address}: certificate `{arn}` is {status}{reason}; it will not become ISSUED (request a new one)")]
    NotIssued {
        address: Address,
        arn: String,
        status: String,
        /// ` (reason: ...)` from ACM, or empty.
        reason: String,
    },
    #[error(
        "{address}: certificate `{arn}` is still {status} after {seconds}s; ACM issues it once \
         these DNS validation records exist:\n{records}\nCreate them where the domain's DNS is \
         served and apply again, or allow longer than {limit}s with \
         `Certificate::request(..).issued_within(Duration::from_secs(N))` in the stack."
    )]
    NotIssuedInTime {
        address: Address,
        arn: String,
        status: String,
        seconds: u64,
        limit: u64,
        /// One indented `NAME TYPE VALUE` line per record still missing.
        records: String,
    },
}

impl From<IssuedError> for ProviderError {
    fn from(err: IssuedError) -> Self {
        ProviderError::Other(err.to_string())
    }
}

/// The DNS validation records of the names ACM has not validated yet, as
/// [`record_lines`].
fn missing_records(detail: &CertificateDetail) -> String {
    record_lines(
        detail
            .domain_validation_options()
            .iter()
            .filter(|o| o.validation_status() != Some(&DomainStatus::Success)),
    )
}

pub(super) async fn wait_ready(
    p: &AwsProvider,
    ctx: &Context<'_>,
    observed: &Observed,
) -> Result<Observed, ProviderError> {
    let Resource::Certificate(Certificate::Request {
        wait_for_issued: true,
        ..
    }) = &observed.resource
    else {
        return Ok(observed.clone());
    };
    let detail = wait_issued(p, ctx.progress, observed).await?;
    observe(
        p,
        observed.address.clone(),
        Some(&observed.resource),
        &detail,
    )
    .await
}

/// How long apply waits for this certificate to be ISSUED.
fn issued_within(resource: &Resource) -> Duration {
    match resource {
        Resource::Certificate(Certificate::Request {
            issued_within_seconds: Some(seconds),
            ..
        }) => Duration::from_secs(*seconds),
        _ => ISSUED_WITHIN,
    }
}

/// Wait until ACM reports the certificate ISSUED, for as long as its stack allows. While it is
/// pending, report its status and hand the user the DNS validation records still missing; a
/// status it never leaves (FAILED, VALIDATION_TIMED_OUT, REVOKED, EXPIRED...) fails at once, and
/// the timeout names what is missing. An imported or existing certificate takes one describe.
pub(super) async fn wait_issued(
    p: &AwsProvider,
    progress: &dyn Progress,
    certificate: &Observed,
) -> Result<CertificateDetail, ProviderError> {
    let address = &certificate.address;
    let arn = certificate.physical_id.as_str();
    let limit = issued_within(&certificate.resource);
    let last_pending: Mutex<Option<CertificateDetail>> = Mutex::new(None);
    let waited = wait_for(progress, address, "ISSUED", limit, || async {
        let detail = retry_not_found(VISIBLE_WITHIN, || describe(p, arn)).await?;
        match detail.status() {
            Some(CertificateStatus::Issued) => Ok(Poll::Ready(detail)),
            Some(CertificateStatus::PendingValidation) | None => {
                let records = missing_records(&detail);
                if !records.is_empty() {
                    // Shown once by the engine, however often the wait repeats it.
                    progress.notice(
                        address,
                        &format!(
                            "create these DNS records to validate the certificate (ACM issues it once they resolve):\n{records}"
                        ),
                    );
                }
                let status = status_of(&detail);
                *last_pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(detail);
                Ok(Poll::Pending(status))
            }
            Some(_) => Err(not_issued(address, arn, &detail)),
        }
    })
    .await;
    match waited {
        Err(ProviderError::Timeout { seconds, .. }) => {
            let last = last_pending.into_inner().unwrap_or_else(|e| e.into_inner());
            Err(not_issued_in_time(
                address,
                arn,
                last.as_ref(),
                seconds,
                limit,
            ))
        }
        other => other,
    }
}

fn status_of(detail: &CertificateDetail) -> String {
    detail
        .status()
        .map_or("PENDING_VALIDATION", |s| s.as_str())
        .to_string()
}

/// A status ACM never leaves for ISSUED, with ACM's reason where it gives one.
fn not_issued(address: &Address, arn: &str, detail: &CertificateDetail) -> ProviderError {
    let reason = detail
        .failure_reason()
        .map(|r| r.as_str())
        .or_else(|| detail.revocation_reason().map(|r| r.as_str()))
        .map(|r| format!(" (reason: {r})"))
        .unwrap_or_default();
    IssuedError::NotIssued {
        address: address.clone(),
        arn: arn.to_string(),
        status: status_of(detail),
        reason,
    }
    .into()
}

fn not_issued_in_time(
    address: &Address,
    arn: &str,
    last: Option<&CertificateDetail>,
    seconds: u64,
    limit: Duration,
) -> ProviderError {
    let records = last.map(missing_records).unwrap_or_default();
    let records = if records.is_empty() {
        "  (ACM has published none yet)".to_string()
    } else {
        records
            .lines()
            .map(|line| format!("  {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    IssuedError::NotIssuedInTime {
        address: address.clone(),
        arn: arn.to_string(),
        status: last.map_or_else(|| "PENDING_VALIDATION".to_string(), status_of),
        seconds,
        limit: limit.as_secs(),
        records,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acm::certificate::tests::option_with;
    use infra_core::Kind;

    #[test]
    fn the_timeout_names_the_certificate_its_status_the_missing_records_and_the_setting() {
        let detail = CertificateDetail::builder()
            .status(CertificateStatus::PendingValidation)
            .domain_validation_options(option_with(
                "example.com",
                "_a.example.com.",
                DomainStatus::PendingValidation,
            ))
            .domain_validation_options(option_with(
                "www.example.org",
                "_b.example.org.",
                DomainStatus::Success,
            ))
            .build();
        let err = not_issued_in_time(
            &Address::new(Kind::Certificate, "site"),
            "arn:aws:acm:ap-northeast-2:1:certificate/x",
            Some(&detail),
            301,
            Duration::from_secs(300),
        );
        assert_eq!(
            err.to_string(),
            "acm_certificate.site: certificate `arn:aws:acm:ap-northeast-2:1:certificate/x` is \
             still PENDING_VALIDATION after 301s; ACM issues it once these DNS validation records \
             exist:\n  _a.example.com. CNAME _x.acm-validations.aws.\nCreate them where the \
             domain's DNS is served and apply again, or allow longer than 300s with \
             `Certificate::request(..).issued_within(Duration::from_secs(N))` in the stack."
        );
    }

    #[test]
    fn a_failed_certificate_shows_acms_reason() {
        let detail = CertificateDetail::builder()
            .status(CertificateStatus::Failed)
            .failure_reason(acm::types::FailureReason::CaaError)
            .build();
        let err = not_issued(&Address::new(Kind::Certificate, "site"), "arn:c", &detail);
        assert_eq!(
            err.to_string(),
            "acm_certificate.site: certificate `arn:c` is FAILED (reason: CAA_ERROR); it will not \
             become ISSUED (request a new one)"
        );
    }
}
