//! The `google` Lambda function (Google Ads lead forms): one source, the shared pipeline.

use shared::source::GOOGLE;
use shared::{http, runtime, App};

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let app = App::from_env(&GOOGLE).await?;
        http::serve(&app).await
    })
}
