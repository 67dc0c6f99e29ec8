//! The one way snaprsync runs helper programs (`btrfs`, `mount`, ...): the exact
//! command line is logged, stdout/stderr are captured (never inherited: stdout
//! belongs to rsync), and a failure carries the command line, how it ended
//! ([`Exit`]) and its stderr. Helpers run with `LC_ALL=C`, so that their
//! messages are the ones snaprsync recognises ([`Error::is_busy`]), whatever
//! locale the ssh client passed on.
//! The real rsync is not run through here: it inherits stdio (see `platform`).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::process::{Command, Stdio};

use crate::error::{Error, Exit, Result};

/// A helper command to run to completion.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    /// Run with no variable of snaprsync's own environment ([`Cmd::system`]).
    clean: bool,
}

/// Where [`Cmd::system`] looks for a program, and the `PATH` it runs with.
pub const SYSTEM_DIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

impl Cmd {
    pub fn new(program: impl Into<OsString>) -> Self {
        Cmd { program: program.into(), args: Vec::new(), clean: false }
    }

    /// `name` from [`SYSTEM_DIRS`], not from `PATH`, run with an environment
    /// of its own (`PATH` those directories, `LC_ALL=C`): for what restricted
    /// mode decides by, which the ssh session's variables must not steer.
    pub fn system(name: &str) -> Self {
        let program = SYSTEM_DIRS.iter().map(|d| std::path::Path::new(d).join(name)).find(|p| p.is_file());
        Cmd { program: program.map_or_else(|| name.into(), |p| p.into_os_string()), args: Vec::new(), clean: true }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Runs it, and returns its stdout if it exits 0.
    pub fn run(&self) -> Result<String> {
        self.run_bytes().map(|out| String::from_utf8_lossy(&out).into_owned())
    }

    /// Runs it, and returns its stdout as it is (file names need not be UTF-8).
    pub fn run_bytes(&self) -> Result<Vec<u8>> {
        log::debug!("running: {self}");
        let mut command = Command::new(&self.program);
        if self.clean {
            command.env_clear().env("PATH", SYSTEM_DIRS.join(":"));
        }
        let out = command
            .args(&self.args)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| Error::Command { cmd: self.to_string(), status: Exit::NotStarted, stderr: e.to_string() })?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim().replace('\n', " | ");
        Err(Error::Command { cmd: self.to_string(), status: Exit::from(out.status), stderr })
    }
}

impl Error {
    /// Whether a helper or system call failed because what it acted on is in
    /// use (EBUSY: a subvolume a just-released mount still holds). For a
    /// helper only stderr tells: `btrfs` exits 1 for every failure. glibc
    /// says "Device or resource busy", musl "Resource busy" (`LC_ALL=C`
    /// keeps it English).
    pub fn is_busy(&self) -> bool {
        match self {
            Error::Command { status: Exit::Code(_), stderr, .. } => stderr.to_ascii_lowercase().contains("resource busy"),
            Error::Syscall { source, .. } => source.kind() == std::io::ErrorKind::ResourceBusy,
            _ => false,
        }
    }
}

/// Quotes an argument for a POSIX shell only where needed, so that logged
/// command lines can be pasted into a shell as they are. An argument holding a
/// control character (a newline would split the logged line), or bytes that
/// are not UTF-8, is written in `$'...'` quoting (bash, zsh, ksh, POSIX 2024)
/// with those as `\n` or `\xNN`: visible, on one line, and exact.
pub fn shell_quote(arg: &OsStr) -> String {
    let b = arg.as_encoded_bytes();
    let plain = !b.is_empty() && b.iter().all(|b| b.is_ascii_alphanumeric() || b"_./:=@%+-,".contains(b));
    if plain {
        return arg.to_string_lossy().into_owned();
    }
    let text = std::str::from_utf8(b).ok().filter(|s| !s.chars().any(needs_ansi_c));
    match text {
        Some(s) => format!("'{}'", s.replace('\'', r"'\''")),
        None => ansi_c_quote(b),
    }
}

/// Characters that `'...'` would keep but a log line must not hold as they are:
/// controls (C0, DEL, C1) and the Unicode line and paragraph separators.
fn needs_ansi_c(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// `$'...'`: `\\`, `\'`, `\n`, `\r`, `\t`, and `\xNN` for each byte of the
/// other characters of [`needs_ansi_c`] and for bytes that are not UTF-8.
fn ansi_c_quote(b: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("$'");
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str(r"\\"),
                '\'' => out.push_str(r"\'"),
                '\n' => out.push_str(r"\n"),
                '\r' => out.push_str(r"\r"),
                '\t' => out.push_str(r"\t"),
                c if u32::from(c) < 0x80 && needs_ansi_c(c) => {
                    let _ = write!(out, "\\x{:02x}", u32::from(c));
                }
                c if needs_ansi_c(c) => {
                    // Its UTF-8 bytes: `\u` depends on the reader's locale.
                    for byte in c.encode_utf8(&mut [0; 4]).bytes() {
                        let _ = write!(out, "\\x{byte:02x}");
                    }
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out.push('\'');
    out
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

    #[test]
    fn control_characters_are_quoted_visibly() {
        let line = |words: &[&str]| shell_line(words.iter().map(OsStr::new));
        assert_eq!(line(&["rsync", "/a\nb", "it's"]), r"rsync $'/a\nb' 'it'\''s'");
        assert_eq!(line(&["x\ty\r", "esc\x1b[0m", "nul\0", "del\x7f"]), r"$'x\ty\r' $'esc\x1b[0m' $'nul\x00' $'del\x7f'");
        assert_eq!(line(&["it's\n\\"]), r"$'it\'s\n\\'");
        assert_eq!(line(&["nel\u{85}", "ls\u{2028}", "ünï €"]), r"$'nel\xc2\x85' $'ls\xe2\x80\xa8' 'ünï €'");
        assert!(!line(&["a\nb\rc\u{2028}"]).contains(['\n', '\r', '\u{2028}']));
    }

    /// The `$'...'` form reads back to the same bytes in bash, where there is one.
    #[cfg(unix)]
    #[test]
    fn ansi_c_quoting_reads_back_in_bash() {
        use std::os::unix::ffi::OsStrExt;
        if Command::new("bash").arg("-c").arg("true").status().is_err() {
            return;
        }
        let args: [&[u8]; 5] = [b"a\nb", b"it's \\ \"q\"\t\x1b", b"caf\xe9 \xff\xfe", "naïve\u{85}\u{2028}".as_bytes(), b"\x01\x7f"];
        for a in args {
            let quoted = shell_quote(OsStr::from_bytes(a));
            let out = Command::new("bash").env("LC_ALL", "C").arg("-c").arg(format!("printf %s {quoted}")).output().unwrap();
            assert_eq!(out.stdout, a, "{quoted}");
        }
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
        assert!(matches!(e, Error::Command { status: Exit::NotStarted, .. }) && !e.is_busy(), "{e:?}");
    }

    #[cfg(unix)]
    #[test]
    fn exit_code_and_signal_are_data() {
        let e = Cmd::new("sh").arg("-c").arg("exit 3").run().unwrap_err();
        assert!(matches!(e, Error::Command { status: Exit::Code(3), .. }), "{e:?}");
        let e = Cmd::new("sh").arg("-c").arg("kill -9 $$").run().unwrap_err();
        assert!(matches!(e, Error::Command { status: Exit::Signal(9), .. }), "{e:?}");
        assert!(e.to_string().contains("signal: 9"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn busy_is_told_by_the_failure_not_by_the_command_line() {
        let busy = |script: &str| Cmd::new("sh").arg("-c").arg(script).run().unwrap_err().is_busy();
        assert!(busy("echo 'ERROR: Could not destroy subvolume/snapshot: Device or resource busy' >&2; exit 1"));
        assert!(busy("echo 'rm: cannot remove x: Resource busy' >&2; exit 1"));
        // The word in the command line (a path) or on stdout is not the failure.
        assert!(!busy("echo busy; echo 'resource busy' >/dev/null; echo 'No such file or directory' >&2; exit 1"));
        assert!(!Error::Usage("Device or resource busy".into()).is_busy());
    }

    #[cfg(unix)]
    #[test]
    fn helpers_run_in_the_c_locale() {
        let out = Cmd::new("sh").arg("-c").arg("echo $LC_ALL").run().unwrap();
        assert_eq!(out, "C\n");
    }

    #[cfg(unix)]
    #[test]
    fn stdout_is_captured() {
        assert_eq!(Cmd::new("echo").arg("hi").run().unwrap(), "hi\n");
    }
}
