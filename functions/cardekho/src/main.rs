//! The `cardekho` Lambda function: one source, the shared pipeline.

fn main() -> std::process::ExitCode {
    shared::lambda::main(&shared::source::CARDEKHO)
}
