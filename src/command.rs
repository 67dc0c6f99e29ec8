//! The one way snaprsync runs helper programs (`btrfs`, `mount`, ...): the exact
//! command line is logged, stdout/stderr are captured (never inherited: stdout
//! belongs to rsync), and a failure carries the command line and its stderr.
//! The real rsync is not run through here: it inherits stdio (see `platform`).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// A helper command to run to completion.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
}

impl Cmd {
    pub fn new(program: impl Into<OsString>) -> Self {
        Cmd { program: program.into(), args: Vec::new() }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Runs it, and returns its stdout if it exits 0.
    pub fn run(&self) -> Result<String> {
        log::debug!("running: {self}");
        let out = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| Error::Command { cmd: self.to_string(), status: "could not start".into(), stderr: e.to_string() })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim().replace('\n', " | ");
        Err(Error::Command { cmd: self.to_string(), status: out.status.to_string(), stderr })
    }
}

/// Quotes an argument for a POSIX shell only where needed, so that logged
/// command lines can be pasted into a shell as they are.
pub fn shell_quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    let plain = !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_./:=@%+-,".contains(&b));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A whole argv as one pasteable line.
pub fn shell_line<'a>(words: impl IntoIterator<Item = &'a OsStr>) -> String {
    words.into_iter().map(shell_quote).collect::<Vec<_>>().join(" ")
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = std::iter::once(self.program.as_os_str()).chain(self.args.iter().map(|a| a.as_os_str()));
        f.write_str(&shell_line(words))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_where_needed() {
        let c = Cmd::new("btrfs").arg("subvolume").arg("snapshot").arg("/a b/it's").arg("");
        assert_eq!(c.to_string(), r"btrfs subvolume snapshot '/a b/it'\''s' ''");
    }

    #[cfg(unix)]
    #[test]
    fn failure_carries_command_and_stderr() {
        let e = Cmd::new("sh").arg("-c").arg("echo boom >&2; exit 3").run().unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("sh -c 'echo boom >&2; exit 3'"), "{msg}");
        assert!(msg.contains("boom"), "{msg}");
        assert!(msg.contains('3'), "{msg}");
    }

    #[test]
    fn missing_program_is_an_error_not_a_panic() {
        let e = Cmd::new("/nonexistent/snaprsync-helper").run().unwrap_err();
        assert!(e.to_string().contains("could not start"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn stdout_is_captured() {
        assert_eq!(Cmd::new("echo").arg("hi").run().unwrap(), "hi\n");
    }
}
