//! Meta's scheduled pull: on every scheduled invocation, stores the page's leads that no
//! notification brought (see `shared::pipeline::pull`).

use shared::edge::{runtime, schedule};
use shared::pipeline::pull::MetaPull;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let pull = MetaPull::from_env().await?;
        schedule::serve(&pull).await
    })
}
