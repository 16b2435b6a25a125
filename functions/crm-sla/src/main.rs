//! Speed to lead: every minute, the leads the hand-off assigned that nobody touched are
//! escalated, and first touches measured (see `shared::pipeline::crm::sla`).

use shared::edge::{runtime, sla};
use shared::pipeline::crm::sla::Sla;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let sla = Sla::from_env().await?;
        let args: Vec<String> = std::env::args().skip(1).collect();
        sla::serve(&sla, &args).await
    })
}
