//! The `meta` Lambda function (Meta lead ads): one source, the shared pipeline.

use shared::source::META;
use shared::{http, runtime, App};

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let app = App::from_env(&META).await?;
        http::serve(&app).await
    })
}
