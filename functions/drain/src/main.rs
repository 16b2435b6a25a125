//! The `drain` Lambda function: stores the leads the source functions queued while the
//! database was unavailable (an SQS event source), with the same deduplication.

// The runtime's future over SQS batches is deeper than rustc's default layout limit.
#![recursion_limit = "256"]

use shared::edge::{queue, runtime};
use shared::pipeline::drain::Drain;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let drain = Drain::from_env().await?;
        queue::serve(&drain).await
    })
}
