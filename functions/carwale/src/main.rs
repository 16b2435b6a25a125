//! The `carwale` Lambda function: one source, the shared pipeline.

use shared::domain::source::CARWALE;
use shared::edge::{http, runtime};
use shared::App;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let app = App::from_env(&CARWALE).await?;
        http::serve(&app).await
    })
}
