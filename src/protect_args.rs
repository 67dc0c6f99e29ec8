//! Reader for the argument block that an rsync client sends on the connection
//! when it runs with `-s` / `--protect-args` / `--secluded-args` (BackupPC 4
//! does so by default).
//!
//! # Framing
//!
//! With protected args the remote command line stops after the server options
//! (`--server --sender -slHogDtprce.iLsfxCIvu`, plus `--iconv=CHARSET` when the
//! client asked for one); an `s` among the short options before the `e` tells
//! the server that the rest follows on stdin, before any protocol byte:
//!
//! ```text
//! "rsync" NUL  <option> NUL ...  "." NUL  <path> NUL ...  NUL
//! ```
//!
//! * Every argument is a string of bytes ended by one NUL byte.
//! * The first string is the placeholder `rsync`: the client puts it where its
//!   own argv stopped, as `argv[0]` of the protected part. rsync never looks at
//!   its value.
//! * Then come the options that did not go on the command line (for example
//!   `--numeric-ids`), the literal `.`, and the source paths.
//! * An empty string (a lone NUL) ends the block. An rsync client never sends
//!   an empty argument inside the block: it sends `.` instead.
//! * No length prefix, no escaping: a string may hold spaces, quotes, newlines
//!   and leading dashes verbatim.
//! * Under `--iconv` the client converts every string to UTF-8 before sending;
//!   without it the bytes are whatever the client had.
//!
//! # Reading exactly the block
//!
//! The real rsync inherits the rest of stdin, so this reader must not take one
//! byte beyond the terminating NUL. It asks its reader for one byte per call.
//! That is only exact if the reader itself does not read ahead: give it an
//! unbuffered handle on the connection, such as [`unbuffered_stdin`]. Never pass
//! `std::io::stdin()` (or anything wrapped in a `BufReader`): `Stdin` buffers
//! internally and would pull protocol bytes out of the pipe, where the real
//! rsync can no longer see them. rsync itself reads the block the same way,
//! one byte per `read(2)`.
//!
//! # Limits
//!
//! A block is rejected rather than read without end: at most [`MAX_ARGS`]
//! strings (not counting the terminator), each at most [`MAX_ARG_LEN`] bytes
//! (not counting its NUL), and at most [`MAX_BLOCK_BYTES`] bytes in all
//! (counting every NUL and the terminator). Every block within these limits is
//! one that rsync would accept unchanged. [`Limits`] lets tests and fuzzing use
//! smaller ones.
//!
//! # UTF-8
//!
//! snaprsync accepts only UTF-8 strings and reports any other byte sequence as
//! [`ProtectArgsError::NotUtf8`]. rsync itself passes bytes through when
//! `--iconv` is off; with `--iconv` the bytes on the wire are UTF-8 by
//! construction, so rejecting non-UTF-8 never refuses a well-formed `--iconv`
//! block. The returned strings are therefore `OsString`s built from UTF-8 on
//! every platform.
//!
//! Errors map to exit status [`crate::error::status::PROTECT_ARGS`] as
//! [`crate::error::Error::ProtectArgs`].

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};

/// Most strings a block may hold, the leading `rsync` included. An rsync client
/// builds its whole remote command (remote shell, host, server options and
/// paths) in an array of rsync's `MAX_ARGS` (1000) entries, so it never sends
/// more than this.
pub const MAX_ARGS: usize = 1000;

/// Longest single string, in bytes, without its NUL. The rsync server reads
/// each string into a `MAXPATHLEN` buffer (4096 on Linux) and keeps at most
/// `MAXPATHLEN - 1` bytes, silently cutting longer ones; snaprsync refuses
/// them instead.
pub const MAX_ARG_LEN: usize = 4095;

/// Largest whole block, in bytes, every NUL and the terminator included. The
/// strings end up on the real rsync's command line, and 1 MiB stays well below
/// the usual 2 MiB that `execve` allows for arguments and environment.
pub const MAX_BLOCK_BYTES: usize = 1 << 20;

/// The bounds a block is read (or rendered) under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most strings, the terminator not counted.
    pub max_args: usize,
    /// Longest string in bytes, its NUL not counted.
    pub max_arg_len: usize,
    /// Most bytes in the whole block, every NUL counted.
    pub max_block_bytes: usize,
}

impl Limits {
    /// The limits snaprsync uses: [`MAX_ARGS`], [`MAX_ARG_LEN`], [`MAX_BLOCK_BYTES`].
    pub const DEFAULT: Limits = Limits { max_args: MAX_ARGS, max_arg_len: MAX_ARG_LEN, max_block_bytes: MAX_BLOCK_BYTES };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Why a block could not be read or rendered. `index` counts strings from 0,
/// where 0 is the leading `rsync`.
#[derive(Debug, thiserror::Error)]
pub enum ProtectArgsError {
    #[error("the connection ended inside argument {index} after {len} bytes of it; the client hung up while sending its arguments: check the client's rsync and remote shell, then run the backup again")]
    EofInArg { index: usize, len: usize },

    #[error("the connection ended after {count} arguments without the empty string that ends the block; the client hung up or does not send protected args: run the client with -s/--protect-args, or without it and without 's' in the server options")]
    EofBeforeEnd { count: usize },

    #[error(
        "the block ended without any argument, not even \"rsync\"; the client is not an rsync client: check what the backup server runs"
    )]
    EmptyBlock,

    #[error("more than {limit} arguments; rsync clients never send that many: pass fewer source paths, e.g. a common parent directory")]
    TooManyArgs { limit: usize },

    #[error("argument {index} (starting \"{start}\") is longer than {limit} bytes, which rsync would cut short; use a shorter path or a parent directory")]
    ArgTooLong { index: usize, start: String, limit: usize },

    #[error("the arguments exceed {limit} bytes in all; pass fewer or shorter source paths, e.g. a common parent directory")]
    BlockTooLarge { limit: usize },

    #[error("argument {index} (\"{shown}\") is not UTF-8, and snaprsync accepts only UTF-8 paths; rename it, name a parent directory with a UTF-8 name, or have the client convert with --iconv=LOCAL_CHARSET,utf8")]
    NotUtf8 { index: usize, shown: String },

    #[error("argument {index} is empty and would end the block early; send \".\" instead, as rsync clients do")]
    EmptyArg { index: usize },

    #[error("argument {index} (\"{shown}\") contains a NUL byte, which the block cannot carry; remove it from the argument")]
    NulInArg { index: usize, shown: String },

    #[error("cannot read the arguments from stdin: {0}; check the connection to the backup server")]
    Io(#[source] io::Error),
}

/// How many characters of an offending string an error message shows.
const SHOWN_CHARS: usize = 60;

/// A short, one-line, printable rendering of `bytes` for an error message.
fn show(bytes: &[u8]) -> String {
    crate::text::shown(bytes, SHOWN_CHARS)
}

/// Reads one protect-args block from `reader` under the default [`Limits`].
///
/// Returns every string of the block in order, the leading `rsync` included,
/// and leaves `reader` just after the terminating NUL. `reader` must not read
/// ahead (see the module documentation); pass [`unbuffered_stdin`] for the
/// connection.
pub fn read_block<R: Read + ?Sized>(reader: &mut R) -> Result<Vec<OsString>, ProtectArgsError> {
    read_block_with(reader, &Limits::DEFAULT)
}

/// [`read_block`] under the given limits. Reads at most `limits.max_block_bytes`
/// bytes, one per `read` call, and never a byte after the terminator.
pub fn read_block_with<R: Read + ?Sized>(reader: &mut R, limits: &Limits) -> Result<Vec<OsString>, ProtectArgsError> {
    let mut args: Vec<OsString> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut total = 0usize;

    loop {
        if total >= limits.max_block_bytes {
            return Err(ProtectArgsError::BlockTooLarge { limit: limits.max_block_bytes });
        }
        let Some(byte) = read_byte(reader)? else {
            return Err(if cur.is_empty() {
                ProtectArgsError::EofBeforeEnd { count: args.len() }
            } else {
                ProtectArgsError::EofInArg { index: args.len(), len: cur.len() }
            });
        };
        total += 1;

        if byte == 0 {
            if cur.is_empty() {
                if args.is_empty() {
                    return Err(ProtectArgsError::EmptyBlock);
                }
                return Ok(args);
            }
            let bytes = std::mem::take(&mut cur);
            let index = args.len();
            match String::from_utf8(bytes) {
                Ok(s) => args.push(OsString::from(s)),
                Err(e) => {
                    return Err(ProtectArgsError::NotUtf8 { index, shown: show(e.as_bytes()) });
                }
            }
        } else {
            if cur.is_empty() && args.len() >= limits.max_args {
                return Err(ProtectArgsError::TooManyArgs { limit: limits.max_args });
            }
            if cur.len() >= limits.max_arg_len {
                return Err(ProtectArgsError::ArgTooLong { index: args.len(), start: show(&cur), limit: limits.max_arg_len });
            }
            cur.push(byte);
        }
    }
}

/// One byte from `reader`, `None` at end of file; retries on `Interrupted`.
fn read_byte<R: Read + ?Sized>(reader: &mut R) -> Result<Option<u8>, ProtectArgsError> {
    let mut buf = [0u8; 1];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(buf[0])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ProtectArgsError::Io(e)),
        }
    }
}

/// Renders `args` as the bytes of a protect-args block under the default
/// [`Limits`]: the inverse of [`read_block`]. `args` should start with `rsync`
/// to look like a real client's block.
pub fn render_block<S: AsRef<OsStr>>(args: &[S]) -> Result<Vec<u8>, ProtectArgsError> {
    render_block_with(args, &Limits::DEFAULT)
}

/// [`render_block`] under the given limits. Whatever it renders, [`read_block_with`]
/// under the same limits reads back to the same strings; whatever it refuses,
/// the reader would refuse too (or, for an empty string or a NUL, could not
/// tell apart from another block).
pub fn render_block_with<S: AsRef<OsStr>>(args: &[S], limits: &Limits) -> Result<Vec<u8>, ProtectArgsError> {
    if args.is_empty() {
        return Err(ProtectArgsError::EmptyBlock);
    }
    if args.len() > limits.max_args {
        return Err(ProtectArgsError::TooManyArgs { limit: limits.max_args });
    }
    let mut out = Vec::new();
    for (index, arg) in args.iter().enumerate() {
        let arg = arg.as_ref();
        let Some(s) = arg.to_str() else {
            return Err(ProtectArgsError::NotUtf8 { index, shown: show(arg.as_encoded_bytes()) });
        };
        let bytes = s.as_bytes();
        if bytes.is_empty() {
            return Err(ProtectArgsError::EmptyArg { index });
        }
        if bytes.contains(&0) {
            return Err(ProtectArgsError::NulInArg { index, shown: show(bytes) });
        }
        if bytes.len() > limits.max_arg_len {
            return Err(ProtectArgsError::ArgTooLong { index, start: show(&bytes[..limits.max_arg_len]), limit: limits.max_arg_len });
        }
        out.extend_from_slice(bytes);
        out.push(0);
    }
    out.push(0);
    if out.len() > limits.max_block_bytes {
        return Err(ProtectArgsError::BlockTooLarge { limit: limits.max_block_bytes });
    }
    Ok(out)
}

/// An unbuffered handle on this process's stdin (a duplicate of the descriptor
/// or handle, sharing the same connection) for [`read_block`]. Reading one byte
/// from it takes exactly one byte off the connection, so the real rsync, which
/// inherits the original stdin, finds the protocol intact. Dropping it closes
/// only the duplicate.
#[cfg(unix)]
pub fn unbuffered_stdin() -> io::Result<std::fs::File> {
    use std::os::fd::AsFd;
    Ok(std::fs::File::from(io::stdin().as_fd().try_clone_to_owned()?))
}

/// An unbuffered handle on this process's stdin (a duplicate of the descriptor
/// or handle, sharing the same connection) for [`read_block`]. Reading one byte
/// from it takes exactly one byte off the connection, so the real rsync, which
/// inherits the original stdin, finds the protocol intact. Dropping it closes
/// only the duplicate.
#[cfg(windows)]
pub fn unbuffered_stdin() -> io::Result<std::fs::File> {
    use std::os::windows::io::AsHandle;
    Ok(std::fs::File::from(io::stdin().as_handle().try_clone_to_owned()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    /// Renders, reads back, and checks that exactly the block was consumed.
    fn round_trip(args: &[&str]) {
        let block = render_block(args).unwrap();
        let mut cur = Cursor::new(block.clone());
        assert_eq!(read_block(&mut cur).unwrap(), os(args));
        assert_eq!(cur.position() as usize, block.len());
    }

    fn read_bytes(bytes: &[u8]) -> Result<Vec<OsString>, ProtectArgsError> {
        read_block(&mut Cursor::new(bytes))
    }

    fn small() -> Limits {
        Limits { max_args: 3, max_arg_len: 4, max_block_bytes: 12 }
    }

    #[test]
    fn backuppc_block() {
        let bytes = b"rsync\0--numeric-ids\0.\0C/\0\0";
        assert_eq!(read_bytes(bytes).unwrap(), os(&["rsync", "--numeric-ids", ".", "C/"]));
        assert_eq!(render_block(&["rsync", "--numeric-ids", ".", "C/"]).unwrap(), bytes);
    }

    #[test]
    fn round_trips_awkward_strings() {
        round_trip(&["rsync"]);
        round_trip(&["rsync", ".", "/home/a b/c  d", "tab\there"]);
        round_trip(&["rsync", ".", "it's", "\"quoted\"", "back\\slash", "$(no shell) `here` *?[x]"]);
        round_trip(&["rsync", ".", "line\nbreak", "cr\rlf\r\n", "\n"]);
        round_trip(&["rsync", "--delete", "-", "--", ".", "-leading-dash", "./-x"]);
        round_trip(&["rsync", ".", "Größe/日本語/😀", "café", "\u{7f}\u{1}"]);
    }

    #[test]
    fn eof_inside_a_string() {
        let e = read_bytes(b"rsync\0--numer").unwrap_err();
        assert!(matches!(e, ProtectArgsError::EofInArg { index: 1, len: 7 }), "{e:?}");
    }

    #[test]
    fn eof_before_the_terminator() {
        let e = read_bytes(b"rsync\0.\0C/\0").unwrap_err();
        assert!(matches!(e, ProtectArgsError::EofBeforeEnd { count: 3 }), "{e:?}");
        let e = read_bytes(b"").unwrap_err();
        assert!(matches!(e, ProtectArgsError::EofBeforeEnd { count: 0 }), "{e:?}");
    }

    #[test]
    fn empty_block_is_refused() {
        assert!(matches!(read_bytes(b"\0rsync\0\0").unwrap_err(), ProtectArgsError::EmptyBlock));
        let none: [&str; 0] = [];
        assert!(matches!(render_block(&none).unwrap_err(), ProtectArgsError::EmptyBlock));
    }

    #[test]
    fn non_utf8_is_refused_with_the_bytes_shown() {
        let e = read_bytes(b"rsync\0.\0caf\xe9\0\0").unwrap_err();
        match &e {
            ProtectArgsError::NotUtf8 { index: 2, shown } => assert_eq!(shown, "caf\\xe9"),
            other => panic!("{other:?}"),
        }
        // A truncated multi-byte sequence is not UTF-8 either.
        assert!(matches!(read_bytes(b"rsync\0\xe6\x97\0\0").unwrap_err(), ProtectArgsError::NotUtf8 { index: 1, .. }));
    }

    #[cfg(unix)]
    #[test]
    fn render_refuses_non_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let bad = OsStr::from_bytes(b"caf\xe9");
        let e = render_block(&[OsStr::new("rsync"), bad]).unwrap_err();
        assert!(matches!(e, ProtectArgsError::NotUtf8 { index: 1, .. }), "{e:?}");
    }

    #[test]
    fn render_refuses_what_cannot_be_framed() {
        assert!(matches!(render_block(&["rsync", ""]).unwrap_err(), ProtectArgsError::EmptyArg { index: 1 }));
        assert!(matches!(render_block(&["rsync", "a\0b"]).unwrap_err(), ProtectArgsError::NulInArg { index: 1, .. }));
    }

    #[test]
    fn string_length_limit_is_inclusive() {
        let at = "x".repeat(MAX_ARG_LEN);
        round_trip(&["rsync", ".", &at]);
        let over = "x".repeat(MAX_ARG_LEN + 1);
        let mut block = b"rsync\0.\0".to_vec();
        block.extend_from_slice(over.as_bytes());
        block.extend_from_slice(b"\0\0");
        let mut cur = Cursor::new(block);
        let e = read_block(&mut cur).unwrap_err();
        assert!(matches!(e, ProtectArgsError::ArgTooLong { index: 2, limit: MAX_ARG_LEN, .. }), "{e:?}");
        // It stops at the first byte too many.
        assert_eq!(cur.position() as usize, 8 + MAX_ARG_LEN + 1);
        assert!(matches!(render_block(&["rsync", &over]).unwrap_err(), ProtectArgsError::ArgTooLong { index: 1, .. }));
    }

    #[test]
    fn argument_count_limit_is_inclusive() {
        let mut at = vec!["rsync", "."];
        at.resize(MAX_ARGS, "p");
        round_trip(&at);
        let mut over = at.clone();
        over.push("q");
        let mut block = render_block(&at).unwrap();
        block.pop();
        block.extend_from_slice(b"q\0\0");
        let e = read_bytes(&block).unwrap_err();
        assert!(matches!(e, ProtectArgsError::TooManyArgs { limit: MAX_ARGS }), "{e:?}");
        assert!(matches!(render_block(&over).unwrap_err(), ProtectArgsError::TooManyArgs { .. }));
    }

    #[test]
    fn block_size_limit_is_inclusive() {
        // 256 strings of 4095 bytes plus "rsync" and ".": well over 1 MiB.
        let long = "y".repeat(MAX_ARG_LEN);
        let mut args = vec!["rsync".to_string(), ".".to_string()];
        let fixed = "rsync\0.\0".len() + 1;
        let mut size = fixed;
        while size + long.len() < MAX_BLOCK_BYTES {
            args.push(long.clone());
            size += long.len() + 1;
        }
        // Pad with one string that fills the block to exactly the limit.
        let rest = MAX_BLOCK_BYTES - size - 1;
        assert!(rest > 0 && rest <= MAX_ARG_LEN);
        args.push("z".repeat(rest));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let block = render_block(&refs).unwrap();
        assert_eq!(block.len(), MAX_BLOCK_BYTES);
        round_trip(&refs);

        // One byte more and it is refused, after reading exactly the limit.
        let mut bigger = args.clone();
        bigger.last_mut().unwrap().push('z');
        let refs: Vec<&str> = bigger.iter().map(String::as_str).collect();
        assert!(matches!(render_block(&refs).unwrap_err(), ProtectArgsError::BlockTooLarge { .. }));
        let mut bytes = block.clone();
        bytes.insert(bytes.len() - 2, b'z');
        let mut cur = Cursor::new(bytes);
        let e = read_block(&mut cur).unwrap_err();
        assert!(matches!(e, ProtectArgsError::BlockTooLarge { limit: MAX_BLOCK_BYTES }), "{e:?}");
        assert_eq!(cur.position() as usize, MAX_BLOCK_BYTES);
    }

    #[test]
    fn small_limits_are_enforced() {
        let l = small();
        // 3 strings of at most 4 bytes, 12 bytes in all: "ab\0cd\0ef\0\0" is 10.
        assert_eq!(read_block_with(&mut Cursor::new(b"ab\0cd\0ef\0\0"), &l).unwrap(), os(&["ab", "cd", "ef"]));
        assert!(matches!(read_block_with(&mut Cursor::new(b"ab\0cd\0ef\0g\0\0"), &l), Err(ProtectArgsError::TooManyArgs { limit: 3 })));
        assert!(matches!(
            read_block_with(&mut Cursor::new(b"abcde\0\0"), &l),
            Err(ProtectArgsError::ArgTooLong { index: 0, limit: 4, .. })
        ));
        // "abcd\0abcd\0ab\0\0" is 14 bytes: too large before anything else.
        assert!(matches!(read_block_with(&mut Cursor::new(b"abcd\0abcd\0ab\0\0"), &l), Err(ProtectArgsError::BlockTooLarge { limit: 12 })));
        // Exactly 12: "abcd\0abcd\0a\0\0" is 13; "abcd\0abc\0a\0\0" is 12.
        assert!(read_block_with(&mut Cursor::new(b"abcd\0abc\0a\0\0"), &l).is_ok());
    }

    #[test]
    fn no_byte_after_the_terminator_is_consumed() {
        let block = render_block(&["rsync", "--numeric-ids", ".", "C/"]).unwrap();
        // What the client sends next: its protocol version (int32 LE), then more.
        let protocol: &[u8] = &[31, 0, 0, 0, 0, 0, 0x0a, 0xff, b'r', b's'];
        let mut stream = block.clone();
        stream.extend_from_slice(protocol);
        let mut cur = Cursor::new(stream);
        read_block(&mut cur).unwrap();
        assert_eq!(cur.position() as usize, block.len());
        let mut rest = Vec::new();
        cur.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, protocol);
    }

    /// A reader that hands out its bytes one `read` call at a time, with an
    /// `Interrupted` before each, and fails the test on any read after `end`.
    struct Stingy {
        data: Vec<u8>,
        pos: usize,
        end: usize,
        interrupt: bool,
    }

    impl Read for Stingy {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            assert!(self.pos < self.end, "read past the terminator");
            assert_eq!(buf.len(), 1, "asked for more than one byte");
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            buf[0] = self.data[self.pos];
            self.pos += 1;
            Ok(1)
        }
    }

    #[test]
    fn reads_one_byte_per_call_and_retries_interrupts() {
        let block = render_block(&["rsync", ".", "a b"]).unwrap();
        let end = block.len();
        let mut data = block;
        data.extend_from_slice(b"PROTOCOL");
        let mut r = Stingy { data, pos: 0, end, interrupt: false };
        assert_eq!(read_block(&mut r).unwrap(), os(&["rsync", ".", "a b"]));
        assert_eq!(r.pos, end);
    }

    #[test]
    fn io_errors_are_reported() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
            }
        }
        assert!(matches!(read_block(&mut Broken), Err(ProtectArgsError::Io(_))));
    }

    #[test]
    fn messages_are_one_line_and_map_to_the_exit_status() {
        let errors = [
            read_bytes(b"rsync\0--numer").unwrap_err(),
            read_bytes(b"rsync\0").unwrap_err(),
            read_bytes(b"\0").unwrap_err(),
            read_bytes(b"rsync\0caf\xe9\n\0\0").unwrap_err(),
            read_block_with(&mut Cursor::new(b"abcde\n\0\0"), &small()).unwrap_err(),
            read_block_with(&mut Cursor::new(b"a\0b\0c\0d\0\0"), &small()).unwrap_err(),
            read_block_with(&mut Cursor::new(b"abcd\0abcd\0abcd\0\0"), &small()).unwrap_err(),
            render_block(&["rsync", ""]).unwrap_err(),
            render_block(&["rsync", "a\0\nb"]).unwrap_err(),
        ];
        for e in errors {
            let msg = e.to_string();
            assert!(!msg.contains('\n') && !msg.contains('\0'), "{msg:?}");
            assert!(msg.contains(';'), "no fix named: {msg}");
            let e: crate::error::Error = e.into();
            assert_eq!(e.exit_code(), crate::error::status::PROTECT_ARGS);
        }
    }

    fn arg() -> impl Strategy<Value = String> {
        "[^\\x00]{1,40}"
    }

    proptest! {
        #[test]
        fn prop_render_then_read(args in proptest::collection::vec(arg(), 1..20), tail in proptest::collection::vec(any::<u8>(), 0..16)) {
            let block = render_block(&args).unwrap();
            let mut stream = block.clone();
            stream.extend_from_slice(&tail);
            let mut cur = Cursor::new(stream);
            let got = read_block(&mut cur).unwrap();
            prop_assert_eq!(got, args.iter().map(OsString::from).collect::<Vec<_>>());
            prop_assert_eq!(cur.position() as usize, block.len());
        }

        #[test]
        fn prop_read_then_render(bytes in proptest::collection::vec(prop_oneof![Just(0u8), Just(b'a'), Just(0xc3u8), Just(0xa9u8), any::<u8>()], 0..64)) {
            let l = small();
            let mut cur = Cursor::new(&bytes[..]);
            let res = read_block_with(&mut cur, &l);
            let used = cur.position() as usize;
            prop_assert!(used <= l.max_block_bytes);
            if let Ok(args) = res {
                prop_assert_eq!(render_block_with(&args, &l).unwrap(), &bytes[..used]);
            }
        }
    }
}
