//! The CRM hand-off: every non-test stored lead enters the group's CRM, is assigned by
//! the CRM's rules, and its salesperson is texted (see `shared::pipeline::crm`).

use shared::edge::{crm, runtime};
use shared::pipeline::crm::Handoff;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let handoff = Handoff::from_env().await?;
        let args: Vec<String> = std::env::args().skip(1).collect();
        crm::serve(&handoff, &args).await
    })
}
