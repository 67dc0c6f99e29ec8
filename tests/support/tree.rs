//! Sample source trees and comparable descriptions of copied trees.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Fills `root` with a small tree that exercises names and file types:
/// nested dirs, an empty dir, names with spaces and non-ASCII, a symlink,
/// a hard link, an empty file and a file of a few MiB.
pub fn make_sample(root: &Path) {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir_all(root.join("empty dir")).unwrap();
    fs::create_dir_all(root.join("ünïcödé")).unwrap();
    fs::write(root.join("top.txt"), "top level\n").unwrap();
    fs::write(root.join("a/one.txt"), "one\n".repeat(100)).unwrap();
    fs::write(root.join("a/b/two.bin"), pattern(70_000, 2)).unwrap();
    fs::write(root.join("a/b/c/three"), pattern(3_000_000, 3)).unwrap();
    fs::write(root.join("with space.txt"), "spaces\n").unwrap();
    fs::write(root.join("ünïcödé/naïve €.txt"), "unicode\n").unwrap();
    fs::write(root.join("empty"), "").unwrap();
    fs::set_permissions(root.join("a/one.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("a/one.txt", root.join("link-to-one")).unwrap();
    fs::hard_link(root.join("top.txt"), root.join("hardlink-to-top")).unwrap();
}

/// Deterministic bytes that differ per `seed`.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(seed as u32) as u8).collect()
}

/// One line per entry under `root` (root itself excluded), keyed by relative
/// path: the type, permissions, and for files size, mtime and a content hash;
/// for symlinks the target. Directory mtimes are left out on purpose.
pub fn describe(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display())).map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let md = fs::symlink_metadata(&path).unwrap();
        let mode = md.mode() & 0o7777;
        let desc = if md.file_type().is_symlink() {
            format!("link -> {}", fs::read_link(&path).unwrap().display())
        } else if md.is_dir() {
            walk(root, &path, out);
            format!("dir {mode:o}")
        } else {
            let data = fs::read(&path).unwrap();
            format!("file {mode:o} size={} mtime={} hash={:016x}", md.len(), md.mtime(), fnv1a(&data))
        };
        out.insert(rel, desc);
    }
}

/// Relative paths of every entry under `root`, sorted.
pub fn names(root: &Path) -> Vec<String> {
    describe(root).into_keys().collect()
}

/// Asserts two descriptions are equal, listing the differing entries.
pub fn assert_same(what: &str, left: &BTreeMap<String, String>, right: &BTreeMap<String, String>) {
    if left == right {
        return;
    }
    let mut diff = Vec::new();
    for (k, v) in left {
        match right.get(k) {
            None => diff.push(format!("  only left:  {k}  ({v})")),
            Some(w) if w != v => diff.push(format!("  differs:    {k}\n    left:  {v}\n    right: {w}")),
            _ => {}
        }
    }
    for (k, v) in right {
        if !left.contains_key(k) {
            diff.push(format!("  only right: {k}  ({v})"));
        }
    }
    panic!("{what}: trees differ ({} entries left, {} right)\n{}", left.len(), right.len(), diff.join("\n"));
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The inode of a file, for hard-link checks.
pub fn inode(path: &Path) -> u64 {
    fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display())).ino()
}
