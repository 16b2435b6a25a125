//! The `carwale` Lambda function: one source, the shared pipeline.

use shared::source::CARWALE;
use shared::{http, runtime, App};

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let app = App::from_env(&CARWALE).await?;
        http::serve(&app).await
    })
}
