//! What every service module shares: error mapping, ownership tags, idempotent creates, waits.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use infra_core::provider::{Progress, TAG_ID, TAG_STACK};
use infra_core::{Address, ProviderError};
use sha2::{Digest, Sha256};

pub(crate) use crate::interrupt::pause;

/// The code of an answer with HTTP status 501: the endpoint does not implement the operation at
/// all. AWS never answers so for the APIs used here; LocalStack's free edition does for ELBv2,
/// Auto Scaling and RDS (`InternalFailure: ... not included in your current license plan`).
pub(crate) const NOT_IMPLEMENTED: &str = "NotImplemented";

/// What [`api_error`] needs beyond the error metadata: the HTTP status of the answer, if any.
pub(crate) trait HttpStatus {
    fn http_status(&self) -> Option<u16>;
}

impl<E> HttpStatus for SdkError<E, HttpResponse> {
    fn http_status(&self) -> Option<u16> {
        self.raw_response().map(|r| r.status().as_u16())
    }
}

/// An SDK error as a [`ProviderError::Api`] carrying the service's code and message.
/// `operation` reads `service:Operation`, e.g. `ec2:CreateSubnet`. An HTTP 501 answer gets the
/// code [`NOT_IMPLEMENTED`], the service's own code leading the message.
pub(crate) fn api_error<E>(operation: &str, err: E) -> ProviderError
where
    E: ProvideErrorMetadata + HttpStatus + std::error::Error + 'static,
{
    if crate::interrupt::is_interrupted(&err) {
        return ProviderError::Interrupted(format!("{operation} was not retried"));
    }
    let code = err.code().map(str::to_string);
    let message = err.message().map(str::to_string);
    if err.http_status() == Some(501) {
        return ProviderError::Api {
            operation: operation.to_string(),
            code: NOT_IMPLEMENTED.to_string(),
            message: [code, message]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": "),
        };
    }
    match (code, message) {
        (Some(code), message) => ProviderError::Api {
            operation: operation.to_string(),
            code,
            message: message.unwrap_or_default(),
        },
        // No service error: the request never got an answer (connection refused, timeout).
        (None, _) => ProviderError::Api {
            operation: operation.to_string(),
            code: "RequestFailed".to_string(),
            message: DisplayErrorContext(&err).to_string(),
        },
    }
}

/// The AWS error code, if this is a service error.
pub(crate) fn error_code(err: &ProviderError) -> Option<&str> {
    match err {
        ProviderError::Api { code, .. } => Some(code.as_str()),
        _ => None,
    }
}

/// Codes meaning "that resource does not exist", across the services used here.
pub(crate) fn is_not_found(err: &ProviderError) -> bool {
    error_code(err).is_some_and(|code| {
        code.ends_with(".NotFound")
            || code.ends_with("NotFound")
            || code.ends_with("NotFoundFault")
            // EC2's `InvalidLaunchTemplateName.NotFoundException`, ACM's and SSM's
            // `ResourceNotFoundException`.
            || code.ends_with("NotFoundException")
            || code == "NoSuchBucket"
            // IAM's.
            || code == "NoSuchEntity"
            || code == "ValidationError" && err.to_string().contains("not found")
    })
}

/// Whether retrying the same call may succeed: throttling, 5xx, dropped connections.
pub fn is_retryable(err: &ProviderError) -> bool {
    error_code(err).is_some_and(|code| {
        matches!(
            code,
            "Throttling"
                | "ThrottlingException"
                | "ThrottledException"
                | "RequestLimitExceeded"
                | "TooManyRequestsException"
                | "RequestThrottled"
                | "SlowDown"
                | "InternalError"
                | "InternalFailure"
                | "ServiceUnavailable"
                | "RequestFailed"
        ) || code.starts_with("InternalServer")
    })
}

/// The ownership tags every created resource carries, as (key, value) pairs.
pub(crate) fn ownership_tags(stack: &str, id: &str) -> [(&'static str, String); 2] {
    [(TAG_STACK, stack.to_string()), (TAG_ID, id.to_string())]
}

/// Reads the logical id from a resource's tags when they mark it as owned by `stack`.
pub(crate) fn owned_id<'a, I>(stack: &str, tags: I) -> Option<String>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut in_stack = false;
    let mut id = None;
    for (key, value) in tags {
        if key == TAG_STACK && value == stack {
            in_stack = true;
        } else if key == TAG_ID {
            id = Some(value.to_string());
        }
    }
    id.filter(|_| in_stack)
}

/// A client token for APIs that have one: the same stack, id and desired content always give
/// the same token, so a create retried after a lost response is recognised by AWS.
/// 32 hex characters (ACM's limit; EC2 accepts 64).
pub(crate) fn client_token(stack: &str, id: &str, desired: &impl serde::Serialize) -> String {
    let mut hash = Sha256::new();
    hash.update(stack.as_bytes());
    hash.update([0]);
    hash.update(id.as_bytes());
    hash.update([0]);
    hash.update(serde_json::to_vec(desired).expect("resources serialize"));
    hex::encode(&hash.finalize()[..16])
}

/// Create without ever making a duplicate, for APIs without client tokens (and where AWS or the
/// emulator would accept a duplicate): before each attempt, look for a resource already tagged
/// with this stack and id and adopt it; retry only retryable failures. The `create` call must
/// be sent with SDK retries disabled (`customize().config_override(...)`), so a lost response
/// is followed by a lookup, never by a blind second create.
pub(crate) async fn create_once<T, L, LF, C, CF>(
    attempts: u32,
    mut lookup: L,
    mut create: C,
) -> Result<T, ProviderError>
where
    L: FnMut() -> LF,
    LF: Future<Output = Result<Option<T>, ProviderError>>,
    C: FnMut() -> CF,
    CF: Future<Output = Result<T, ProviderError>>,
{
    let mut delay = Duration::from_millis(500);
    let mut attempt = 1;
    // Whether an earlier attempt may have made the resource (its answer never came).
    let mut maybe_made = false;
    loop {
        if let Some(existing) = lookup().await? {
            return Ok(existing);
        }
        let err = match create().await {
            Ok(created) => return Ok(created),
            Err(err) if attempt < attempts && is_retryable(&err) => {
                tracing::debug!(attempt, error = %err, "create failed; checking for the resource before retrying");
                maybe_made = true;
                err
            }
            // The lookup missed what the lost attempt made (AWS reads are eventually
            // consistent), and the name is now taken: most likely by us, so look again.
            Err(err) if attempt < attempts && maybe_made && is_name_taken(&err) => {
                tracing::debug!(attempt, error = %err, "the name is taken after a lost answer; looking again");
                err
            }
            Err(err) => return Err(err),
        };
        pause(delay, || format!("not retried after {err}")).await?;
        delay = (delay * 2).min(Duration::from_secs(20));
        attempt += 1;
    }
}

/// Codes meaning "what must be unique (a name, a subnet's CIDR, a listener's port, a rule's
/// priority) is taken", for the creates guarded by [`create_once`].
fn is_name_taken(err: &ProviderError) -> bool {
    error_code(err).is_some_and(|code| {
        matches!(
            code,
            "InvalidSubnet.Conflict"
                | "InvalidGroup.Duplicate"
                | "InvalidLaunchTemplateName.AlreadyExistsException"
                | "DuplicateTargetGroupName"
                | "DuplicateLoadBalancerName"
                | "DuplicateListener"
                | "PriorityInUse"
                | "AlreadyExists"
                | "DBInstanceAlreadyExists"
                | "DBSubnetGroupAlreadyExists"
        )
    })
}

/// One look at something being waited for.
pub(crate) enum Poll<T> {
    Ready(T),
    /// Not yet; the cloud's current status, shown to the user.
    Pending(String),
}

/// Poll `check` until it is ready: first look at once, then after 1 s, growing 1.5x to 15 s,
/// reporting each pending status with the elapsed time. Fails after `timeout`.
pub(crate) async fn wait_for<T, F, Fut>(
    progress: &dyn Progress,
    address: &Address,
    what: &str,
    timeout: Duration,
    mut check: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, ProviderError>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_secs(1);
    loop {
        match check().await? {
            Poll::Ready(value) => return Ok(value),
            Poll::Pending(status) => {
                let elapsed = start.elapsed();
                if elapsed >= timeout {
                    return Err(ProviderError::Timeout {
                        what: format!("{address} to be {what} (last status: {status})"),
                        seconds: elapsed.as_secs(),
                    });
                }
                progress.waiting(address, &status, elapsed);
                pause(delay, || {
                    format!("stopped waiting for {address} to be {what} (last status: {status})")
                })
                .await?;
                delay = delay.mul_f32(1.5).min(Duration::from_secs(15));
            }
        }
    }
}

/// How long a resource just created may answer NotFound (eventual consistency).
pub(crate) const VISIBLE_WITHIN: Duration = Duration::from_secs(60);

/// Eventual consistency: a resource just created may answer NotFound for a few seconds.
/// Retries `call` while it reports NotFound, for at most `within`.
pub(crate) async fn retry_not_found<T, F, Fut>(
    within: Duration,
    call: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let backoff = (Duration::from_millis(250), Duration::from_secs(5));
    retry_while(
        within,
        backoff,
        is_not_found,
        "not visible yet after create",
        call,
    )
    .await
}

/// Retries `call` while its error passes `transient`, for at most `within`, sleeping from
/// `backoff.0` doubling up to `backoff.1` between attempts.
pub(crate) async fn retry_while<T, F, Fut>(
    within: Duration,
    backoff: (Duration, Duration),
    transient: fn(&ProviderError) -> bool,
    what: &str,
    mut call: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let start = Instant::now();
    let mut delay = backoff.0;
    loop {
        match call().await {
            Err(err) if transient(&err) && start.elapsed() < within => {
                tracing::debug!(error = %err, "{what}; retrying");
                pause(delay, || format!("not retried after {err}")).await?;
                delay = (delay * 2).min(backoff.1);
            }
            other => return other,
        }
    }
}

/// How long EC2 and Auto Scaling may refuse a new instance profile: IAM is eventually
/// consistent, and terraform-provider-aws retries for its IAM propagation timeout, 2 minutes
/// (`internal/service/iam`'s `propagationTimeout`, used by the launch-configuration and
/// instance creates on "Invalid IamInstanceProfile").
pub(crate) const PROFILE_PROPAGATION: Duration = Duration::from_secs(120);

/// EC2's "Value (x) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance
/// Profile name" and Auto Scaling's "Invalid IamInstanceProfile": a profile not visible yet.
pub(crate) fn is_new_profile_error(err: &ProviderError) -> bool {
    let ProviderError::Api { code, message, .. } = err else {
        return false;
    };
    let message = message.to_ascii_lowercase();
    matches!(
        code.as_str(),
        "InvalidParameterValue" | "ValidationError" | "InvalidParameter"
    ) && (message.contains("iaminstanceprofile") || message.contains("iam instance profile"))
}

/// Retries `call` while it refuses a new instance profile, for at most [`PROFILE_PROPAGATION`].
pub(crate) async fn retry_new_profile<T, F, Fut>(call: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let backoff = (Duration::from_secs(1), Duration::from_secs(10));
    let what = "the instance profile is not visible yet";
    retry_while(
        PROFILE_PROPAGATION,
        backoff,
        is_new_profile_error,
        what,
        call,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn api(code: &str) -> ProviderError {
        ProviderError::Api {
            operation: "ec2:CreateVpc".into(),
            code: code.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn classifies_throttling_and_not_found() {
        assert!(is_retryable(&api("RequestLimitExceeded")));
        assert!(is_retryable(&api("Throttling")));
        assert!(is_retryable(&api("ServiceUnavailable")));
        assert!(!is_retryable(&api("InvalidParameterValue")));
        assert!(is_not_found(&api("InvalidVpcID.NotFound")));
        assert!(is_not_found(&api("DBInstanceNotFound")));
        assert!(is_not_found(&api("NoSuchBucket")));
        assert!(is_not_found(&api(
            "InvalidLaunchTemplateName.NotFoundException"
        )));
        assert!(!is_not_found(&api("DependencyViolation")));
    }

    #[test]
    fn a_501_answer_is_not_implemented_and_keeps_the_service_code() {
        use aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError;
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;
        let answer = |status: u16| {
            let meta = ErrorMetadata::builder()
                .code("InternalFailure")
                .message("The API for service rds is not included in your current license plan")
                .build();
            let response = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
            SdkError::service_error(DescribeDBInstancesError::generic(meta), response)
        };
        let unserved = api_error("rds:DescribeDBInstances", answer(501));
        assert_eq!(error_code(&unserved), Some(NOT_IMPLEMENTED));
        assert!(!is_retryable(&unserved));
        assert_eq!(
            unserved.to_string(),
            "rds:DescribeDBInstances: NotImplemented: InternalFailure: The API for service rds is not included in your current license plan"
        );
        let failed = api_error("rds:DescribeDBInstances", answer(500));
        assert_eq!(error_code(&failed), Some("InternalFailure"));
        assert!(is_retryable(&failed));
    }

    #[test]
    fn owned_id_requires_the_stack_tag() {
        let tags = [("infra:stack", "closet"), ("infra:id", "main")];
        assert_eq!(owned_id("closet", tags), Some("main".into()));
        assert_eq!(owned_id("other", tags), None);
        assert_eq!(owned_id("closet", [("infra:id", "main")]), None);
    }

    #[test]
    fn client_tokens_are_stable_and_content_sensitive() {
        let a = client_token("s", "id", &"x");
        assert_eq!(a, client_token("s", "id", &"x"));
        assert_ne!(a, client_token("s", "id", &"y"));
        assert_eq!(a.len(), 32);
    }

    #[tokio::test]
    async fn create_once_adopts_what_a_lost_response_created() {
        let created = Cell::new(0);
        let exists = Cell::new(false);
        let result = create_once(
            5,
            || {
                let found = exists.get().then_some("vpc-1");
                async move { Ok(found) }
            },
            || {
                created.set(created.get() + 1);
                exists.set(true);
                // The resource was made but the answer was lost.
                async { Err::<&str, _>(api("RequestFailed")) }
            },
        )
        .await;
        assert_eq!(result.unwrap(), "vpc-1");
        assert_eq!(created.get(), 1);
    }

    #[tokio::test]
    async fn create_once_looks_again_when_a_lost_create_took_the_name() {
        let creates = Cell::new(0);
        let lookups = Cell::new(0);
        let result = create_once(
            5,
            || {
                lookups.set(lookups.get() + 1);
                // The second lookup does not see the first create yet (eventual consistency).
                let found = (lookups.get() > 2).then_some("db-1");
                async move { Ok(found) }
            },
            || {
                creates.set(creates.get() + 1);
                let answer = if creates.get() == 1 {
                    api("RequestFailed")
                } else {
                    api("DBInstanceAlreadyExists")
                };
                async move { Err::<&str, _>(answer) }
            },
        )
        .await;
        assert_eq!(result.unwrap(), "db-1");
        assert_eq!((creates.get(), lookups.get()), (2, 3));
    }

    #[tokio::test]
    async fn create_once_reports_a_taken_name_at_once_when_nothing_was_lost() {
        let result = create_once(
            5,
            || async { Ok(None::<&str>) },
            || async { Err::<&str, _>(api("DuplicateTargetGroupName")) },
        )
        .await;
        assert_eq!(
            error_code(&result.unwrap_err()),
            Some("DuplicateTargetGroupName")
        );
    }
}
