//! What the provider tests that count calls share.

use std::net::SocketAddr;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;
use infra_aws::{AwsOptions, AwsProvider};
use infra_tests::proxy::CountingProxy;
use infra_tests::Emulator;

/// A provider whose calls go through a counting proxy to `emulator`, built as the CLI builds
/// it: from a plain `aws_config` load, with no HTTP client of its own.
pub async fn counted_provider(
    emulator: &Emulator,
    options: AwsOptions,
) -> (AwsProvider, CountingProxy) {
    let proxy = CountingProxy::start(SocketAddr::from(([127, 0, 0, 1], emulator.port())));
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("ap-northeast-2"))
        .endpoint_url(proxy.endpoint())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    assert!(config.http_client().is_none());
    (AwsProvider::from_config(&config, options), proxy)
}
