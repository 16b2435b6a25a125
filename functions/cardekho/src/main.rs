//! The `cardekho` Lambda function: one source, the shared pipeline.

use shared::source::CARDEKHO;
use shared::{http, runtime, App};

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let app = App::from_env(&CARDEKHO).await?;
        http::serve(&app).await
    })
}
