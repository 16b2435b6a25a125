//! Meta's scheduled pull: on every scheduled invocation, stores the page's leads that no
//! notification brought (see `shared::sync`).

// The runtime's future over the pull's Graph and database calls is deeper than rustc's
// default limit.
#![recursion_limit = "256"]

use shared::runtime;
use shared::sync::{self, Sync};

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let sync = Sync::from_env().await?;
        sync::serve(&sync).await
    })
}
