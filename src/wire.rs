//! snaprsync's own failure, said in the rsync protocol: when snaprsync fails
//! before the real rsync has started, as the sending server of a pull
//! (`rsync --server --sender`), it speaks the opening of the protocol just far
//! enough to hand the backup server's rsync its line (`MSG_ERROR`) and its
//! status (`MSG_ERROR_EXIT`) in-band. The client prints the line and exits
//! with that status, every time; without this it reads ssh's status only if
//! ssh has already exited when it notices the closed connection (a `WNOHANG`
//! wait in rsync's `cleanup.c`), and reports its own 12 otherwise.
//!
//! What is said, as rsync's `compat.c` `setup_protocol` and `main.c`
//! `start_server` say it for a sender, after reading the client's version
//! (the client writes it first, without waiting):
//!
//! 1. the version snaprsync speaks, [`SPOKEN`] (the client takes the lower);
//! 2. protocol 30 and up: the compat flags, as rsync derives them from the
//!    client's `-e.LETTERS`, and with `v` the checksum and compression lists;
//! 3. the checksum seed;
//! 4. multiplexed from here on: `MSG_ERROR` with the line, then
//!    `MSG_ERROR_EXIT` with the status.
//!
//! Which clients take it: `MSG_ERROR` exists from protocol 30 (rsync 3.0);
//! every rsync since 3.1.0 acts on `MSG_ERROR_EXIT` whatever the protocol
//! (`io.c` `read_a_msg`), and 3.0.x calls it an unexpected tag. So the status
//! is sent at protocol 31 and up, and at 30 only to a client that sent `x`
//! among its letters (3.1.1 and later); a 3.0.x client gets the line and ends
//! as before. Below protocol 30 nothing at all is written: the line goes to
//! stderr and the status to ssh, as before (the client then shows the line
//! and exits with 12 or with ssh's status).
//!
//! Nothing is written unless the client's version has arrived and is one of
//! these: a stdin that is a terminal, empty, slow or not an rsync client gets
//! the old behaviour. The bytes are built by pure functions, tested here and
//! against the real rsync through sshd (tests/e2e/status.rs).

use std::sync::atomic::{AtomicBool, Ordering};

/// The protocol snaprsync speaks: 31, the one of rsync 3.1.0 to 3.3, which
/// every newer client speaks too.
pub const SPOKEN: u32 = 31;

/// rsync's `MPLEX_BASE`: a message's tag is sent plus this, in the header's top byte.
const MPLEX_BASE: u32 = 7;
/// `MSG_ERROR` (`FERROR`), protocol 30 and up.
const MSG_ERROR: u32 = 3;
/// `MSG_ERROR_EXIT`.
const MSG_ERROR_EXIT: u32 = 86;
/// rsync's `CF_*` compat flags that the client's letters ask for.
const CF_SAFE_FLIST: u32 = 1 << 3;
const CF_AVOID_XATTR_OPTIM: u32 = 1 << 4;
const CF_CHKSUM_SEED_FIX: u32 = 1 << 5;
const CF_INPLACE_PARTIAL_DIR: u32 = 1 << 6;
const CF_VARINT_FLIST_FLAGS: u32 = 1 << 7;
const CF_ID0_NAMES: u32 = 1 << 8;
/// Every checksum and compression any rsync knows: the client picks its own
/// favourite among them.
const CHECKSUMS: &str = "xxh128 xxh3 xxh64 md5 md4 sha1 none";
const COMPRESSIONS: &str = "zstd lz4 zlibx zlib none";
/// rsync reads at most this much of one message (`BIGPATHBUFLEN` is larger).
const MAX_LINE: usize = 4000;

/// Set once the real rsync is about to start: from then on stdout is rsync's alone.
static STARTED: AtomicBool = AtomicBool::new(false);

/// The real rsync is about to be started: snaprsync never speaks the protocol after this.
pub fn rsync_starting() {
    STARTED.store(true, Ordering::SeqCst);
}

/// What the rsync command line of a pull tells about the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    /// The letters after `-e.` (rsync's `client_info`), empty without them.
    info: String,
    /// The checksum list is negotiated (no `--checksum-choice`).
    checksum_list: bool,
    /// The compression list is negotiated (`z`, and no `--compress-choice`,
    /// `--new-compress` or `--old-compress`).
    compress_list: bool,
}

impl Pull {
    /// The server words of `argv` (those before the `.` that ends them) if they
    /// say `--server --sender`, i.e. snaprsync is the sending side of a pull.
    pub fn of<S: AsRef<[u8]>>(argv: &[S]) -> Option<Pull> {
        let words: Vec<&[u8]> = argv.iter().map(AsRef::as_ref).take_while(|w| *w != b".").collect();
        if !words.contains(&&b"--server"[..]) || !words.contains(&&b"--sender"[..]) {
            return None;
        }
        let mut pull = Pull { info: String::new(), checksum_list: true, compress_list: false };
        let mut z = false;
        let mut compress_choice = false;
        for w in &words {
            if w.starts_with(b"--checksum-choice=") || w.starts_with(b"--cc=") {
                pull.checksum_list = false;
            } else if w.starts_with(b"--compress-choice=") || w.starts_with(b"--zc=") || *w == b"--new-compress" || *w == b"--old-compress"
            {
                compress_choice = true;
            } else if *w == b"--compress" {
                z = true;
            } else if w.len() > 1 && w[0] == b'-' && w[1] != b'-' {
                // A group of short flags; `e` takes the rest of the word as its value.
                let group = &w[1..];
                let (flags, value) = match group.iter().position(|&c| c == b'e') {
                    Some(i) => (&group[..i], Some(&group[i + 1..])),
                    None => (group, None),
                };
                z |= flags.contains(&b'z');
                if let Some(v) = value {
                    pull.info = String::from_utf8_lossy(v).into_owned();
                }
            }
        }
        pull.compress_list = z && !compress_choice;
        Some(pull)
    }

    fn has(&self, letter: char) -> bool {
        self.info.contains(letter)
    }

    /// The compat flags rsync's server sends for these letters (no
    /// incremental recursion: no file list follows).
    fn compat_flags(&self) -> u32 {
        [
            ('f', CF_SAFE_FLIST),
            ('x', CF_AVOID_XATTR_OPTIM),
            ('C', CF_CHKSUM_SEED_FIX),
            ('I', CF_INPLACE_PARTIAL_DIR),
            ('u', CF_ID0_NAMES),
            ('v', CF_VARINT_FLIST_FLAGS),
        ]
        .iter()
        .filter(|(c, _)| self.has(*c))
        .fold(0, |acc, (_, f)| acc | f)
    }

    /// The strings negotiated: with `v`, each list rsync's server would send.
    fn lists(&self) -> Vec<&'static str> {
        if !self.has('v') {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.checksum_list {
            out.push(CHECKSUMS);
        }
        if self.compress_list {
            out.push(COMPRESSIONS);
        }
        out
    }

    /// The bytes that tell the client `line` and `status`, once it has sent
    /// `client` as its protocol version; `None` for a protocol without
    /// `MSG_ERROR` (below 30) or a version that is not one.
    pub fn failure(&self, client: u32, line: &str, status: u8) -> Option<Vec<u8>> {
        if !(30..=40).contains(&client) {
            return None;
        }
        let protocol = client.min(SPOKEN);
        let mut out = Vec::new();
        out.extend_from_slice(&SPOKEN.to_le_bytes());
        let flags = self.compat_flags();
        if self.has('V') && !self.has('v') {
            // A 3.2.0 pre-release: one byte, the high bit saying varint flags.
            out.push((flags | CF_VARINT_FLIST_FLAGS) as u8);
        } else {
            varint(&mut out, flags);
        }
        for list in self.lists() {
            vstring(&mut out, list);
        }
        // The checksum seed: no block is ever summed with it.
        out.extend_from_slice(&1u32.to_le_bytes());
        let mut text = format!("snaprsync: {line}");
        if text.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        text.push('\n');
        frame(&mut out, MSG_ERROR, text.as_bytes());
        if protocol >= 31 || self.has('x') {
            frame(&mut out, MSG_ERROR_EXIT, &u32::from(status).to_le_bytes());
        }
        Some(out)
    }

    /// How many negotiation strings the client sends after its version.
    #[cfg_attr(not(unix), allow(dead_code))] // only a Unix pull waits for the answer
    fn client_lists(&self) -> usize {
        self.lists().len()
    }
}

/// rsync's `write_varint` for values below 2^14.
fn varint(out: &mut Vec<u8>, x: u32) {
    debug_assert!(x < 1 << 14);
    if x < 0x80 {
        out.push(x as u8);
    } else {
        out.push(0x80 | (x >> 8) as u8);
        out.push(x as u8);
    }
}

/// rsync's `write_vstring` for strings below 128 bytes.
fn vstring(out: &mut Vec<u8>, s: &str) {
    debug_assert!(s.len() < 0x80);
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// One multiplexed message: a little-endian header of tag and length, then the payload.
fn frame(out: &mut Vec<u8>, tag: u32, payload: &[u8]) {
    let header = ((MPLEX_BASE + tag) << 24) | payload.len() as u32;
    out.extend_from_slice(&header.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Where the client's stream stands after its version: the negotiation
/// strings to skip, then messages until its own `MSG_ERROR_EXIT`, the answer
/// that lets snaprsync close the connection first (as rsync's sender waits for it).
#[cfg_attr(not(unix), allow(dead_code))] // only a Unix pull waits for the answer
struct Answer {
    lists: usize,
}

#[cfg_attr(not(unix), allow(dead_code))]
impl Answer {
    /// Whether `bytes` (all the client sent after its version) hold its `MSG_ERROR_EXIT`.
    fn complete(&self, bytes: &[u8]) -> bool {
        let mut at = 0;
        for _ in 0..self.lists {
            let Some(&len) = bytes.get(at) else { return false };
            let (skip, head) = if len & 0x80 != 0 {
                let Some(&low) = bytes.get(at + 1) else { return false };
                ((usize::from(len & 0x7f) << 8) | usize::from(low), 2)
            } else {
                (usize::from(len), 1)
            };
            at += head + skip;
        }
        while let Some(h) = bytes.get(at..at + 4) {
            let header = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            if (header >> 24).wrapping_sub(MPLEX_BASE) == MSG_ERROR_EXIT {
                return true;
            }
            at += 4 + (header & 0xff_ffff) as usize;
        }
        false
    }
}

/// Says `line` and `status` to the client of a pull, if it is one and speaks
/// a protocol that has the message; returns whether it did (then the line is
/// not repeated on stderr). Never after [`rsync_starting`].
pub fn tell(pull: Option<&Pull>, line: &str, status: u8) -> bool {
    match pull {
        Some(pull) if !STARTED.load(Ordering::SeqCst) => imp::tell(pull, line, status),
        _ => false,
    }
}

#[cfg(unix)]
mod imp {
    use std::io::{IsTerminal, Read, Write};
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

    use super::{Answer, Pull};

    /// How long the client's version may take: it sends it at once.
    const VERSION_WAIT: Duration = Duration::from_secs(5);
    /// How long the client may take to answer before snaprsync closes anyway.
    const ANSWER_WAIT: Duration = Duration::from_secs(10);
    /// The protect-args block (see `protect_args`) starts with this; no version does.
    const BLOCK_START: &[u8] = b"rsyn";

    /// Reads into `buf` what arrives before `deadline`; 0 for the end, a timeout or an error.
    fn read_by(stdin: &mut std::fs::File, buf: &mut [u8], deadline: Instant) -> usize {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = PollTimeout::from(left.as_millis().min(60_000) as u16);
            let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, ms) {
                Ok(0) => return 0,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return 0,
            }
            match stdin.read(buf) {
                Ok(n) => return n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted || e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return 0;
                    }
                }
                Err(_) => return 0,
            }
        }
    }

    fn read_exact_by(stdin: &mut std::fs::File, buf: &mut [u8], deadline: Instant) -> bool {
        let mut got = 0;
        while got < buf.len() {
            match read_by(stdin, &mut buf[got..], deadline) {
                0 => return false,
                n => got += n,
            }
        }
        true
    }

    /// The client's protocol version, after the protect-args block if one is still unread.
    fn client_version(stdin: &mut std::fs::File, deadline: Instant) -> Option<u32> {
        let mut v = [0u8; 4];
        if !read_exact_by(stdin, &mut v, deadline) {
            return None;
        }
        if v == BLOCK_START {
            // Skip to the block's end: an empty argument, i.e. two NULs in a row.
            let mut last = 0xffu8;
            let mut b = [0u8; 1];
            for _ in 0..crate::protect_args::MAX_BLOCK_BYTES {
                if !read_exact_by(stdin, &mut b, deadline) {
                    return None;
                }
                if b[0] == 0 && last == 0 {
                    return read_exact_by(stdin, &mut v, deadline).then(|| u32::from_le_bytes(v));
                }
                last = b[0];
            }
            return None;
        }
        Some(u32::from_le_bytes(v))
    }

    pub fn tell(pull: &Pull, line: &str, status: u8) -> bool {
        if std::io::stdin().is_terminal() || std::io::stdout().is_terminal() {
            return false;
        }
        let Ok(mut stdin) = crate::protect_args::unbuffered_stdin() else { return false };
        let Some(client) = client_version(&mut stdin, Instant::now() + VERSION_WAIT) else { return false };
        let Some(bytes) = pull.failure(client, line, status) else {
            log::debug!("the client speaks protocol {client}, which has no MSG_ERROR: the status goes through ssh only");
            return false;
        };
        let mut out = std::io::stdout().lock();
        if out.write_all(&bytes).and_then(|()| out.flush()).is_err() {
            return false;
        }
        // Wait for the client's answer (or its end), so that the connection
        // closes after the client has read everything.
        let answer = Answer { lists: pull.client_lists() };
        let deadline = Instant::now() + ANSWER_WAIT;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let answered = loop {
            if answer.complete(&got) {
                break true;
            }
            match read_by(&mut stdin, &mut buf, deadline) {
                0 => break false,
                n if got.len() < 1 << 20 => got.extend_from_slice(&buf[..n]),
                _ => {}
            }
        };
        log::debug!(
            "told the client (protocol {client}) snaprsync's failure in-band; {} after {} bytes",
            if answered { "it answered" } else { "it ended or did not answer" },
            got.len()
        );
        true
    }
}

#[cfg(not(unix))]
mod imp {
    use super::Pull;

    /// Not on Windows: the status goes back as before.
    pub fn tell(_: &Pull, _: &str, _: u8) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull(words: &[&str]) -> Option<Pull> {
        Pull::of(&words.iter().map(|w| w.as_bytes()).collect::<Vec<_>>())
    }

    #[test]
    fn only_the_sender_of_a_pull_speaks() {
        assert!(pull(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/src/"]).is_some());
        assert!(pull(&["--server", "-logDtpre.iLsfxCIvu", ".", "/dst/"]).is_none(), "a push");
        assert!(pull(&["--server", "-logDtpre.iLsfxCIvu", ".", "--sender"]).is_none(), "a path named --sender");
        assert!(pull(&["-a", "/src/", "/dst/"]).is_none(), "a local rsync");
    }

    #[test]
    fn the_letters_and_lists_are_the_clients() {
        let p = pull(&["--server", "--sender", "-logDtprze.iLsfxCIvu", ".", "/src/"]).unwrap();
        assert_eq!(p.info, ".iLsfxCIvu");
        assert!(p.compress_list && p.checksum_list);
        assert_eq!(p.compat_flags(), 0x1f8);
        let p =
            pull(&["--server", "--sender", "-logDtpre.iLsfxCIvu", "--checksum-choice=md5", "--compress-choice=zstd", ".", "/"]).unwrap();
        assert!(!p.checksum_list && !p.compress_list);
        assert!(p.lists().is_empty());
        let p = pull(&["--server", "--sender", "-logDtpr", ".", "/src/"]).unwrap();
        assert_eq!((p.info.as_str(), p.compat_flags()), ("", 0));
    }

    /// The bytes, spelled out as rsync 3.2+ reads them.
    #[test]
    fn the_failure_as_rsync_reads_it() {
        let p = pull(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/src/"]).unwrap();
        let b = p.failure(32, "no", 83).unwrap();
        let mut want = vec![31, 0, 0, 0, 0x81, 0xf8, CHECKSUMS.len() as u8];
        want.extend_from_slice(CHECKSUMS.as_bytes());
        want.extend_from_slice(&[1, 0, 0, 0]);
        want.extend_from_slice(&[14, 0, 0, 10]);
        want.extend_from_slice(b"snaprsync: no\n");
        want.extend_from_slice(&[4, 0, 0, 93, 83, 0, 0, 0]);
        assert_eq!(b, want);
    }

    #[test]
    fn protocol_30_gets_the_status_only_from_a_client_that_reads_it() {
        let new = pull(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/src/"]).unwrap();
        let old = pull(&["--server", "--sender", "-logDtpre.iLsf", ".", "/src/"]).unwrap();
        assert!(new.failure(30, "x", 80).unwrap().ends_with(&[4, 0, 0, 93, 80, 0, 0, 0]));
        let b = old.failure(30, "x", 80).unwrap();
        assert!(b.ends_with(b"snaprsync: x\n"), "{b:?}");
        assert_eq!(&b[4..5], &[CF_SAFE_FLIST as u8]);
        for v in [0, 20, 29, 41, u32::from_le_bytes(*b"rsyn")] {
            assert!(new.failure(v, "x", 80).is_none(), "{v}");
        }
    }

    #[test]
    fn a_long_line_is_cut_to_what_rsync_reads() {
        let p = pull(&["--server", "--sender", ".", "/"]).unwrap();
        let b = p.failure(31, &"é".repeat(5000), 81).unwrap();
        let header = u32::from_le_bytes(b[9..13].try_into().unwrap());
        assert_eq!(header >> 24, MPLEX_BASE + MSG_ERROR);
        assert!((header & 0xffffff) as usize <= MAX_LINE + 1);
    }

    #[test]
    fn the_answer_is_found_after_the_lists_and_data() {
        let a = Answer { lists: 2 };
        let mut s = vec![3, b'a', b'b', b'c', 0x80, 2, b'x', b'y'];
        assert!(!a.complete(&s));
        s.extend_from_slice(&[4, 0, 0, 7, 0, 0, 0, 93]);
        assert!(!a.complete(&s), "MSG_DATA holding the bytes of a header is data");
        s.extend_from_slice(&[0, 0, 0, 93]);
        assert!(a.complete(&s));
    }
}
