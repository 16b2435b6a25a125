//! The `knowlarity` Lambda function: one source, the shared pipeline.

use shared::source::KNOWLARITY;
use shared::{http, runtime, App};

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let app = App::from_env(&KNOWLARITY).await?;
        http::serve(&app).await
    })
}
