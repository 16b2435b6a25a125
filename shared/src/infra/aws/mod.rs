//! What the functions reach on AWS beside the database and the buffer: the bus, the
//! topic, texts. Here, the AWS SDK configuration every client of a container shares.

pub mod events;
pub mod sms;
pub mod topic;

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// The bound on any one AWS call, the SDK's retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(2);

/// Region and credentials from the environment, `AWS_ENDPOINT_URL` honoured (local runs
/// and tests), with this project's HTTP client and timeouts.
pub async fn sdk_config_from_env() -> aws_config::SdkConfig {
    sdk_config(aws_config::defaults(aws_config::BehaviorVersion::latest())).await
}

/// Completes an SDK configuration with this project's HTTP client and timeouts.
///
/// Every AWS call can sit on a request's path inside the partners' 10 s, so each is
/// bounded: 1 s to connect, [`OPERATION_TIMEOUT`] for the whole operation.
pub async fn sdk_config(loader: aws_config::ConfigLoader) -> aws_config::SdkConfig {
    // rustls with ring: one TLS stack for the SDK and the database, and an arm64
    // cross-build without a C toolchain for aws-lc.
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    loader
        .http_client(http_client)
        .timeout_config(timeouts)
        .load()
        .await
}
