//! Text from outside (a name a client chose, a line of a config file, a
//! command's stderr) made fit for one line of a message or a log record.
//!
//! One escaping for every message: control characters (a newline would forge a
//! log line, an escape sequence would repaint a terminal), line and paragraph
//! separators and bidirectional overrides are written as escapes; everything
//! else, backslashes included (Windows paths stay readable), is kept.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a message as it is: a control character (C0,
/// DEL, C1: a line break, a terminal escape), a line or paragraph separator, or
/// a bidirectional override that would show the line's text out of order.
fn must_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Appends `c`, escaped if [`must_escape`]: `\n`, `\r` and `\t` written so,
/// other ASCII control bytes as `\x1b`, the rest as `\u{2028}`.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if u32::from(c) < 0x80 && must_escape(c) => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c if must_escape(c) => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// `s` on one line, every character of [`must_escape`] escaped; borrowed when
/// nothing needs it.
pub fn one_line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(must_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// `b` (bytes from outside, perhaps not UTF-8) on one line, as [`one_line`]
/// writes text, with each byte that is not UTF-8 as `\xNN`, and cut to its
/// first `max` characters followed by `...`. An empty `b` is shown as `''`,
/// so that a message never quotes nothing.
pub fn shown(b: &[u8], max: usize) -> String {
    if b.is_empty() {
        return "''".into();
    }
    let mut out = String::with_capacity(b.len().min(max) + 8);
    let mut n = 0;
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if n == max {
                out.push_str("...");
                return out;
            }
            push_escaped(&mut out, c);
            n += 1;
        }
        for byte in chunk.invalid() {
            if n == max {
                out.push_str("...");
                return out;
            }
            let _ = write!(out, "\\x{byte:02x}");
            n += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert!(matches!(one_line("plain /srv/ünïcödé/naïve €.txt C:\\x"), Cow::Borrowed(_)));
        for (raw, want) in [
            ("a\nb", "a\\nb"),
            ("a\r\nb", "a\\r\\nb"),
            ("tab\there", "tab\\there"),
            ("esc\x1b[31mred", "esc\\x1b[31mred"),
            ("nul\0", "nul\\x00"),
            ("del\x7f", "del\\x7f"),
            ("bell\x07", "bell\\x07"),
            ("nel\u{85}x", "nel\\u{85}x"),
            ("ls\u{2028}ps\u{2029}", "ls\\u{2028}ps\\u{2029}"),
            ("bidi\u{202e}txt.exe", "bidi\\u{202e}txt.exe"),
            ("back\\slash", "back\\slash"),
        ] {
            assert_eq!(one_line(raw), want, "{raw:?}");
            assert_eq!(shown(raw.as_bytes(), usize::MAX), want, "{raw:?}");
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_shown_as_hex() {
        assert_eq!(shown(b"caf\xe9", 60), "caf\\xe9");
        assert_eq!(shown(b"\xff\xfe/ok\n", 60), "\\xff\\xfe/ok\\n");
        assert_eq!(shown("café".as_bytes(), 60), "café");
    }

    #[test]
    fn long_text_is_cut_by_characters() {
        assert_eq!(shown(b"", 5), "''");
        assert_eq!(shown(b"abcde", 5), "abcde");
        assert_eq!(shown(b"abcdef", 5), "abcde...");
        assert_eq!(shown("ééééé€".as_bytes(), 5), "ééééé...");
        assert_eq!(shown(b"\n\n\n", 2), "\\n\\n...");
        assert_eq!(shown(b"ab\xff\xff", 3), "ab\\xff...");
    }

    #[test]
    fn the_result_is_always_one_line() {
        let all: Vec<u8> = (0..=255).collect();
        let s = shown(&all, usize::MAX);
        assert!(!s.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']), "{s}");
        assert!(s.chars().all(|c| !must_escape(c)), "{s}");
    }
}
