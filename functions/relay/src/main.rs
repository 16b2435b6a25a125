//! The outbox relay: on every scheduled invocation, publishes the `Lead stored` events
//! still in the outbox (see `shared::pipeline::relay`).

use shared::edge::{runtime, schedule};
use shared::pipeline::relay::Relay;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let relay = Relay::from_env().await?;
        schedule::serve_relay(&relay).await
    })
}
