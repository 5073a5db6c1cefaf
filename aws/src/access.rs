//! The first call. Before discovery, one cheap call (STS GetCallerIdentity: it needs no
//! permission, and Terraform's AWS provider makes the same check) tells an endpoint that
//! cannot be reached, missing credentials or credentials AWS refuses apart from everything
//! else, at once and in one message. A connection refused or a host that does not resolve is
//! not retried here: at the first call it is a setting, not a fault.

use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::dns::ResolveDnsError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, InterceptorContext,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::AwsProvider;

/// How long the first call may take to connect, and to be answered.
const CONNECT_WITHIN: Duration = Duration::from_secs(3);
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Codes with which AWS refuses the credentials themselves.
const REFUSED: [&str; 6] = [
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
];

/// Why no call can work, with where the call went, the region and where credentials come from.
/// Its message is Cargo-style lines (`help:` last); its source is the SDK's error.
#[derive(Debug)]
pub struct AccessError {
    pub problem: Problem,
    /// The URL called and what set it.
    pub endpoint: String,
    pub region: String,
    /// Where the credentials come from, or were looked for.
    pub credentials: String,
    endpoint_from_env: bool,
    detail: SdkError<GetCallerIdentityError, HttpResponse>,
}

/// What went wrong at the first call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// No source had credentials (`loaded: false`), or one failed (an expired SSO token...).
    NoCredentials {
        failed: bool,
    },
    ConnectionRefused,
    HostNotFound,
    /// No route, or no connection within a few seconds.
    Unreachable,
    /// Connected, but no answer came.
    NoAnswer,
    /// AWS answered that the credentials are not valid.
    CredentialsRefused {
        code: String,
        message: String,
    },
}

impl AwsProvider {
    /// Make the first call (see the module): `Ok` unless it shows that no call can work. Any
    /// other failure (a 5xx, an endpoint without STS) is left for the calls that follow.
    pub async fn check_access(&self) -> Result<(), AccessError> {
        let dialed = Dialed::default();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_WITHIN)
            .operation_attempt_timeout(ANSWER_WITHIN)
            .build();
        let result = self
            .sts
            .get_caller_identity()
            .customize()
            .interceptor(dialed.clone())
            .config_override(
                aws_sdk_sts::config::Builder::default()
                    .timeout_config(timeouts)
                    .retry_classifier(SettingsAreFinal),
            )
            .send()
            .await;
        let detail = match result {
            Ok(caller) => {
                tracing::debug!(arn = caller.arn(), "calling AWS as");
                // The account id log-bucket policies name: no second call for it.
                if let Some(account) = caller.account() {
                    let _ = self.account.set(account.to_string());
                }
                return Ok(());
            }
            Err(err) => err,
        };
        let Some(problem) = Problem::of(&detail) else {
            tracing::debug!(error = %aws_smithy_types::error::display::DisplayErrorContext(&detail), "the first call failed; going on");
            return Ok(());
        };
        let (endpoint, endpoint_from_env) = self.endpoint_origin(dialed.url());
        Err(AccessError {
            problem,
            endpoint,
            region: self.region.clone(),
            credentials: credential_sources(),
            endpoint_from_env,
            detail,
        })
    }

    /// The endpoint called (or the configured one), and whether the environment set it.
    fn endpoint_origin(&self, dialed: Option<String>) -> (String, bool) {
        let var = ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]
            .into_iter()
            .find(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
        let url = dialed
            .or_else(|| self.endpoint_url.clone())
            .map(|u| u.trim_end_matches('/').to_string());
        match (url, var) {
            (Some(url), Some(var)) => (format!("{url} ({var})"), true),
            (Some(url), None) if self.endpoint_url.is_some() => (
                format!("{url} (endpoint_url in the AWS config file)"),
                false,
            ),
            (Some(url), None) => (
                format!("{url} (AWS's own; AWS_ENDPOINT_URL is not set)"),
                false,
            ),
            (None, _) => (
                "AWS's own for the region (AWS_ENDPOINT_URL is not set)".into(),
                false,
            ),
        }
    }
}

impl Problem {
    /// The problem `err` shows, if it is one that no later call can get past.
    fn of(err: &SdkError<GetCallerIdentityError, HttpResponse>) -> Option<Problem> {
        if let Some(code) = err.code().filter(|c| REFUSED.contains(c)) {
            return Some(Problem::CredentialsRefused {
                code: code.to_string(),
                message: err.message().unwrap_or_default().to_string(),
            });
        }
        if let Some(credentials) = find::<CredentialsError>(err) {
            let failed = !matches!(credentials, CredentialsError::CredentialsNotLoaded(_));
            return Some(Problem::NoCredentials { failed });
        }
        match err {
            SdkError::DispatchFailure(failure) => Some(
                failure
                    .as_connector_error()
                    .and_then(|c| connect_failure(c))
                    .unwrap_or(Problem::NoAnswer),
            ),
            SdkError::TimeoutError(_) => Some(Problem::NoAnswer),
            _ => None,
        }
    }
}

/// The first error of type `E` in `err`'s chain.
fn find<'a, E: Error + 'static>(err: &'a (dyn Error + 'static)) -> Option<&'a E> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        next = err.source();
    }
    None
}

/// Whether `err` failed to connect at all, and how.
fn connect_failure(err: &(dyn Error + 'static)) -> Option<Problem> {
    use std::io::ErrorKind;
    let mut next = Some(err);
    while let Some(err) = next {
        // hyper-util's resolver fails with a `ConnectError` whose message is just this.
        if err.is::<ResolveDnsError>() || err.to_string() == "dns error" {
            return Some(Problem::HostNotFound);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                ErrorKind::ConnectionRefused => Some(Problem::ConnectionRefused),
                ErrorKind::TimedOut
                | ErrorKind::HostUnreachable
                | ErrorKind::NetworkUnreachable
                | ErrorKind::AddrNotAvailable => Some(Problem::Unreachable),
                _ => None,
            };
        }
        if let Some(connector) =
            err.downcast_ref::<aws_smithy_runtime_api::client::result::ConnectorError>()
        {
            if connector.is_timeout() {
                return Some(Problem::Unreachable);
            }
        }
        next = err.source();
    }
    None
}

/// The host of a URL: `sts.ap-northeast-2.amazonaws.com` of `https://sts....com/`.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// Where the SDK's default chain takes credentials from, as it applies here.
fn credential_sources() -> String {
    let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    if set("AWS_ACCESS_KEY_ID") {
        return "the environment (AWS_ACCESS_KEY_ID)".into();
    }
    let file = |var: &str, default: &str| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string())
    };
    let profile = match std::env::var("AWS_PROFILE") {
        Ok(p) if !p.is_empty() => format!("profile `{p}` (AWS_PROFILE)"),
        _ => "profile `default` (AWS_PROFILE is not set)".into(),
    };
    let imds = if std::env::var("AWS_EC2_METADATA_DISABLED")
        .is_ok_and(|v| v.eq_ignore_ascii_case("true"))
    {
        "EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)"
    } else {
        "EC2 instance metadata"
    };
    format!(
        "the environment (AWS_ACCESS_KEY_ID is not set), {profile} in {} and {} (SSO included), web identity, ECS container credentials, {imds}",
        file("AWS_CONFIG_FILE", "~/.aws/config"),
        file("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
    )
}

impl AccessError {
    fn headline(&self) -> String {
        let url = self.endpoint.split(' ').next().unwrap_or_default();
        match &self.problem {
            Problem::NoCredentials { failed: false } => "no AWS credentials found".into(),
            Problem::NoCredentials { failed: true } => "cannot load AWS credentials".into(),
            Problem::ConnectionRefused => format!("cannot connect to {url}: connection refused"),
            Problem::HostNotFound => {
                format!("cannot resolve `{}`, the host of {url}", host_of(url))
            }
            Problem::Unreachable => format!(
                "cannot connect to {url}: no route, or no answer within {}s",
                CONNECT_WITHIN.as_secs()
            ),
            Problem::NoAnswer => format!("no answer from {url}"),
            Problem::CredentialsRefused { code, message } => {
                format!("AWS refused the credentials: {code}: {message}")
            }
        }
    }

    fn help(&self) -> Vec<&'static str> {
        let emulator = "for the emulator: `localstack/emulator start`, then `eval \"$(localstack/emulator env)\"`";
        match (&self.problem, self.endpoint_from_env) {
            (Problem::NoCredentials { .. }, _) => vec![
                "for the emulator: `eval \"$(localstack/emulator env)\"` sets its test credentials",
                "for AWS: set AWS_PROFILE (after `aws sso login` for an SSO profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            ],
            (Problem::CredentialsRefused { .. }, _) => vec![
                "keys left from the emulator (`testing`) do not work on AWS: `unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY`, or set AWS_PROFILE",
                "to use the emulator instead: `eval \"$(localstack/emulator env)\"`",
            ],
            (_, true) => vec![emulator, "for AWS: `unset AWS_ENDPOINT_URL`"],
            (_, false) => vec![
                "check the network connection (and HTTPS_PROXY, if you need a proxy)",
                emulator,
            ],
        }
    }
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline())?;
        writeln!(f, "  endpoint:    {}", self.endpoint)?;
        writeln!(f, "  region:      {} (the stack's)", self.region)?;
        let label = match self.problem {
            Problem::NoCredentials { .. } => "looked in:  ",
            _ => "credentials:",
        };
        write!(f, "  {label} {}", self.credentials)?;
        for help in self.help() {
            write!(f, "\nhelp: {help}")?;
        }
        Ok(())
    }
}

impl Error for AccessError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.detail)
    }
}

/// Records the URL a call is sent to.
#[derive(Clone, Debug, Default)]
struct Dialed(Arc<Mutex<Option<String>>>);

impl Dialed {
    fn url(&self) -> Option<String> {
        self.0.lock().ok().and_then(|url| url.clone())
    }
}

impl Intercept for Dialed {
    fn name(&self) -> &'static str {
        "infra: record the endpoint"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(mut url) = self.0.lock() {
            *url = Some(context.request().uri().to_string());
        }
        Ok(())
    }
}

/// At the first call, a connection that cannot be made, or no answer in time, is not retried.
#[derive(Debug)]
struct SettingsAreFinal;

impl ClassifyRetry for SettingsAreFinal {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.output_or_error() {
            Some(Err(err))
                if err.is_timeout_error()
                    || err
                        .as_connector_error()
                        .and_then(|c| connect_failure(c))
                        .is_some() =>
            {
                RetryAction::RetryForbidden
            }
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "infra: the first call's settings are final"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_of_a_url() {
        assert_eq!(
            host_of("https://sts.ap-northeast-2.amazonaws.com/"),
            "sts.ap-northeast-2.amazonaws.com"
        );
        assert_eq!(
            host_of("http://no-such-host.invalid:4566"),
            "no-such-host.invalid"
        );
    }

    fn answer(status: u16, code: &str) -> SdkError<GetCallerIdentityError, HttpResponse> {
        let meta = aws_smithy_types::error::ErrorMetadata::builder()
            .code(code)
            .message("m")
            .build();
        let response = HttpResponse::new(
            status.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::empty(),
        );
        SdkError::service_error(GetCallerIdentityError::generic(meta), response)
    }

    #[test]
    fn refused_credentials_stop_the_run_and_other_answers_do_not() {
        assert_eq!(
            Problem::of(&answer(403, "InvalidClientTokenId")),
            Some(Problem::CredentialsRefused {
                code: "InvalidClientTokenId".into(),
                message: "m".into()
            })
        );
        assert_eq!(Problem::of(&answer(500, "InternalFailure")), None);
        assert_eq!(Problem::of(&answer(501, "NotImplemented")), None);
    }

    #[test]
    fn a_refused_connection_and_an_unknown_host_are_told_apart() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(connect_failure(&refused), Some(Problem::ConnectionRefused));
        let dns = std::io::Error::other("failed to lookup address information");
        assert_eq!(connect_failure(&dns), None);
    }
}
