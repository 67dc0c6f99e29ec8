//! The run journal: before a run creates a snapshot it records who it is, so
//! that whatever a killed run leaves (kill -9, power loss) is recognised and
//! swept by the next start, and nothing a live run owns is ever touched.
//!
//! One file per run in `state_dir`, named after the run's stamp (the prefix of
//! its snapshot names), written atomically (write, fsync, rename, fsync dir).
//! A torn or corrupt file is reported and moved aside, never fatal.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::stamp::{stamp_owner_may_live, NAME_PREFIX};

const SUFFIX: &str = ".toml";

/// What one run records about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The prefix of every snapshot name this run gives.
    pub stamp: String,
    pub pid: u32,
    /// The process's start time as the OS counts it: with `pid`, unique for
    /// the life of the system, so a reused pid is not mistaken for the owner.
    pub start: u64,
    /// Which boot the run belongs to: after a reboot every entry is dead.
    pub boot: String,
    /// When the run started (UTC, RFC 3339).
    pub created: String,
    /// The provider that makes the snapshots.
    pub provider: String,
    /// The source paths, for `snaprsync list`; any bytes (see [`paths`]).
    #[serde(with = "paths")]
    pub sources: Vec<PathBuf>,
    /// The detached remover the run handed its removal to, recorded before
    /// the remover may start (see `guard`): while it lives, the run is live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remover: Option<Process>,
}

/// A process, unique for the life of the boot: its pid and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    pub pid: u32,
    pub start: u64,
}

impl Process {
    /// Process `pid` as it runs now; `None` if it does not.
    pub fn running(pid: u32) -> Option<Process> {
        crate::host::process_start(pid).map(|start| Process { pid, start })
    }

    fn alive(&self) -> bool {
        crate::host::process_start(self.pid) == Some(self.start)
    }
}

/// Paths in an entry, byte for byte: TOML strings are UTF-8, a file name need
/// not be. A UTF-8 path is a plain string, as it always was; any other is an
/// inline table `{ escaped = "..." }` whose string holds each byte that is not
/// UTF-8 as `\xNN` and a backslash as `\\`.
mod paths {
    use std::path::PathBuf;

    use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Text(String),
        Escaped { escaped: String },
    }

    pub fn serialize<S: Serializer>(paths: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(paths.iter().map(|p| match p.to_str() {
            Some(text) => Stored::Text(text.to_owned()),
            None => Stored::Escaped { escaped: escape(p.as_os_str().as_encoded_bytes()) },
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
        Vec::<Stored>::deserialize(d)?
            .into_iter()
            .map(|stored| match stored {
                Stored::Text(text) => Ok(PathBuf::from(text)),
                Stored::Escaped { escaped } => unescape(&escaped).map(path_from_bytes).map_err(D::Error::custom),
            })
            .collect()
    }

    fn escape(b: &[u8]) -> String {
        let mut out = String::new();
        for chunk in b.utf8_chunks() {
            out.push_str(&chunk.valid().replace('\\', "\\\\"));
            for byte in chunk.invalid() {
                out.push_str(&format!("\\x{byte:02x}"));
            }
        }
        out
    }

    fn unescape(s: &str) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(s.len());
        let mut bytes = s.bytes();
        while let Some(b) = bytes.next() {
            if b != b'\\' {
                out.push(b);
                continue;
            }
            match bytes.next() {
                Some(b'\\') => out.push(b'\\'),
                Some(b'x') => {
                    let hex = [bytes.next(), bytes.next()];
                    let byte = match hex {
                        [Some(h), Some(l)] => std::str::from_utf8(&[h, l]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()),
                        _ => None,
                    };
                    out.push(byte.ok_or_else(|| format!("a bad \\x escape in the path {s:?}"))?);
                }
                _ => return Err(format!("a backslash that escapes nothing in the path {s:?}")),
            }
        }
        Ok(out)
    }

    #[cfg(unix)]
    fn path_from_bytes(b: Vec<u8>) -> PathBuf {
        use std::os::unix::ffi::OsStringExt;
        PathBuf::from(std::ffi::OsString::from_vec(b))
    }

    /// Only `snaprsync list` shows these paths: elsewhere, lossy is enough.
    #[cfg(not(unix))]
    fn path_from_bytes(b: Vec<u8>) -> PathBuf {
        PathBuf::from(String::from_utf8_lossy(&b).into_owned())
    }
}

impl Entry {
    /// The entry for this process.
    pub fn for_this_run(stamp: &str, provider: &str, sources: &[PathBuf]) -> Entry {
        let pid = std::process::id();
        Entry {
            stamp: stamp.to_owned(),
            pid,
            start: crate::host::process_start(pid).unwrap_or(0),
            boot: crate::host::boot_id(),
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            provider: provider.to_owned(),
            sources: sources.to_vec(),
            remover: None,
        }
    }

    /// Whether the process that wrote this entry still runs.
    pub fn owner_alive(&self) -> bool {
        self.boot == crate::host::boot_id() && (Process { pid: self.pid, start: self.start }).alive()
    }

    /// Whether the run's recorded remover still runs.
    pub fn remover_alive(&self) -> bool {
        self.boot == crate::host::boot_id() && self.remover.is_some_and(|r| r.alive())
    }

    /// Whether the run, or the remover it handed its snapshots to, still
    /// runs: then no sweep touches what it made.
    pub fn alive(&self) -> bool {
        self.owner_alive() || self.remover_alive()
    }
}

/// The directory of entries.
pub struct Journal {
    dir: PathBuf,
}

/// A file in the journal that could not be read as an entry.
#[derive(Debug)]
pub struct Corrupt {
    pub path: PathBuf,
    pub why: String,
}

impl Journal {
    pub fn new(dir: &Path) -> Journal {
        Journal { dir: dir.to_owned() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, stamp: &str) -> PathBuf {
        self.dir.join(format!("{stamp}{SUFFIX}"))
    }

    /// Records `entry` atomically; after this returns, a crash leaves either
    /// the whole entry or none.
    pub fn write(&self, entry: &Entry) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let path = self.path(&entry.stamp);
        let tmp = self.dir.join(format!(".{}.tmp", entry.stamp));
        let text = toml::to_string(entry).map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            sync_dir(&self.dir)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(&path, e)
        })
    }

    /// Drops the entry of `stamp` (its snapshots are gone).
    pub fn remove(&self, stamp: &str) -> Result<()> {
        let path = self.path(stamp);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir).map_err(|e| Error::io(&self.dir, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Takes the lock that lets one sweep at a time act on this journal's
    /// runs: waits for it with `wait`, else `None` while another holds it.
    /// The lock is on the directory itself (so it leaves no file behind),
    /// held until the returned handle is dropped or the process ends.
    pub fn lock_sweep(&self, wait: bool) -> Result<Option<File>> {
        let f = lock_handle(&self.dir)?;
        if wait {
            f.lock().map_err(|e| Error::io(&self.dir, e))?;
            return Ok(Some(f));
        }
        match f.try_lock() {
            Ok(()) => Ok(Some(f)),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(Error::io(&self.dir, e)),
        }
    }

    /// The entry of `stamp`, if there is one.
    pub fn get(&self, stamp: &str) -> Result<Option<Entry>> {
        let path = self.path(stamp);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        toml::from_str(&text).map(Some).map_err(|e| Error::io(path, std::io::Error::other(e.message().to_owned())))
    }

    /// Every entry, and every file that is not one. A missing directory is empty.
    pub fn read(&self) -> (Vec<Entry>, Vec<Corrupt>) {
        let mut entries = Vec::new();
        let mut corrupt = Vec::new();
        let Ok(dir) = fs::read_dir(&self.dir) else { return (entries, corrupt) };
        for item in dir.flatten() {
            let path = item.path();
            let name = item.file_name().to_string_lossy().into_owned();
            if !name.ends_with(SUFFIX) || name.starts_with('.') {
                continue;
            }
            let text = match fs::read_to_string(&path) {
                // Dropped since the listing: its run's removal is done.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                other => other,
            };
            let parsed = text
                .map_err(|e| e.to_string())
                .and_then(|t| toml::from_str::<Entry>(&t).map_err(|e| e.message().to_owned()))
                .and_then(|e| if self.path(&e.stamp) == path { Ok(e) } else { Err("its stamp does not match its name".into()) });
            match parsed {
                Ok(e) => entries.push(e),
                Err(why) => corrupt.push(Corrupt { path, why }),
            }
        }
        (entries, corrupt)
    }

    /// Moves a corrupt file aside so it is reported once, and kept for a look.
    pub fn set_aside(&self, c: &Corrupt) -> Result<PathBuf> {
        let to = c.path.with_extension("corrupt");
        fs::rename(&c.path, &to).map_err(|e| Error::io(&c.path, e))?;
        Ok(to)
    }

    /// Keeps what the journal leaves bounded, whatever the number of runs
    /// (the sweep calls it): the temporary file of an entry whose run died
    /// while writing it goes, and of the files set aside only the newest
    /// [`KEEP_SET_ASIDE`] stay.
    pub fn tidy(&self) {
        let Ok(dir) = fs::read_dir(&self.dir) else { return };
        let mut aside = Vec::new();
        for item in dir.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            if let Some(stamp) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) {
                let dead = self.get(stamp).ok().flatten().is_none_or(|e| !e.alive()) && !stamp_owner_may_live(stamp);
                if stamp.starts_with(NAME_PREFIX) && dead {
                    log::debug!("journal: removing {name}, the unfinished entry of a run that died writing it");
                    let _ = fs::remove_file(item.path());
                }
            } else if name.ends_with(".corrupt") {
                let made = item.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
                aside.push((made, item.path()));
            }
        }
        aside.sort();
        let extra = aside.len().saturating_sub(KEEP_SET_ASIDE);
        for (_, path) in aside.into_iter().take(extra) {
            log::info!("journal: removing {}, set aside by an earlier sweep, to keep state_dir bounded", path.display());
            let _ = fs::remove_file(path);
        }
    }
}

/// How many corrupt journal files set aside are kept for a look.
pub const KEEP_SET_ASIDE: usize = 10;

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    // Directories can be fsynced on Unix; elsewhere the rename is what we have.
    if cfg!(unix) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// What the sweep's lock is taken on: the directory itself where it can be
/// opened as a file (Linux), so that nothing is left in it; on Windows, which
/// cannot lock a directory opened that way, a hidden file in it (never read
/// as an entry: its name starts with a dot).
#[cfg(unix)]
fn lock_handle(dir: &Path) -> Result<File> {
    File::open(dir).map_err(|e| Error::io(dir, e))
}

#[cfg(not(unix))]
fn lock_handle(dir: &Path) -> Result<File> {
    if !dir.is_dir() {
        return Err(Error::io(dir, std::io::Error::from(std::io::ErrorKind::NotFound)));
    }
    let path = dir.join(".sweep.lock");
    fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(|e| Error::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stamp: &str) -> Entry {
        Entry::for_this_run(stamp, "btrfs", &["/srv".into()])
    }

    /// One sweep at a time: a second lock is refused while the first is held.
    #[test]
    fn one_sweep_holds_the_lock() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::new(&d.path().join("state"));
        assert!(j.lock_sweep(false).is_err(), "no directory to lock");
        fs::create_dir(j.dir()).unwrap();
        let held = j.lock_sweep(false).unwrap();
        assert!(held.is_some());
        assert!(j.lock_sweep(false).unwrap().is_none(), "taken twice");
        drop(held);
        assert!(j.lock_sweep(false).unwrap().is_some());
        // Linux locks the directory itself; Windows a hidden file, never read as an entry.
        let left: Vec<_> = fs::read_dir(j.dir()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left, if cfg!(unix) { vec![] } else { vec![std::ffi::OsString::from(".sweep.lock")] }, "what the lock leaves");
        assert!(j.read().0.is_empty() && j.read().1.is_empty());
    }

    #[test]
    fn write_read_remove() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::new(&d.path().join("state"));
        assert!(j.read().0.is_empty());
        let e = entry("snaprsync-20260101T000000Z-p1");
        j.write(&e).unwrap();
        let (entries, corrupt) = j.read();
        assert_eq!(entries, vec![e.clone()]);
        assert!(corrupt.is_empty());
        j.remove(&e.stamp).unwrap();
        j.remove(&e.stamp).unwrap();
        assert!(j.read().0.is_empty());
        // No temp file is left.
        assert_eq!(fs::read_dir(j.dir()).unwrap().count(), 0);
    }

    #[test]
    fn utf8_sources_are_plain_strings() {
        let e = Entry::for_this_run("s", "btrfs", &["/srv/ünï €".into(), r"C:\data\x".into()]);
        let text = toml::to_string(&e).unwrap();
        assert!(text.contains(r#"sources = ["/srv/ünï €", 'C:\data\x']"#), "{text}");
        assert_eq!(toml::from_str::<Entry>(&text).unwrap(), e);
    }

    /// A source whose name is not UTF-8 is recorded, and read back byte for byte.
    #[cfg(unix)]
    #[test]
    fn sources_that_are_not_utf8_round_trip() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        let j = Journal::new(d.path());
        let odd: Vec<PathBuf> = [&b"/srv/caf\xe9"[..], b"/srv/\xff\\xff\\", b"/srv/plain", b"/srv/a\nb"]
            .iter()
            .map(|b| PathBuf::from(std::ffi::OsStr::from_bytes(b)))
            .collect();
        let e = Entry::for_this_run("snaprsync-20260101T000000Z-p1", "btrfs", &odd);
        j.write(&e).unwrap();
        let (entries, corrupt) = j.read();
        assert!(corrupt.is_empty(), "{:?}", corrupt.first().map(|c| &c.why));
        assert_eq!(entries, vec![e]);
        let text = fs::read_to_string(d.path().join("snaprsync-20260101T000000Z-p1.toml")).unwrap();
        assert!(text.contains(r"{ escaped = '/srv/caf\xe9' }") && text.contains(r"{ escaped = '/srv/\xff\\xff\\' }"), "{text}");
        for bad in [r#"{ escaped = "\\x4" }"#, r#"{ escaped = "\\q" }"#, r#"{ escaped = "a\\" }"#, r#"{ escaped = "\\xzz" }"#] {
            let text = toml::to_string(&entry("s")).unwrap().replace(r#"["/srv"]"#, &format!("[{bad}]"));
            assert!(toml::from_str::<Entry>(&text).is_err(), "{bad}");
        }
    }

    /// A run that handed its removal over stays live while its remover runs,
    /// whatever became of the run; the record reads back with the remover.
    #[test]
    fn a_recorded_remover_keeps_its_run_live() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::new(d.path());
        let mut e = entry("snaprsync-20260101T000000Z-p1");
        e.start += 1;
        assert!(!e.alive(), "its run is gone and no remover is recorded");
        e.remover = Process::running(std::process::id());
        assert!(e.remover_alive() && e.alive());
        j.write(&e).unwrap();
        assert_eq!(j.get(&e.stamp).unwrap(), Some(e.clone()));
        assert_eq!(j.get("snaprsync-20260101T000000Z-p2").unwrap(), None);
        e.remover = e.remover.map(|r| Process { start: r.start + 1, ..r });
        assert!(!e.alive(), "a remover whose start differs is another process");
        // A record without a remover is written as before.
        assert!(!toml::to_string(&entry("s")).unwrap().contains("remover"));
    }

    #[test]
    fn this_process_is_alive_and_a_changed_start_is_not() {
        let mut e = entry("s");
        assert!(e.owner_alive());
        e.start += 1;
        assert!(!e.owner_alive());
        let mut e = entry("s");
        e.boot = "another boot".into();
        assert!(!e.owner_alive());
    }

    #[test]
    fn tidy_keeps_the_newest_set_aside_and_drops_dead_runs_temp_files() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::new(d.path());
        for i in 0..(KEEP_SET_ASIDE + 5) {
            let p = d.path().join(format!("x{i:02}.corrupt"));
            fs::write(&p, "junk").unwrap();
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + i as u64);
            fs::File::options().write(true).open(&p).unwrap().set_modified(t).unwrap();
        }
        let dead = format!("{NAME_PREFIX}20000101T000000Z-p4000000");
        fs::write(d.path().join(format!(".{dead}.tmp")), "half").unwrap();
        let mine = format!(".{}.tmp", crate::stamp::run_stamp());
        fs::write(d.path().join(&mine), "being written").unwrap();
        fs::write(d.path().join(".other.tmp"), "not ours").unwrap();
        j.tidy();
        let mut names: Vec<String> =
            fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        let mut want: Vec<String> = (5..KEEP_SET_ASIDE + 5).map(|i| format!("x{i:02}.corrupt")).collect();
        want.extend([".other.tmp".to_owned(), mine]);
        want.sort();
        assert_eq!(names, want);
    }

    #[test]
    fn corrupt_files_are_reported_not_fatal() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::new(d.path());
        j.write(&entry("good")).unwrap();
        fs::write(d.path().join("torn.toml"), "stamp = \"torn\"\npid = ").unwrap();
        fs::write(d.path().join("renamed.toml"), toml::to_string(&entry("other")).unwrap()).unwrap();
        fs::write(d.path().join("notes.txt"), "ignored").unwrap();
        let (entries, corrupt) = j.read();
        assert_eq!(entries.len(), 1);
        let mut names: Vec<_> = corrupt.iter().map(|c| c.path.file_name().unwrap().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["renamed.toml", "torn.toml"]);
        for c in &corrupt {
            j.set_aside(c).unwrap();
        }
        assert!(j.read().1.is_empty());
    }
}
