//! Knowlarity's scheduled pull: on every scheduled invocation, stores the calls of the
//! account's call log that no push brought (see `shared::pipeline::pull`).

use shared::edge::{runtime, schedule};
use shared::pipeline::pull::KnowlarityPull;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let pull = KnowlarityPull::from_env().await?;
        schedule::serve(&pull).await
    })
}
