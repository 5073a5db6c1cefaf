//! `infra-aws`: the engine's [`Provider`] implemented with the AWS SDK for Rust.
//!
//! Endpoint, credentials and profile come from the standard AWS environment and config files
//! (`AWS_ENDPOINT_URL`, `AWS_PROFILE`, ...), so the same code talks to AWS and to the emulator.

mod access;
mod acm;
mod autoscaling;
mod ec2;
mod elbv2;
mod iam;
mod interrupt;
pub mod pacing;
mod rds;
mod relink;
mod route53;
mod s3;
mod ssm;
mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_types::sdk_config::SharedAsyncSleep;
use infra_core::model::Declared;
use infra_core::provider::{Context, DeleteOptions};
use infra_core::{Address, Kind, Observed, Provider, ProviderError, Stack};

pub use access::{AccessError, Problem};
pub use interrupt::Stop;
pub use ssm::lock::lock_parameter;
pub use support::is_retryable;

/// Settings for [`AwsProvider::connect`].
#[derive(Clone, Debug)]
pub struct AwsOptions {
    /// Attempts per API call for throttling, 5xx and dropped connections (the SDK default is 3).
    pub max_attempts: u32,
    /// First retry delay; doubles (with jitter) up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Upper bound for waits (ALB active, RDS available, deletions).
    pub wait_timeout: Duration,
    /// How long a load balancer's access-log write may be refused after its bucket's policy
    /// was written (the policy takes time to reach ELB).
    pub log_policy_propagation: Duration,
    /// Pace requests under AWS's published API rate limits (see [`pacing`]).
    pub pacing: bool,
    /// Once set, actions stop retrying and waiting and fail as interrupted (see [`Stop`]).
    pub stop: Stop,
}

impl Default for AwsOptions {
    fn default() -> Self {
        AwsOptions {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
            wait_timeout: Duration::from_secs(40 * 60),
            log_policy_propagation: Duration::from_secs(120),
            pacing: true,
            stop: Stop::default(),
        }
    }
}

impl AwsOptions {
    /// The defaults, with `max_attempts` from the standard `AWS_MAX_ATTEMPTS` variable when it
    /// holds a number of at least 1.
    pub fn from_env() -> AwsOptions {
        let mut options = AwsOptions::default();
        if let Some(attempts) = std::env::var("AWS_MAX_ATTEMPTS")
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|n| *n >= 1)
        {
            options.max_attempts = attempts;
        }
        options
    }
}

/// The AWS provider: one SDK client per service, sharing one configuration.
#[derive(Clone)]
pub struct AwsProvider {
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) asg: aws_sdk_autoscaling::Client,
    pub(crate) rds: aws_sdk_rds::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) acm: aws_sdk_acm::Client,
    pub(crate) ssm: aws_sdk_ssm::Client,
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) route53: aws_sdk_route53::Client,
    pub(crate) sts: aws_sdk_sts::Client,
    /// The account id: from [`AwsProvider::check_access`], or asked once when a log bucket's
    /// policy needs it.
    pub(crate) account: Arc<tokio::sync::OnceCell<String>>,
    pub(crate) options: AwsOptions,
    /// For [`AwsProvider::check_access`]'s message.
    pub(crate) region: String,
    pub(crate) endpoint_url: Option<String>,
}

/// A service's client from the shared configuration, with the hooks that end its retries once
/// the action it serves is stopped (see [`interrupt`]).
macro_rules! stoppable_client {
    ($sdk:ident, $config:expr) => {
        stoppable_client!($sdk, $config, |builder| builder)
    };
    ($sdk:ident, $config:expr, $more:expr) => {
        $sdk::Client::from_conf(
            ($more)($sdk::config::Builder::from($config))
                .interceptor(interrupt::RefuseRetry)
                .retry_classifier(interrupt::MarkBackoff)
                .build(),
        )
    };
}

impl AwsProvider {
    /// Connect to `region` with the standard AWS environment and config.
    pub async fn connect(region: &str, options: AwsOptions) -> AwsProvider {
        let retry = RetryConfig::standard()
            .with_max_attempts(options.max_attempts)
            .with_initial_backoff(options.initial_backoff)
            .with_max_backoff(options.max_backoff);
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .retry_config(retry)
            .load()
            .await;
        AwsProvider::from_config(&config, options)
    }

    /// Build from an SDK configuration the caller loaded (for embedders with their own setup).
    pub fn from_config(config: &aws_types::SdkConfig, options: AwsOptions) -> AwsProvider {
        // `aws_config::load` leaves the HTTP client unset (each SDK client then makes its own
        // default), so there is nothing to wrap: make the default one here and pace that.
        let paced = options
            .pacing
            .then(|| config.http_client().or_else(pacing::default_http_client))
            .flatten();
        let mut builder = config.to_builder();
        builder.set_sleep_impl(Some(SharedAsyncSleep::new(interrupt::BackoffSleep)));
        if let Some(client) = paced {
            builder.set_http_client(Some(pacing::paced(
                client,
                Arc::new(pacing::Pacer::default()),
            )));
        }
        let config = &builder.build();
        // Emulators serve S3 on one host: virtual-hosted bucket addressing needs DNS they lack.
        let path_style = config.endpoint_url().is_some();
        AwsProvider {
            ec2: stoppable_client!(aws_sdk_ec2, config),
            elb: stoppable_client!(aws_sdk_elasticloadbalancingv2, config),
            asg: stoppable_client!(aws_sdk_autoscaling, config),
            rds: stoppable_client!(aws_sdk_rds, config),
            s3: stoppable_client!(aws_sdk_s3, config, |b: aws_sdk_s3::config::Builder| b
                .force_path_style(path_style)),
            acm: stoppable_client!(aws_sdk_acm, config),
            ssm: stoppable_client!(aws_sdk_ssm, config),
            iam: stoppable_client!(aws_sdk_iam, config),
            route53: stoppable_client!(aws_sdk_route53, config),
            sts: aws_sdk_sts::Client::new(config),
            region: config.region().map(ToString::to_string).unwrap_or_default(),
            endpoint_url: config.endpoint_url().map(str::to_string),
            account: Arc::default(),
            options,
        }
    }

    /// The id of the account the credentials belong to (STS GetCallerIdentity, once).
    pub(crate) async fn account_id(&self) -> Result<&str, ProviderError> {
        self.account
            .get_or_try_init(|| async {
                let out = self
                    .sts
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| support::api_error("sts:GetCallerIdentity", e))?;
                Ok(out.account().unwrap_or_default().to_string())
            })
            .await
            .map(String::as_str)
    }
}

/// Which module serves a kind.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Service {
    Ec2,
    Elbv2,
    Acm,
    AutoScaling,
    Rds,
    S3,
    Iam,
    Route53,
}

fn service(kind: Kind) -> Service {
    match kind {
        Kind::Vpc
        | Kind::Subnet
        | Kind::InternetGateway
        | Kind::RouteTable
        | Kind::SecurityGroup
        | Kind::LaunchTemplate => Service::Ec2,
        Kind::TargetGroup | Kind::LoadBalancer | Kind::Listener | Kind::ListenerRule => {
            Service::Elbv2
        }
        Kind::Certificate => Service::Acm,
        Kind::AutoScalingGroup => Service::AutoScaling,
        Kind::DbSubnetGroup | Kind::DbInstance => Service::Rds,
        Kind::Bucket => Service::S3,
        Kind::Role => Service::Iam,
        Kind::HostedZone | Kind::Record => Service::Route53,
    }
}

/// A service's discovery, or nothing when the endpoint does not implement the service (HTTP 501)
/// and the stack declares none of its kinds: an endpoint holds nothing of a service it lacks.
/// AWS has them all; LocalStack's free edition lacks ELBv2, Auto Scaling and RDS.
async fn unless_unserved(
    stack: &Stack,
    of: Service,
    discovery: impl std::future::Future<Output = Result<Vec<Observed>, ProviderError>>,
) -> Result<Vec<Observed>, ProviderError> {
    match discovery.await {
        Err(e)
            if support::error_code(&e) == Some(support::NOT_IMPLEMENTED)
                && !stack
                    .resources
                    .iter()
                    .any(|r| service(r.resource.kind()) == of) =>
        {
            Ok(Vec::new())
        }
        found => found,
    }
}

#[async_trait]
impl Provider for AwsProvider {
    async fn discover(&self, stack: &Stack) -> Result<Vec<Observed>, ProviderError> {
        interrupt::stoppable(&self.options.stop, async {
            let (ec2, elb, acm, asg, rds, s3, iam) = futures::try_join!(
                unless_unserved(stack, Service::Ec2, ec2::discover(self, stack)),
                unless_unserved(stack, Service::Elbv2, elbv2::discover(self, stack)),
                unless_unserved(stack, Service::Acm, acm::discover(self, stack)),
                unless_unserved(
                    stack,
                    Service::AutoScaling,
                    autoscaling::discover(self, stack)
                ),
                unless_unserved(stack, Service::Rds, rds::discover(self, stack)),
                unless_unserved(stack, Service::S3, s3::discover(self, stack)),
                unless_unserved(stack, Service::Iam, iam::discover(self, stack)),
            )?;
            let mut all = [ec2, elb, acm, asg, rds, s3, iam].concat();
            // After the others: an alias record names its load balancer by DNS name only, and a
            // certificate's validation records are in a zone.
            let dns = route53::discover(self, stack, &mut all);
            let dns = unless_unserved(stack, Service::Route53, dns).await?;
            all.extend(dns);
            Ok(relink::relink(all))
        })
        .await
    }

    async fn create(
        &self,
        ctx: &Context<'_>,
        desired: &Declared,
    ) -> Result<Observed, ProviderError> {
        interrupt::stoppable(&self.options.stop, async {
            match service(desired.resource.kind()) {
                Service::Ec2 => ec2::create(self, ctx, desired).await,
                Service::Elbv2 => elbv2::create(self, ctx, desired).await,
                Service::Acm => acm::create(self, ctx, desired).await,
                Service::AutoScaling => autoscaling::create(self, ctx, desired).await,
                Service::Rds => rds::create(self, ctx, desired).await,
                Service::S3 => s3::create(self, ctx, desired).await,
                Service::Iam => iam::create(self, ctx, desired).await,
                Service::Route53 => route53::create(self, ctx, desired).await,
            }
        })
        .await
    }

    async fn update(
        &self,
        ctx: &Context<'_>,
        desired: &Declared,
        prior: &Observed,
        changed: &[String],
    ) -> Result<Observed, ProviderError> {
        interrupt::stoppable(&self.options.stop, async {
            match service(desired.resource.kind()) {
                Service::Ec2 => ec2::update(self, ctx, desired, prior, changed).await,
                Service::Elbv2 => elbv2::update(self, ctx, desired, prior, changed).await,
                Service::Acm => acm::update(self, ctx, desired, prior, changed).await,
                Service::AutoScaling => {
                    autoscaling::update(self, ctx, desired, prior, changed).await
                }
                Service::Rds => rds::update(self, ctx, desired, prior, changed).await,
                Service::S3 => s3::update(self, ctx, desired, prior, changed).await,
                Service::Iam => iam::update(self, ctx, desired, prior, changed).await,
                Service::Route53 => route53::update(self, ctx, desired, prior).await,
            }
        })
        .await
    }

    async fn delete(
        &self,
        ctx: &Context<'_>,
        prior: &Observed,
        options: DeleteOptions,
    ) -> Result<(), ProviderError> {
        interrupt::stoppable(&self.options.stop, async {
            match service(prior.address.kind) {
                Service::Ec2 => ec2::delete(self, ctx, prior).await,
                Service::Elbv2 => elbv2::delete(self, ctx, prior).await,
                Service::Acm => acm::delete(self, ctx, prior).await,
                Service::AutoScaling => autoscaling::delete(self, ctx, prior).await,
                Service::Rds => rds::delete(self, ctx, prior, options).await,
                Service::S3 => s3::delete(self, ctx, prior, options).await,
                Service::Iam => iam::delete(self, ctx, prior, options).await,
                Service::Route53 => route53::delete(self, ctx, prior).await,
            }
        })
        .await
    }

    async fn wait_ready(
        &self,
        ctx: &Context<'_>,
        observed: &Observed,
    ) -> Result<Observed, ProviderError> {
        interrupt::stoppable(&self.options.stop, async {
            match service(observed.address.kind) {
                Service::Elbv2 => elbv2::wait_ready(self, ctx, observed).await,
                Service::Acm => acm::wait_ready(self, ctx, observed).await,
                Service::Rds => rds::wait_ready(self, ctx, observed).await,
                // A group is usable once it exists; instances come and go on their own.
                // Route53 writes wait for INSYNC themselves.
                Service::AutoScaling
                | Service::Ec2
                | Service::S3
                | Service::Iam
                | Service::Route53 => Ok(observed.clone()),
            }
        })
        .await
    }

    async fn read(
        &self,
        stack: &Stack,
        address: &Address,
        physical_id: &str,
    ) -> Result<Option<Observed>, ProviderError> {
        interrupt::stoppable(&self.options.stop, async {
            // Route53 needs the stack's discovery first; relinking then reuses it.
            let mut discovered = None;
            let found = match service(address.kind) {
                Service::Ec2 => ec2::read(self, stack, address, physical_id).await,
                Service::Elbv2 => elbv2::read(self, stack, address, physical_id).await,
                Service::Acm => acm::read(self, stack, address, physical_id).await,
                Service::AutoScaling => autoscaling::read(self, stack, address, physical_id).await,
                Service::Rds => rds::read(self, stack, address, physical_id).await,
                Service::S3 => s3::read(self, stack, address, physical_id).await,
                Service::Iam => iam::read(self, stack, address, physical_id).await,
                // An alias names its load balancer by DNS name: the others say which one that is.
                Service::Route53 => {
                    let others = discovered.insert(self.discover(stack).await?);
                    route53::read(self, address, physical_id, others).await
                }
            }?;
            let Some(found) = found else {
                return Ok(None);
            };
            // References in the foreign resource are physical ids; map the owned ones to logical ids.
            let mut all = match discovered {
                Some(all) => all,
                None => self.discover(stack).await?,
            };
            all.push(found);
            Ok(relink::relink(all).pop())
        })
        .await
    }

    async fn adopt(&self, ctx: &Context<'_>, observed: &Observed) -> Result<(), ProviderError> {
        interrupt::stoppable(&self.options.stop, async {
            match service(observed.address.kind) {
                Service::Ec2 => ec2::adopt(self, ctx, observed).await,
                Service::Elbv2 => elbv2::adopt(self, ctx, observed).await,
                Service::Acm => acm::adopt(self, ctx, observed).await,
                Service::AutoScaling => autoscaling::adopt(self, ctx, observed).await,
                Service::Rds => rds::adopt(self, ctx, observed).await,
                Service::S3 => s3::adopt(self, ctx, observed).await,
                Service::Iam => iam::adopt(self, ctx, observed).await,
                Service::Route53 => route53::adopt(self, ctx, observed).await,
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infra_core::prelude::Vpc;

    fn not_implemented() -> ProviderError {
        ProviderError::Api {
            operation: "rds:DescribeDBInstances".into(),
            code: support::NOT_IMPLEMENTED.into(),
            message: "InternalFailure: not included in your current license plan".into(),
        }
    }

    #[tokio::test]
    async fn an_unserved_service_holds_nothing_unless_the_stack_declares_its_kinds() {
        let mut stack = Stack::new("s", "ap-northeast-2");
        stack.add("main", Vpc::new("10.0.0.0/16"));
        let none = unless_unserved(&stack, Service::Rds, async { Err(not_implemented()) }).await;
        assert!(none.unwrap().is_empty());
        let declared = unless_unserved(&stack, Service::Ec2, async { Err(not_implemented()) });
        assert!(declared.await.is_err());
        let other = ProviderError::Other("connection reset".into());
        assert!(unless_unserved(&stack, Service::Rds, async { Err(other) })
            .await
            .is_err());
    }
}
