//! The outbox relay: on every scheduled invocation, publishes the `Lead stored` events
//! still in the outbox (see `shared::pipeline::relay`).

// The runtime's future over the relay's database and EventBridge calls is deeper than
// rustc's default limit.
#![recursion_limit = "256"]

use shared::edge::{relay, runtime};
use shared::pipeline::relay::Relay;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let relay = Relay::from_env().await?;
        relay::serve(&relay).await
    })
}
