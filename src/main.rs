//! The `snaprsync` executable: everything lives in the library.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
