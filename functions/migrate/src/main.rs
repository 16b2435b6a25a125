//! Applies the embedded migrations to the database `DATABASE_URL` names.

fn main() -> std::process::ExitCode {
    shared::migrate::main()
}
