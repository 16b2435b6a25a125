//! The `meta` Lambda function (Meta lead ads): one source, the shared pipeline.

use shared::domain::source::META;
use shared::edge::{http, runtime};
use shared::App;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let app = App::from_env(&META).await?;
        http::serve(&app).await
    })
}
