//! The `drain` Lambda function: stores the leads the source functions queued while the
//! database was unavailable (an SQS event source), with the same deduplication.

fn main() -> std::process::ExitCode {
    shared::drain::main()
}
