//! The `feed` Lambda function: the leads feed the dashboard reads with a reader key.

use shared::edge::{dashboard, runtime};
use shared::pipeline::feed::Feed;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let reader = Feed::from_env().await?;
        dashboard::serve(&reader).await
    })
}
