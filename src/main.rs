//! The `snaprsync` executable: everything lives in the library.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(snaprsync::main(std::env::args_os().skip(1).collect()))
}
