//! Knowlarity's scheduled pull: on every scheduled invocation, stores the calls of the
//! account's call log that no push brought (see `shared::pipeline::pull`).

// The runtime's future over the pull's call-log and database calls is deeper than rustc's
// default limit.
#![recursion_limit = "256"]

use shared::edge::{runtime, schedule};
use shared::pipeline::pull::KnowlarityPull;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let pull = KnowlarityPull::from_env().await?;
        schedule::serve(&pull).await
    })
}
