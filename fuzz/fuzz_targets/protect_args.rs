//! Fuzzes the protect-args block reader: arbitrary bytes must never panic, a
//! successful read must render back to exactly the bytes it consumed, and the
//! reader must never take a byte past the first terminator.
//!
//! An input whose first byte has the top bit set selects small limits from its
//! next three bytes, so that the limit checks are reached; any other input is
//! read whole under snaprsync's real limits.

#![no_main]

use libfuzzer_sys::fuzz_target;
use snaprsync::protect_args::{read_block_with, render_block_with, Limits, ProtectArgsError};
use std::ffi::OsStr;
use std::io::Cursor;

/// Where the block in `data` ends by the framing alone: just after the first
/// empty string (a NUL at the start or right after another NUL), if any.
fn terminator_end(data: &[u8]) -> Option<usize> {
    let mut at_start = true;
    for (i, &b) in data.iter().enumerate() {
        if b == 0 {
            if at_start {
                return Some(i + 1);
            }
            at_start = true;
        } else {
            at_start = false;
        }
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let (limits, body) = match data.split_first() {
        Some((&sel, rest)) if sel & 0x80 != 0 && rest.len() >= 3 => (
            Limits {
                max_args: usize::from(rest[0] % 16),
                max_arg_len: usize::from(rest[1] % 32),
                max_block_bytes: usize::from(rest[2]),
            },
            &rest[3..],
        ),
        _ => (Limits::DEFAULT, data),
    };

    let mut cur = Cursor::new(body);
    let result = read_block_with(&mut cur, &limits);
    let used = usize::try_from(cur.position()).unwrap();
    let end = terminator_end(body);

    // Never past the end of the input, the limit, or the terminator.
    assert!(used <= body.len());
    assert!(used <= limits.max_block_bytes);
    if let Some(end) = end {
        assert!(used <= end, "read {used} bytes, block ends at {end}");
    }

    match result {
        Ok(args) => {
            assert_eq!(Some(used), end);
            let rendered = render_block_with(&args, &limits).expect("a block that was read renders");
            assert_eq!(rendered, &body[..used]);
            let again = read_block_with(&mut Cursor::new(&rendered), &limits).expect("rendered block reads");
            assert_eq!(again, args);
        }
        Err(ProtectArgsError::EofInArg { .. } | ProtectArgsError::EofBeforeEnd { .. }) => {
            assert_eq!(used, body.len());
            assert!(end.is_none());
        }
        Err(ProtectArgsError::EmptyBlock) => assert_eq!(used, 1),
        Err(ProtectArgsError::BlockTooLarge { .. }) => assert_eq!(used, limits.max_block_bytes),
        Err(ProtectArgsError::Io(e)) => panic!("a cursor cannot fail: {e}"),
        Err(e) => {
            // A limit or UTF-8 refusal; its message must stay on one line.
            assert!(!e.to_string().contains('\n'));
        }
    }

    // The other direction: strings cut from the input render and read back.
    let text = String::from_utf8_lossy(body);
    let args: Vec<&OsStr> = text.split('\u{1}').map(OsStr::new).collect();
    if let Ok(block) = render_block_with(&args, &limits) {
        let mut cur = Cursor::new(&block);
        let back = read_block_with(&mut cur, &limits).expect("rendered block reads");
        assert_eq!(back, args);
        assert_eq!(usize::try_from(cur.position()).unwrap(), block.len());
    }
});
