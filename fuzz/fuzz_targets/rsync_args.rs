//! Fuzzes the rsync argv model and the restricted-mode check on top of it.
//! The input is split into arguments at 0x00 bytes; if it holds a 0x01 byte,
//! what follows is a protect-args block (also split at 0x00).
//!
//! Properties: no panic; a parsed argv renders back byte for byte; the options
//! and sources index into it; a protected merge parses; and an invocation the
//! restricted check accepts (read-only policy) is a server sender whose every
//! option is a known rsync option, with no source outside the allowed root; a
//! refusal fits on one line.

#![no_main]

use libfuzzer_sys::fuzz_target;
use snaprsync::restrict::{check, Policy};
use snaprsync::rsync_args::{parse, parse_with_protected, Role};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

fn split(b: &[u8]) -> Vec<OsString> {
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == 0).map(|a| OsString::from_vec(a.to_vec())).collect()
}

fuzz_target!(|data: &[u8]| {
    let (cmd, block) = match data.iter().position(|&b| b == 1) {
        Some(p) => (&data[..p], Some(&data[p + 1..])),
        None => (data, None),
    };
    let args = split(cmd);
    let Ok(inv) = parse(&args) else { return };
    assert_eq!(inv.render_with_sources(|s| s.to_owned()), args);
    for o in inv.options() {
        assert!(o.arg < args.len());
    }
    for &k in inv.source_indices().iter().chain(inv.positional_indices()) {
        assert!(k < args.len());
    }
    // A root that does not exist: nothing with a path can pass.
    let policy = Policy { allow: vec![PathBuf::from("/nonexistent-fuzz-root")], allow_write: Vec::new() };
    match check(&inv, &policy) {
        Ok(()) => {
            assert_eq!(inv.role, Role::ServerSender);
            assert!(inv.options().iter().all(|o| o.known));
            assert!(inv.protect_args || inv.sources().next().is_none(), "a source passed a check against a missing root");
        }
        Err(r) => {
            let line = r.to_string();
            assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
        }
    }
    if let Some(block) = block {
        let block = split(block);
        if let Ok(merged) = parse_with_protected(&args, &block) {
            assert!(!merged.protect_args);
            assert_eq!(merged.render_with_sources(|s| s.to_owned()), merged.args);
            if check(&merged, &policy).is_ok() {
                assert!(merged.sources().next().is_none());
            }
        }
    }
});
