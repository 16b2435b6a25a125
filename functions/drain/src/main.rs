//! The `drain` Lambda function: stores the leads the source functions queued while the
//! database was unavailable (an SQS event source), with the same deduplication.

use shared::edge::{queue, runtime};
use shared::pipeline::drain::Drain;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let drain = Drain::from_env().await?;
        queue::serve(&drain).await
    })
}
