//! Fuzzes the SSH_ORIGINAL_COMMAND reader of restricted mode: arbitrary bytes
//! must never panic; an accepted command must be an rsync server argv within
//! the limits, and quoting its words the way rsync >= 3.2.4 does must read back
//! to the same words. A refusal must fit on one line.

#![no_main]

use libfuzzer_sys::fuzz_target;
use snaprsync::restrict::{command_argv, MAX_COMMAND_BYTES, MAX_WORDS, MAX_WORD_LEN};

/// Backslash before every byte that is not plainly safe (a superset of what
/// rsync escapes), so that no shell syntax survives.
fn escape(word: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in word {
        if !(b.is_ascii_alphanumeric() || b"-_./=,:@%+".contains(&b) || b >= 0x80) {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    match command_argv(data) {
        Ok(args) => {
            assert!(data.len() <= MAX_COMMAND_BYTES);
            assert!(!data.contains(&0) && !data.contains(&b'\n') && !data.contains(&b'\r'));
            assert!(args.len() < MAX_WORDS);
            assert_eq!(args.first().map(|a| a.as_encoded_bytes()), Some(&b"--server"[..]));
            for a in &args {
                let b = a.as_encoded_bytes();
                assert!(b.len() <= MAX_WORD_LEN);
                assert!(!b.starts_with(b"--snap-"));
            }
            // Re-quote and read again: the same words.
            let mut line = b"/usr/bin/rsync".to_vec();
            for a in &args {
                line.push(b' ');
                if a.is_empty() {
                    line.extend_from_slice(b"''");
                } else {
                    line.extend(escape(a.as_encoded_bytes()));
                }
            }
            if line.len() <= MAX_COMMAND_BYTES {
                let again = command_argv(&line).expect("re-quoted command reads");
                assert_eq!(again, args);
            }
            // The argv model must take whatever the reader gives it.
            let _ = snaprsync::rsync_args::parse(&args);
        }
        Err(r) => {
            let line = r.to_string();
            assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\0'), "{line:?}");
            assert!(!r.arg().is_empty());
        }
    }
});
