//! Reads `/proc/self/mountinfo` (pure parsing; the caller reads the file), to
//! tell which mount, and so which filesystem type, holds a path, and through
//! which other mount a bind mount's directory can be reached.

use std::path::{Path, PathBuf};

/// One line of mountinfo: the fields snaprsync needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The path inside the filesystem that is mounted here (btrfs: `/@home`).
    pub root: PathBuf,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
    /// The device's `major:minor`, as in `/sys/dev/block/`.
    pub dev: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the whole file; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let mut post = post.split(' ');
            let fstype = post.next()?.to_owned();
            let source = unescape(post.next()?);
            Some(Mount {
                root: unescape(pre.get(3)?).into(),
                mount_point: unescape(pre.get(4)?).into(),
                fstype,
                source,
                dev: (*pre.get(2)?).to_owned(),
            })
        })
        .collect()
}

/// The mount that holds `path` (absolute, canonical): the last-mounted one with
/// the longest mount point that is a prefix of it (later lines hide earlier ones).
pub fn find<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    let mut best: Option<&Mount> = None;
    for m in mounts {
        if path.starts_with(&m.mount_point) && best.is_none_or(|b| m.mount_point.components().count() >= b.mount_point.components().count())
        {
            best = Some(m);
        }
    }
    best
}

/// The other mounts of `bind`'s filesystem (same device and type) whose root
/// is above `bind`'s root, each with the path at which the directory
/// `bind` shows is seen through it: for `mount --bind /data/www /srv/www`
/// (root `/www`, or `/@data/www` for a btrfs subvolume `@data`), the mount at
/// `/data` and `/data/www`. The mount whose root is nearest comes first; a
/// mount hidden there by a later one is left out. The caller checks that the
/// path is the same directory (mountinfo cannot tell a renamed one).
pub fn reaching<'a>(mounts: &'a [Mount], bind: &Mount) -> Vec<(&'a Mount, PathBuf)> {
    let mut found: Vec<(&Mount, PathBuf)> = mounts
        .iter()
        .filter(|m| *m != bind && m.dev == bind.dev && m.fstype == bind.fstype)
        .filter_map(|m| {
            bind.root.strip_prefix(&m.root).ok().filter(|rest| !rest.as_os_str().is_empty()).map(|rest| (m, m.mount_point.join(rest)))
        })
        .filter(|(m, seen)| find(mounts, seen) == Some(*m))
        .collect();
    found.sort_by_key(|(m, _)| std::cmp::Reverse(m.root.components().count()));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
43 22 0:39 / /mnt/data rw,relatime shared:30 - btrfs /dev/loop0 rw,subvolid=5,subvol=/
44 22 0:40 /@home /home rw,relatime shared:31 - btrfs /dev/sdb2 rw,subvolid=257,subvol=/@home
45 22 0:41 / /mnt/with\\040space rw - btrfs /dev/loop1 rw
46 43 0:42 / /mnt/data rw - tmpfs tmpfs rw
";

    #[test]
    fn parses_fields_and_escapes() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 5);
        assert_eq!(m[2].root, Path::new("/@home"));
        assert_eq!(m[2].fstype, "btrfs");
        assert_eq!(m[2].source, "/dev/sdb2");
        assert_eq!(m[3].mount_point, Path::new("/mnt/with space"));
    }

    #[test]
    fn finds_the_deepest_and_latest_mount() {
        let m = parse(SAMPLE);
        assert_eq!(find(&m, Path::new("/etc/passwd")).unwrap().fstype, "ext4");
        assert_eq!(find(&m, Path::new("/home/u")).unwrap().mount_point, Path::new("/home"));
        assert_eq!(find(&m, Path::new("/homer")).unwrap().fstype, "ext4");
        // Mounted over: the later line wins.
        assert_eq!(find(&m, Path::new("/mnt/data/x")).unwrap().fstype, "tmpfs");
        assert_eq!(find(&m, Path::new("/mnt/with space/f")).unwrap().source, "/dev/loop1");
    }

    /// As a loop-mounted btrfs shows them: the top level, subvolume `@data`,
    /// a bind of its `www`, a bind of that bind, another filesystem.
    const BINDS: &str = "\
46 27 0:40 / /top rw - btrfs /dev/loop0 rw,subvolid=5,subvol=/
47 27 0:40 /@data /data rw - btrfs /dev/loop0 rw,subvolid=256,subvol=/@data
45 27 0:40 /@data/www /srv/www rw - btrfs /dev/loop0 rw,subvolid=256,subvol=/@data
49 27 0:40 /@data/www /srv/again rw - btrfs /dev/loop0 rw,subvolid=256,subvol=/@data
50 27 0:41 /@data/www /other rw - btrfs /dev/loop1 rw,subvolid=256,subvol=/@data
51 46 0:42 / /top/@data rw - tmpfs tmpfs rw
";

    #[test]
    fn a_bind_mount_is_reached_through_the_nearest_mount_of_its_filesystem() {
        let m = parse(BINDS);
        let seen =
            |all: &[Mount], k: usize| reaching(all, &all[k]).into_iter().map(|(r, p)| (r.mount_point.clone(), p)).collect::<Vec<_>>();
        let p = |a: &str, b: &str| (PathBuf::from(a), PathBuf::from(b));
        // /top/@data is hidden by a tmpfs: only /data (the other bind of www shows no more).
        assert_eq!(seen(&m, 2), [p("/data", "/data/www")]);
        assert!(seen(&m, 1).is_empty(), "the top level's place of @data is hidden");
        assert!(seen(&m, 4).is_empty(), "another filesystem is never a way in");
        let unhidden = parse(&BINDS.lines().take(5).collect::<Vec<_>>().join("\n"));
        assert_eq!(seen(&unhidden, 2), [p("/data", "/data/www"), p("/top", "/top/@data/www")]);
        assert_eq!(seen(&unhidden, 1), [p("/top", "/top/@data")]);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        assert!(parse("garbage\n1 2 3\n").is_empty());
        assert_eq!(unescape("a\\04"), "a\\04");
        assert_eq!(unescape("\\134x"), "\\x");
    }
}
