//! Issue #16, part 1: the HTTPS listener is created only once its requested certificate is
//! ISSUED, with the DNS validation records shown once while apply waits; a certificate that does
//! not issue in time fails the apply with what is missing, before any HTTPS listener exists.
//!
//! moto keeps a requested certificate PENDING_VALIDATION for `MOTO_ACM_VALIDATION_WAIT` seconds
//! but lets a listener use it at once; the fault proxy plays ELB's part and refuses such a
//! CreateListener with `UnsupportedCertificate`. The proxy sees requests, not answers: when
//! moto answered ISSUED is known from the time since the RequestCertificate call.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use infra_tests::proxy::{CountingProxy, Fault, Operation, ProxyOptions};
use infra_tests::Emulator;

use crate::aws::Aws;
use crate::support::{edited_stack, infra, stack_file, upstream, TempDir};

const STACK: &str = "closet";
/// How long moto keeps the requested certificate PENDING_VALIDATION in the first test.
const VALIDATION_WAIT: Duration = Duration::from_secs(12);
/// How long ELB keeps refusing the certificate after the first CreateListener that uses it.
const ELB_LAG: Duration = Duration::from_secs(3);
/// The proxy sees a request just before moto does: clock slack between the two.
const SLACK: Duration = Duration::from_millis(200);

/// One request as the proxy saw it.
struct Seen {
    name: String,
    /// A CreateListener naming a certificate (the HTTPS listener).
    https_create: bool,
    at: Instant,
    /// Answered `UnsupportedCertificate` by the proxy instead of forwarded.
    refused: bool,
}

fn is_https_create(operation: &Operation) -> bool {
    operation.name == "CreateListener"
        && operation
            .params
            .contains("Certificates.member.1.CertificateArn")
}

/// A proxy that records when each request came and refuses a CreateListener with a certificate
/// as ELB does: before ACM issued it (`VALIDATION_WAIT` after the request), and for `ELB_LAG`
/// after the first such call.
fn elb_like_proxy(emulator: &Emulator) -> (CountingProxy, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let log = Arc::clone(&seen);
    let faults = Arc::new(move |operation: &Operation, _| {
        let now = Instant::now();
        let mut log = log.lock().unwrap();
        let requested = log
            .iter()
            .find(|s| s.name == "RequestCertificate")
            .map(|s| s.at);
        let first_https = log.iter().find(|s| s.https_create).map(|s| s.at);
        let https_create = is_https_create(operation);
        let refused = https_create
            && (requested.is_none_or(|at| now < at + VALIDATION_WAIT)
                || first_https.is_none_or(|at| now < at + ELB_LAG));
        log.push(Seen {
            name: operation.name.clone(),
            https_create,
            at: now,
            refused,
        });
        if refused {
            Fault::error(
                operation,
                400,
                "UnsupportedCertificate",
                "The certificate must have a fully-qualified domain name, a supported signature, and a supported key size.",
            )
        } else {
            Fault::Forward
        }
    });
    let proxy = CountingProxy::with_options(
        upstream(emulator),
        ProxyOptions {
            faults: Some(faults),
            ..ProxyOptions::default()
        },
    );
    (proxy, seen)
}

/// The certificate's ARN, status and DNS validation records (`NAME TYPE VALUE`), from ACM.
async fn certificate(aws: &Aws) -> (String, String, Vec<String>) {
    let certificates = aws.certificates(STACK).await;
    let (arn, _) = certificates.get("site").expect("the certificate exists");
    let detail = aws.certificate_detail(arn).await;
    let records = detail
        .domain_validation_options()
        .iter()
        .filter_map(|o| o.resource_record())
        .map(|r| format!("{} {} {}", r.name(), r.r#type().as_str(), r.value()))
        .collect();
    let status = detail.status().map(|s| s.as_str().to_string());
    (arn.clone(), status.unwrap_or_default(), records)
}

/// The listeners of the stack's load balancer, by port.
async fn listeners(
    aws: &Aws,
) -> std::collections::BTreeMap<i32, aws_sdk_elasticloadbalancingv2::types::Listener> {
    let load_balancers = aws.load_balancers(STACK).await;
    let alb = load_balancers.get("alb").expect("the load balancer exists");
    aws.listeners(alb.load_balancer_arn().unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_https_listener_waits_for_the_issued_certificate_and_the_records_show_once() {
    let emulator = Emulator::with_acm_validation_wait(VALIDATION_WAIT.as_secs());
    let (proxy, seen) = elb_like_proxy(&emulator);
    let run = infra(
        &proxy.endpoint(),
        &["apply", &stack_file("closet.rs"), "--auto-approve"],
    );
    run.assert_success();

    let aws = Aws::connect(&emulator.endpoint()).await;
    let (arn, status, records) = certificate(&aws).await;
    assert_eq!(status, "ISSUED");
    let https = &listeners(&aws).await[&443];
    assert_eq!(
        https
            .certificates()
            .first()
            .and_then(|c| c.certificate_arn()),
        Some(arn.as_str())
    );

    let seen = seen.lock().unwrap();
    let requested = seen
        .iter()
        .find(|s| s.name == "RequestCertificate")
        .expect("the certificate was requested")
        .at;
    let issued = requested + VALIDATION_WAIT;
    let https_creates: Vec<&Seen> = seen.iter().filter(|s| s.https_create).collect();
    let first_https = https_creates.first().expect("an HTTPS CreateListener").at;
    assert!(
        first_https + SLACK >= issued,
        "the HTTPS listener was asked for {:?} after the request, before moto issued the certificate ({VALIDATION_WAIT:?})",
        first_https - requested
    );
    assert!(
        seen.iter().any(|s| s.name == "DescribeCertificate"
            && s.at + SLACK >= issued
            && s.at <= first_https),
        "no DescribeCertificate after the certificate was issued and before the HTTPS listener"
    );
    let refused = https_creates.iter().filter(|s| s.refused).count();
    let forwarded = https_creates.len() - refused;
    assert!(
        refused >= 1,
        "ELB's late view of the certificate was never met"
    );
    assert_eq!(
        forwarded, 1,
        "one HTTPS CreateListener reached the emulator"
    );

    let output = run.output();
    assert_eq!(
        output.matches("Note acm_certificate.site:").count(),
        1,
        "the validation records show once:\n{output}"
    );
    assert!(!records.is_empty());
    for record in &records {
        assert!(
            output.contains(record.as_str()),
            "{record} is not shown:\n{output}"
        );
    }
    assert!(
        output.contains("waiting for acm_certificate.site: PENDING_VALIDATION"),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_not_issued_in_time_fails_with_what_is_missing_before_any_https_listener() {
    // Pending for an hour; the stack allows 4 seconds.
    let emulator = Emulator::with_acm_validation_wait(3600);
    let dir = TempDir::new("https-timeout");
    let stack = edited_stack(
        &dir,
        "closet.rs",
        &[(
            "Certificate::request(DOMAIN)",
            "Certificate::request(DOMAIN).issued_within(Duration::from_secs(4))",
        )],
    );
    let (proxy, seen) = elb_like_proxy(&emulator);
    let run = infra(&proxy.endpoint(), &["apply", &stack, "--auto-approve"]);
    assert_eq!(run.code, Some(1), "{}", run.output());

    let aws = Aws::connect(&emulator.endpoint()).await;
    let (arn, status, records) = certificate(&aws).await;
    assert_eq!(status, "PENDING_VALIDATION");
    let listeners = listeners(&aws).await;
    assert!(
        !listeners.contains_key(&443),
        "an HTTPS listener exists: {listeners:?}"
    );
    assert!(
        !seen.lock().unwrap().iter().any(|s| s.https_create),
        "an HTTPS CreateListener was sent"
    );

    let output = run.output();
    for expected in [
        "failed to create elbv2_listener.https",
        "acm_certificate.site",
        arn.as_str(),
        "is still PENDING_VALIDATION",
        ".issued_within(Duration::from_secs(N))",
    ] {
        assert!(output.contains(expected), "`{expected}` missing:\n{output}");
    }
    assert!(!records.is_empty());
    for record in &records {
        assert!(
            output.contains(&format!("  {record}")),
            "{record} is not in the error:\n{output}"
        );
    }
}
