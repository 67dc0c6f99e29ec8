//! The bounds of restricted mode's numeric options, and rsync's reading of a
//! size (see the table in the module documentation of `restrict`).

use crate::rsync_options::Number;

/// Why a numeric value is refused, if it is.
pub(super) fn check_number(number: Number, value: &[u8]) -> Result<(), String> {
    match number {
        Number::Int { min, max } => {
            let digits = value.strip_prefix(b"-").unwrap_or(value);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || (digits.len() > 1 && digits[0] == b'0') {
                return Err("not a whole number in plain decimal (like 60)".into());
            }
            let n = std::str::from_utf8(value).ok().and_then(|v| v.parse::<i64>().ok());
            match n {
                Some(n) if (min..=max).contains(&n) => Ok(()),
                _ => Err("out of range".into()),
            }
        }
        Number::Size { unit, min, max, zero } => match parse_size(value, unit) {
            None => Err("not a size rsync reads (a decimal number, then K, M, G, T or P, then B or iB, like 100K or 1.5GiB)".into()),
            Some(0) if zero => Ok(()),
            Some(0) if min > 0 => Err("0 lifts rsync's cap".into()),
            Some(n) if (i128::from(min)..=i128::from(max)).contains(&n) => Ok(()),
            Some(_) => Err("out of range".into()),
        },
    }
}

/// rsync's `parse_size_arg`: the size `v` names in bytes (`unit` when it names
/// none), or `None` for a form rsync refuses. Unlike rsync, a value without a
/// digit (`""`, `K`, which rsync reads as 0) is refused too.
pub fn parse_size(v: &[u8], unit: u8) -> Option<i128> {
    let digits = |from: usize| v[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut i = digits(0);
    let mut seen = i;
    if v.get(i) == Some(&b'.') {
        let frac = digits(i + 1);
        seen += frac;
        i += 1 + frac;
    }
    if seen == 0 {
        return None;
    }
    let number: f64 = std::str::from_utf8(&v[..i]).ok()?.parse().ok()?;
    let unit = match v.get(i) {
        Some(&c) if c != b'+' && c != b'-' => {
            i += 1;
            c
        }
        _ => unit,
    };
    let reps = match unit.to_ascii_lowercase() {
        b'b' => 0,
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return None,
    };
    let mult: u64 = match v.get(i) {
        Some(b'b' | b'B') => {
            i += 1;
            1000
        }
        None | Some(b'+' | b'-') => 1024,
        Some(_) if v[i..].len() >= 2 && v[i..i + 2].eq_ignore_ascii_case(b"ib") => {
            i += 2;
            1024
        }
        Some(_) => return None,
    };
    // As rsync computes it: in floating point, then truncated (saturating here).
    let mut size = (number * mult.pow(reps) as f64) as i128;
    match (v.get(i), v.get(i + 1)) {
        (Some(b'+'), Some(b'1')) => size = size.saturating_add(1),
        (Some(b'-'), Some(b'1')) => size = size.saturating_sub(1),
        _ => return (i == v.len()).then_some(size),
    }
    (i + 2 == v.len()).then_some(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restrict::allowlist::rule;
    #[cfg(unix)]
    use crate::restrict::check;
    #[cfg(unix)]
    use crate::restrict::test_support::*;
    #[cfg(unix)]
    use crate::rsync_args::parse;
    use crate::rsync_args::OptionName;
    use crate::rsync_options::{Rule, OPTIONS};

    #[test]
    fn parse_size_reads_rsync_forms() {
        for (v, unit, want) in [
            ("0", b'b', 0),
            ("100", b'b', 100),
            ("100", b'K', 102_400),
            ("1k", b'b', 1024),
            ("1K", b'b', 1024),
            ("1KB", b'b', 1000),
            ("1kb", b'b', 1000),
            ("1KiB", b'b', 1024),
            ("1kIb", b'b', 1024),
            ("1.5M", b'b', 1_572_864),
            ("1.5MB", b'b', 1_500_000),
            (".5K", b'b', 512),
            ("2.", b'b', 2),
            ("1G", b'B', 1 << 30),
            ("1T", b'b', 1 << 40),
            ("1P", b'b', 1 << 50),
            ("1G+1", b'b', (1 << 30) + 1),
            ("1K-1", b'b', 1023),
            ("10b", b'K', 10),
            ("10+1", b'b', 11),
            ("0-1", b'b', -1),
        ] {
            assert_eq!(parse_size(v.as_bytes(), unit), Some(want), "{v} ({})", char::from(unit));
        }
        for bad in ["", "K", ".", "-1", "+1", "1E", "1e9", "0x10", "1,5G", "1 G", " 1", "1G+2", "1G+", "1Gi", "1GiBx", "1KBB", "1.2.3"] {
            assert_eq!(parse_size(bad.as_bytes(), b'b'), None, "{bad:?}");
        }
        assert!(parse_size(format!("{}P", "9".repeat(40)).as_bytes(), b'b').unwrap() > i128::from(u64::MAX));
        // Saturated, then +1: no overflow.
        assert_eq!(parse_size(format!("{}+1", "8".repeat(40)).as_bytes(), b'P'), Some(i128::MAX));
    }

    #[test]
    fn numeric_bounds_cover_allowed_options_only() {
        for o in OPTIONS.iter().filter(|o| o.bound.is_some()) {
            assert_eq!(o.rule, Rule::Allow, "{o:?}");
        }
        for refused in ["contimeout", "compress-threads", "zt"] {
            assert!(matches!(rule(&OptionName::Long(refused.into())), Rule::Refuse(_)), "--{refused} is bounded only while refused");
        }
    }

    #[cfg(unix)]
    #[test]
    fn numeric_values_are_bounded() {
        let w = World::new();
        let pol = w.policy();
        let run = |opt: &str| {
            let mut args = w.argv(&["--server", "--sender", "-r"]);
            args.push(opt.into());
            args.extend(w.argv(&[".", "@/allowed/"]));
            check(&parse(&args).unwrap(), &pol)
        };
        for ok in [
            "--max-alloc=1G",
            "--max-alloc=1M",
            "--max-alloc=1048576",
            "--max-alloc=16G",
            "--max-alloc=16GiB",
            "--max-alloc=1.5GiB",
            "--max-alloc=2000MB",
            "--max-alloc=4g",
            "--bwlimit=0",
            "--bwlimit=100",
            "--bwlimit=1.5M",
            "--bwlimit=512b",
            "--bwlimit=10MB",
            "--bwlimit=1T",
            "--max-size=0",
            "--max-size=100M",
            "--max-size=1.5gb",
            "--max-size=1G+1",
            "--min-size=1k-1",
            "--min-size=1",
            "-B2048",
            "-B0",
            "-B131072",
            "--block-size=128K",
            "--block-size=8KiB",
            "--timeout=0",
            "--timeout=600",
            "--timeout=86400",
            "--compress-level=0",
            "--compress-level=9",
            "--compress-level=-1",
            "--compress-level=-131072",
            "--zl=22",
            "--modify-window=2",
            "--modify-window=-1",
            "-@-1",
            "-@2",
            "-@=2",
            "--checksum-seed=32761",
            "--checksum-seed=-5",
            "--checksum-seed=2147483647",
            "--max-delete=0",
            "--max-delete=100",
            "--max-delete=-1",
        ] {
            run(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, says) in [
            ("--max-alloc=0", "lifts rsync's cap"),
            ("--max-alloc=0M", "lifts rsync's cap"),
            ("--max-alloc=0.0G", "lifts rsync's cap"),
            ("--max-alloc=1K", "out of range"),
            ("--max-alloc=1M-1", "out of range"),
            ("--max-alloc=17G", "out of range"),
            ("--max-alloc=16G+1", "out of range"),
            ("--max-alloc=99999999999999999999999999999P", "out of range"),
            ("--max-alloc=1E", "not a size"),
            ("--max-alloc=", "not a size"),
            ("--max-alloc=G", "not a size"),
            ("--max-alloc=-1", "not a size"),
            ("--max-alloc=1e9", "not a size"),
            ("--max-alloc=0x100000", "not a size"),
            ("--max-alloc=1G+2", "not a size"),
            ("--max-alloc=1 G", "not a size"),
            ("--max-alloc=1,5G", "not a size"),
            ("--bwlimit=-1", "not a size"),
            ("--bwlimit=2T", "out of range"),
            ("--bwlimit=100b", "out of range"),
            ("--max-size=2EB", "not a size"),
            ("--max-size=2048P", "out of range"),
            ("--min-size=0-1", "out of range"),
            ("-B131073", "out of range"),
            ("--block-size=1M", "out of range"),
            ("--timeout=-1", "out of range"),
            ("--timeout=86401", "out of range"),
            ("--timeout=99999999999999999999", "out of range"),
            ("--timeout=010", "plain decimal"),
            ("--timeout=0x10", "plain decimal"),
            ("--timeout=+5", "plain decimal"),
            ("--timeout= 5", "plain decimal"),
            ("--timeout=", "plain decimal"),
            ("--timeout=1.5", "plain decimal"),
            ("--timeout=-", "plain decimal"),
            ("--compress-level=23", "out of range"),
            ("--zl=-131073", "out of range"),
            ("--modify-window=-2", "out of range"),
            ("-@-2", "out of range"),
            ("--checksum-seed=2147483648", "out of range"),
            ("--max-delete=-2", "out of range"),
        ] {
            let r = run(bad).unwrap_err();
            assert!(r.why.contains(says) && r.why.contains(" takes "), "{bad}: {r}");
            assert!(!r.to_string().contains('\n'));
        }
        // The value in the next argument is read the same way.
        let mut args = w.argv(&["--server", "--sender", "-r", "--max-alloc", "0", ".", "@/allowed/"]);
        let r = check(&parse(&args).unwrap(), &pol).unwrap_err();
        assert!(r.arg() == "--max-alloc 0" && r.why.contains("lifts"), "{r}");
        args[4] = "1G".into();
        check(&parse(&args).unwrap(), &pol).unwrap();
    }
}
