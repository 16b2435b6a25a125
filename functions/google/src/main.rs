//! The `google` Lambda function (Google Ads lead forms): one source, the shared pipeline.

use shared::domain::source::GOOGLE;
use shared::edge::{http, runtime};
use shared::App;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let app = App::from_env(&GOOGLE).await?;
        http::serve(&app).await
    })
}
