//! The `feed` Lambda function: the leads feed the dashboard reads with a reader key.

use shared::edge::{feed, runtime};
use shared::pipeline::feed::Feed;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let reader = Feed::from_env().await?;
        feed::serve(&reader).await
    })
}
