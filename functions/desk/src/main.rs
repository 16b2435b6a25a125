//! The sales desk's messages: on every non-test `Lead stored` event, its summary to the
//! new-leads topic, once per lead however often the event arrives (see
//! `shared::pipeline::desk`).

use shared::edge::{desk, runtime};
use shared::pipeline::desk::Desk;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let desk = Desk::from_env().await?;
        desk::serve(&desk).await
    })
}
