//! Fuzzes the text checks restricted mode makes on paths (`restrict::normalise`,
//! `restrict::check_path_text`) against a port of rsync's own `clean_fname`.
//! The input, up to its first NUL (rsync's strings end there), is one path.
//!
//! Properties: no panic; `normalise` is idempotent, keeps an absolute path
//! absolute, leaves no `//` and no `.` component, and keeps every other
//! component in order; it agrees with `clean_fname` without `..` collapsing;
//! and a path the check accepts means the same to rsync with and without its
//! `..` collapsing (the cleaning it applies to `-s` arguments), and that path
//! is not under `/proc`, `/sys` or `/dev`. A refusal fits on one line. The same
//! bytes also go through `restrict::parse_size`, which must not panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use snaprsync::restrict::{check_path_text, normalise, parse_size};

const CFN_KEEP_DOT_DIRS: u32 = 1 << 0;
const CFN_KEEP_TRAILING_SLASH: u32 = 1 << 1;
const CFN_DROP_TRAILING_DOT_DIR: u32 = 1 << 2;
const CFN_COLLAPSE_DOT_DOT_DIRS: u32 = 1 << 3;

/// rsync's `clean_fname()` (util1.c, not its Cygwin branch), byte for byte:
/// the cleaning is done in place over a NUL-terminated buffer.
fn clean_fname(input: &[u8], flags: u32) -> Vec<u8> {
    let mut name = input.to_vec();
    name.push(0);
    let at = |name: &[u8], i: usize| name.get(i).copied().unwrap_or(0);
    let dot_dot = |name: &[u8], bp: usize| at(name, bp + 1) == b'.' && matches!(at(name, bp + 2), b'/' | 0);
    let (mut t, mut f, mut limit) = (0usize, 0usize, 0isize);
    let anchored = at(&name, 0) == b'/';
    if anchored {
        name[t] = name[f];
        t += 1;
        f += 1;
    } else if flags & CFN_KEEP_DOT_DIRS != 0 && at(&name, f) == b'.' && at(&name, f + 1) == b'/' {
        for _ in 0..2 {
            name[t] = name[f];
            t += 1;
            f += 1;
        }
    }
    while at(&name, f) != 0 {
        if name[f] == b'/' {
            f += 1;
            continue;
        }
        if name[f] == b'.' {
            if at(&name, f + 1) == b'/' && flags & CFN_KEEP_DOT_DIRS == 0 {
                f += 2;
                continue;
            }
            if at(&name, f + 1) == 0 && flags & CFN_DROP_TRAILING_DOT_DIR != 0 {
                break;
            }
            if flags & CFN_COLLAPSE_DOT_DOT_DIRS != 0 && dot_dot(&name, f) {
                // A pointer one before `t`, which may be one before the buffer.
                let mut s = t as isize - 1;
                if s == 0 && anchored {
                    f += 2;
                    continue;
                }
                while s > limit && name[(s - 1) as usize] != b'/' {
                    s -= 1;
                }
                if s != t as isize - 1 && (s <= 0 || name[(s - 1) as usize] == b'/') {
                    t = s.max(0) as usize;
                    f += 2;
                    continue;
                }
                limit = t as isize + 2;
            }
        }
        loop {
            let c = at(&name, f);
            if c == 0 {
                break;
            }
            name[t] = c;
            t += 1;
            f += 1;
            if c == b'/' {
                break;
            }
        }
    }
    if t > usize::from(anchored) && name[t - 1] == b'/' && flags & CFN_KEEP_TRAILING_SLASH == 0 {
        t -= 1;
    }
    name.truncate(t);
    if name.is_empty() {
        name.push(b'.');
    }
    name
}

fn components(p: &[u8]) -> Vec<&[u8]> {
    p.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").collect()
}

fn without_trailing_slash(p: &[u8]) -> &[u8] {
    if p.len() > 1 && p.ends_with(b"/") {
        &p[..p.len() - 1]
    } else {
        p
    }
}

fn kernel_fs(p: &[u8]) -> bool {
    ["/proc", "/sys", "/dev"].iter().any(|d| p == d.as_bytes() || p.starts_with(format!("{d}/").as_bytes()))
}

fuzz_target!(|data: &[u8]| {
    let path = &data[..data.iter().position(|&b| b == 0).unwrap_or(data.len())];

    let normal = normalise(path);
    assert_eq!(normalise(&normal), normal, "normalise is idempotent");
    assert!(!normal.windows(2).any(|w| w == b"//"));
    assert_eq!(normal.first() == Some(&b'/'), path.first() == Some(&b'/'));
    assert!(normal == b"." || !normal.split(|&b| b == b'/').any(|c| c == b"."));
    assert_eq!(components(&normal), components(path));

    // Without `..` collapsing, rsync cleans a path to exactly what is checked.
    assert_eq!(clean_fname(path, CFN_DROP_TRAILING_DOT_DIR), without_trailing_slash(&normal));

    // What rsync does to a `-s` argument (glob_expand), and the same without collapsing.
    let collapsed = clean_fname(path, CFN_KEEP_DOT_DIRS | CFN_KEEP_TRAILING_SLASH | CFN_COLLAPSE_DOT_DOT_DIRS);
    let literal = clean_fname(path, CFN_KEEP_DOT_DIRS | CFN_KEEP_TRAILING_SLASH);
    match check_path_text(path) {
        Ok(()) => {
            assert_eq!(collapsed, literal, "an accepted path means the same to rsync");
            let read = clean_fname(&collapsed, CFN_DROP_TRAILING_DOT_DIR);
            assert_eq!(read, without_trailing_slash(&normal));
            assert!(!kernel_fs(&read), "accepted under a kernel filesystem");
            assert!(!components(path).contains(&&b".."[..]));
        }
        Err(r) => {
            let line = r.to_string();
            assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
        }
    }

    for unit in [b'b', b'K', b'B'] {
        let _ = parse_size(path, unit);
    }
});
