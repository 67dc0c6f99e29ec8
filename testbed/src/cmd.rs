//! A fluent command runner: build a command line, run it with captured output,
//! and assert on its status with a failure message that shows the command,
//! status, stderr and the start of stdout.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Write;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
    cwd: Option<std::path::PathBuf>,
}

pub fn cmd(program: impl AsRef<OsStr>) -> Cmd {
    Cmd::new(program)
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Cmd { program: program.as_ref().to_owned(), args: Vec::new(), env: Vec::new(), stdin: None, cwd: None }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<std::path::Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    fn start(&self, stdin: Stdio, stdout: Stdio, stderr: Stdio) -> Child {
        let mut command = Command::new(&self.program);
        command.args(&self.args).stdin(stdin).stdout(stdout).stderr(stderr);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        command.spawn().unwrap_or_else(|e| panic!("cannot start `{self}`: {e} (is the package installed?)"))
    }

    /// Starts the program in the background with stdin, stdout and stderr on
    /// `/dev/null`, for a caller that signals, kills or waits for it.
    pub fn spawn(&self) -> Child {
        self.start(Stdio::null(), Stdio::null(), Stdio::null())
    }

    /// Runs to completion and captures everything. Panics only if the program
    /// cannot be started at all (a missing tool is a test failure).
    pub fn run(&self) -> Output {
        let start = Instant::now();
        let stdin = if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() };
        let mut child = self.start(stdin, Stdio::piped(), Stdio::piped());
        if let Some(bytes) = &self.stdin {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            let bytes = bytes.clone();
            // A writer thread, so a child that does not read stdin cannot deadlock us.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("waiting for `{self}`: {e}"));
        Output {
            cmdline: self.to_string(),
            status: out.status,
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: start.elapsed(),
        }
    }

    /// Runs and asserts exit status 0.
    pub fn ok(&self) -> Output {
        self.run().success()
    }

    /// Runs and asserts exit status `code`.
    pub fn status(&self, code: i32) -> Output {
        let out = self.run();
        out.expect_code(code);
        out
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.env {
            write!(f, "{}={} ", k.to_string_lossy(), quote(&v.to_string_lossy()))?;
        }
        write!(f, "{}", quote(&self.program.to_string_lossy()))?;
        for a in &self.args {
            write!(f, " {}", quote(&a.to_string_lossy()))?;
        }
        Ok(())
    }
}

/// Shell-quotes one word for display.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[derive(Debug)]
pub struct Output {
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// A report of the run for assertion messages.
    pub fn report(&self) -> String {
        let stdout = self.stdout_str();
        let stdout: String = stdout.chars().take(2000).collect();
        format!(
            "command: {}\nstatus: {}\nelapsed: {:.2?}\n--- stderr ---\n{}\n--- stdout (first 2000 chars) ---\n{}",
            self.cmdline,
            self.status,
            self.elapsed,
            self.stderr.trim_end(),
            stdout.trim_end()
        )
    }

    pub fn success(self) -> Self {
        assert!(self.status.success(), "command failed\n{}", self.report());
        self
    }

    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), Some(code), "unexpected exit status\n{}", self.report());
        self
    }

    pub fn expect_stdout_empty(&self) -> &Self {
        assert!(self.stdout.is_empty(), "stdout must be empty\n{}", self.report());
        self
    }
}
