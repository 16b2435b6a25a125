//! `make template`: rewrites each source's part of `template.yaml` from
//! `shared::domain::source::ALL`, leaving the hand-written rest as it is.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let written = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e}", path.display()))
        .and_then(|text| template::render(&text).map_err(|e| e.to_string()))
        .and_then(|text| {
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
        });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("make template: {error}");
            ExitCode::FAILURE
        }
    }
}
