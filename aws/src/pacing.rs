//! Client-side pacing: stay under AWS's published API rate limits so a large apply does not
//! trip throttling in the first place.
//!
//! AWS meters requests with token buckets per account and region. The limits used here are the
//! published defaults: EC2 describe calls (bucket 100, refill 20/s), EC2 mutating calls
//! (50, 5/s), ELBv2 (40, 10/s), RDS (300, 12/s), Route53 (5/s per account: it is global, so
//! one provider paces it alone). Requests wait for a token before they are sent.
//! The wrapper sits at the HTTP layer, after signing, so it sees every attempt (retries too) and
//! reads the service from the signature's credential scope — that works the same against AWS
//! and against an emulator where every service shares one endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use std::time::Instant;

/// One token bucket: `capacity` tokens, refilled at `per_second`.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(capacity: u32, per_second: u32) -> TokenBucket {
        TokenBucket {
            capacity: f64::from(capacity),
            per_second: f64::from(per_second),
            state: Mutex::new((f64::from(capacity), Instant::now())),
        }
    }

    /// Take one token, waiting for the refill when the bucket is empty.
    pub async fn acquire(&self) {
        loop {
            let taken = {
                let mut state = self.state.lock().expect("bucket lock");
                self.take(&mut state, Instant::now())
            };
            match taken {
                Ok(()) => return,
                Err(wait) => {
                    tracing::debug!(
                        wait_ms = wait.as_millis() as u64,
                        "pacing: waiting for an API token"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Refill for the time since the last look, then take a token or say how long until one.
    fn take(&self, state: &mut (f64, Instant), now: Instant) -> Result<(), Duration> {
        let (tokens, last) = *state;
        let tokens =
            (tokens + now.duration_since(last).as_secs_f64() * self.per_second).min(self.capacity);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            Ok(())
        } else {
            *state = (tokens, now);
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second))
        }
    }
}

/// Which bucket a request draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Meter {
    Ec2Describe,
    Ec2Mutating,
    Elb,
    Rds,
    Route53,
    Unmetered,
}

impl Meter {
    /// The buckets that are paced.
    pub const METERED: [Meter; 5] = [
        Meter::Ec2Describe,
        Meter::Ec2Mutating,
        Meter::Elb,
        Meter::Rds,
        Meter::Route53,
    ];

    /// The bucket a call draws from: `service` is the SigV4 signing name (`ec2`,
    /// `elasticloadbalancing`...), `action` the operation (`DescribeVpcs`); EC2 reads
    /// (Describe*/Get*) and EC2 writes have separate buckets.
    pub fn of(service: &str, action: &str) -> Meter {
        match service {
            "ec2" if action.starts_with("Describe") || action.starts_with("Get") => {
                Meter::Ec2Describe
            }
            "ec2" => Meter::Ec2Mutating,
            "elasticloadbalancing" => Meter::Elb,
            "rds" => Meter::Rds,
            "route53" => Meter::Route53,
            _ => Meter::Unmetered,
        }
    }

    /// The bucket's (capacity, refill per second): the published AWS figures; `None` when
    /// unmetered.
    pub fn limit(self) -> Option<(u32, u32)> {
        match self {
            Meter::Ec2Describe => Some((100, 20)),
            Meter::Ec2Mutating => Some((50, 5)),
            Meter::Elb => Some((40, 10)),
            Meter::Rds => Some((300, 12)),
            Meter::Route53 => Some((5, 5)),
            Meter::Unmetered => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Meter::Ec2Describe => "EC2 describe",
            Meter::Ec2Mutating => "EC2 mutating",
            Meter::Elb => "ELBv2",
            Meter::Rds => "RDS",
            Meter::Route53 => "Route53",
            Meter::Unmetered => "unmetered",
        }
    }

    /// The least time `calls` calls from this bucket can take: it starts full, and every call
    /// past its capacity waits for a refill.
    pub fn floor(self, calls: usize) -> Duration {
        self.limit()
            .map_or(Duration::ZERO, |(capacity, per_second)| {
                let over = calls.saturating_sub(capacity as usize);
                Duration::from_secs_f64(over as f64 / f64::from(per_second))
            })
    }
}

/// Classify a signed request: the service from the SigV4 credential scope
/// (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`), and for EC2 the form body's `Action`.
pub fn meter(request: &HttpRequest) -> Meter {
    let service = request
        .headers()
        .get("authorization")
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|scope| scope.split('/').nth(3))
        .unwrap_or_default();
    let action = match service {
        "ec2" => std::str::from_utf8(request.body().bytes().unwrap_or_default())
            .ok()
            .and_then(|b| b.split('&').find_map(|kv| kv.strip_prefix("Action=")))
            .unwrap_or_default(),
        _ => "",
    };
    Meter::of(service, action)
}

/// The buckets of one provider (shared by all its clients), one per metered [`Meter`].
#[derive(Debug)]
pub struct Pacer {
    buckets: HashMap<Meter, TokenBucket>,
}

impl Default for Pacer {
    fn default() -> Self {
        let buckets = Meter::METERED
            .into_iter()
            .filter_map(|meter| {
                let (capacity, per_second) = meter.limit()?;
                Some((meter, TokenBucket::new(capacity, per_second)))
            })
            .collect();
        Pacer { buckets }
    }
}

impl Pacer {
    pub async fn acquire(&self, meter: Meter) {
        if let Some(bucket) = self.buckets.get(&meter) {
            bucket.acquire().await;
        }
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: SharedHttpConnector,
    pacer: Arc<Pacer>,
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let meter = meter(&request);
        let inner = self.inner.clone();
        let pacer = self.pacer.clone();
        HttpConnectorFuture::new(async move {
            pacer.acquire(meter).await;
            inner.call(request).await
        })
    }
}

/// Wrap an HTTP client so every request waits for its service's token first.
pub fn paced(inner: SharedHttpClient, pacer: Arc<Pacer>) -> SharedHttpClient {
    use aws_smithy_runtime_api::client::http::HttpClient;
    http_client_fn(move |settings, components| {
        SharedHttpConnector::new(PacedConnector {
            inner: inner.http_connector(settings, components),
            pacer: pacer.clone(),
        })
    })
}

/// The HTTP client an SDK client makes for itself when given none (hyper 1 with rustls).
pub fn default_http_client() -> Option<SharedHttpClient> {
    use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
    use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
    aws_smithy_runtime::client::defaults::default_http_client_plugin_v2(BehaviorVersion::latest())?
        .runtime_components(&RuntimeComponentsBuilder::new("infra"))
        .http_client()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::body::SdkBody;

    fn signed(service: &str, body: &'static str) -> HttpRequest {
        let mut request = HttpRequest::new(SdkBody::from(body));
        request.headers_mut().insert(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20261122/ap-northeast-2/{service}/aws4_request, SignedHeaders=host, Signature=0"
            ),
        );
        request
    }

    #[test]
    fn requests_are_metered_by_service_and_action() {
        assert_eq!(
            meter(&signed("ec2", "Action=DescribeVpcs&Version=2016-11-15")),
            Meter::Ec2Describe
        );
        assert_eq!(
            meter(&signed("ec2", "Version=2016-11-15&Action=CreateVpc")),
            Meter::Ec2Mutating
        );
        assert_eq!(
            meter(&signed("elasticloadbalancing", "Action=DescribeTags")),
            Meter::Elb
        );
        assert_eq!(
            meter(&signed("rds", "Action=DescribeDBInstances")),
            Meter::Rds
        );
        assert_eq!(meter(&signed("s3", "")), Meter::Unmetered);
        assert_eq!(meter(&HttpRequest::new(SdkBody::empty())), Meter::Unmetered);
    }

    #[test]
    fn the_floor_counts_only_calls_past_a_full_bucket() {
        assert_eq!(Meter::Elb.floor(40), Duration::ZERO);
        assert_eq!(Meter::Elb.floor(60), Duration::from_secs(2));
        assert_eq!(Meter::Ec2Mutating.floor(165), Duration::from_secs(23));
        assert_eq!(Meter::Unmetered.floor(1000), Duration::ZERO);
    }

    #[test]
    fn a_full_bucket_bursts_then_refills_at_its_rate() {
        let bucket = TokenBucket::new(5, 5);
        let t0 = Instant::now();
        let mut state = (5.0, t0);
        for _ in 0..5 {
            assert_eq!(bucket.take(&mut state, t0), Ok(()), "the burst is free");
        }
        let wait = bucket.take(&mut state, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(200), "one token per 1/5 s");
        assert_eq!(bucket.take(&mut state, t0 + wait), Ok(()));
        // Idle time refills, but never beyond the capacity.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert_eq!(bucket.take(&mut state, later), Ok(()));
        }
        assert!(bucket.take(&mut state, later).is_err());
    }
}
