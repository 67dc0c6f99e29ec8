//! Windows: one VSS shadow copy set for every volume holding a source, shown
//! to rsync on a free drive letter (`expose = "drive-letter"`) or by the shadow
//! copy's device path (`expose = "device-path"`), with each source argument of
//! rsync's argv rewritten in the path style it came in; for exec, the same
//! exposure per volume, told to the command in its environment. rsync (or the
//! command, or a hook) runs in a Job Object that dies with snaprsync; console
//! events end it and clean up.

mod diagnose;
#[cfg(test)]
mod dir_double;
mod ffi;
mod selftest;
mod sources;
#[cfg(test)]
mod tests;

use std::ffi::{OsStr, OsString};
use std::os::windows::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{Bounded, Exposing, Exposure, Hold, Launch, Method, Place, Processes, Program, Volumes};
use crate::config::{Config, Expose};
use crate::error::{Error, Result};
use crate::provider::{self, Leftover, Machine, Several, SnapshotSet, Snapshotter, Sweeper, VolumeSnapshot};
use crate::rsync_args::Invocation;
use crate::winpath::{self, DrivePath, Flavor, Style};

#[allow(unused_imports)]
pub use selftest::selftest;

/// The real Windows system (see `platform::System`).
pub struct Platform;

/// What the providers are built from: the run stops on a console event.
const MACHINE: Machine = Machine { stopping: ffi::stopping };

/// Which kind of rsync build `rsync` is: cygwin (and cwRsync) and MSYS2 ship
/// their runtime DLL beside `rsync.exe`.
pub fn flavor_of(rsync: &Path) -> Flavor {
    let dir = rsync.parent().unwrap_or(Path::new("."));
    if dir.join("msys-2.0.dll").exists() {
        Flavor::Msys
    } else if dir.join("cygwin1.dll").exists() {
        Flavor::Cygwin
    } else {
        Flavor::Native
    }
}

/// What a cygwin or MSYS2 rsync needs in its environment: `noglob` added to
/// `CYGWIN` or `MSYS`, so that its runtime does not expand `*`, `?` or `[` in
/// the rewritten arguments (started from a native program, it would).
pub fn reader_env(flavor: Flavor) -> Vec<(OsString, OsString)> {
    let var = match flavor {
        Flavor::Cygwin => "CYGWIN",
        Flavor::Msys => "MSYS",
        Flavor::Native => return Vec::new(),
    };
    let value = match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => format!("{} noglob", v.trim()),
        _ => "noglob".to_owned(),
    };
    vec![(OsString::from(var), OsString::from(value))]
}

/// The build of the rsync this run starts, once known (see `Volumes::reader`).
static READER: std::sync::Mutex<Option<Flavor>> = std::sync::Mutex::new(None);

/// How source arguments are read: as the run's rsync reads them, or every
/// form (MSYS2's reading) before it is known.
fn reader() -> Flavor {
    READER.lock().unwrap_or_else(|e| e.into_inner()).unwrap_or(Flavor::Msys)
}

/// The provider for `sources`: `shadows()` for the volumes that are
/// shadowed, nothing for those `vss_exclude_volumes` names; a volume mounted
/// in one of `folders` below a source is refused first (`vss_mount_points`).
pub(crate) fn excluding(
    cfg: &Config,
    sources: &[PathBuf],
    folders: &[String],
    shadows: impl FnOnce() -> Result<Box<dyn Snapshotter>>,
) -> Result<Box<dyn Snapshotter>> {
    let (skipped, shadowed): (Vec<PathBuf>, Vec<PathBuf>) =
        sources.iter().cloned().partition(|s| sources::excluded_by(s, &cfg.vss_exclude_volumes).is_some());
    sources::check_mount_points(cfg, &shadowed, folders)?;
    Ok(Box::new(sources::Excluding { inner: shadows()?, skipped }))
}

impl Volumes for Platform {
    fn reader(&self, rsync: &Path) {
        *READER.lock().unwrap_or_else(|e| e.into_inner()) = Some(flavor_of(rsync));
    }

    /// Resolved: junctions, symbolic links, mount points and short names on
    /// the way are followed, so that the volume is the one rsync will read.
    fn source_path(&self, arg: &OsStr) -> Option<PathBuf> {
        let s = arg.to_str()?;
        let lexical = lexical_path(s)?;
        let unc = (s.starts_with(r"\\") || s.starts_with("//")) && winpath::parse(s, reader()).is_none() && !is_volume_name(s);
        if unc {
            // UNC: a network share; the provider says it cannot be shadowed.
            return Some(lexical);
        }
        Some(sources::resolve(&lexical, sources::names_contents(s)))
    }

    fn unmatched(&self, arg: &OsStr) -> Option<String> {
        let s = arg.to_str()?;
        // A posix path that names no drive: under the cygwin or MSYS2 root
        // (`/home/alice` is `C:\cygwin64\home\alice` to cygwin), which only
        // rsync's runtime resolves.
        (s.starts_with('/') && !s.starts_with("//") && winpath::parse(s, reader()).is_none()).then(|| {
            format!(
                "a path under the {} root, which snaprsync cannot match to a volume; name it by its drive (e.g. C:/cygwin64/home/alice/)",
                match reader() {
                    Flavor::Cygwin => "cygwin",
                    Flavor::Msys => "MSYS2",
                    Flavor::Native => "current drive's",
                }
            )
        })
    }

    fn exec_path(&self, arg: &OsStr) -> Option<PathBuf> {
        // The command follows every link on the way, the last one too. Not
        // canonicalize: that gives \\?\ paths, which the command would be told.
        let lexical = lexical_path(arg.to_str()?)?;
        Some(sources::resolve(&lexical, true)).filter(|p| p.exists())
    }

    fn provider(&self, cfg: &Config, sources: &[PathBuf]) -> Result<Box<dyn Snapshotter>> {
        excluding(cfg, sources, &sources::mount_folders(), || {
            let parts = provider::chosen(cfg.provider, provider::first)?;
            (parts.build)(cfg, &MACHINE)
        })
    }

    /// Every provider's sweeper, and the drive letters killed runs left.
    fn sweep_provider(&self, cfg: &Config) -> Result<Box<dyn Sweeper>> {
        let mut parts = provider::sweepers(cfg, &MACHINE)?;
        parts.push(Box::new(StrayLetters));
        Ok(Box::new(Several(parts)))
    }
}

impl Exposing for Platform {
    fn expose(&self, cfg: &Config, set: &SnapshotSet, inv: &Invocation, sources: &[PathBuf], rsync: &Path) -> Result<Exposure> {
        let flavor = flavor_of(rsync);
        expose_with(cfg.expose, &cfg.drive_letters, flavor, set, inv, sources, &cfg.vss_exclude_volumes)
    }

    fn expose_confined(
        &self,
        _cfg: &Config,
        _set: Option<&SnapshotSet>,
        _inv: &Invocation,
        _rsync: &Path,
        _confine: &super::Confine,
    ) -> Result<Option<Exposure>> {
        // No mount namespaces: restricted mode rests on the path checks here.
        Ok(None)
    }

    fn expose_in_place(&self, cfg: &Config, set: &SnapshotSet) -> Result<Exposure> {
        expose_places(cfg.expose, &cfg.drive_letters, set)
    }
}

/// See `platform::lower_thread_priority`.
pub fn lower_thread_priority() {
    if let Err(e) = ffi::idle_thread_priority() {
        log::debug!("prefetch: cannot lower the thread's priority: {e}");
    }
}

impl Processes for Platform {
    fn hold_signals(&self) -> Result<()> {
        ffi::install_console_handler().map_err(|e| Error::io("console control handler", e))
    }

    /// A console event counts as SIGINT (2).
    fn pending_signal(&self) -> Option<i32> {
        ffi::stopping().then_some(2)
    }

    fn finished(&self) {
        ffi::cleaned_up();
    }

    fn internal(&self, _argv: &[OsString]) -> Option<u8> {
        None
    }

    fn refeed_stdin(&self, _prefix: Vec<u8>) -> Result<bool> {
        // Not done on Windows: the protect-args block's arguments go on rsync's
        // command line instead (README "Windows").
        Ok(false)
    }

    fn run_unchanged(&self, launch: &Launch) -> Result<u8> {
        run_child(launch)
    }

    fn run_bounded(&self, program: &Path, args: &[OsString], env: &[(OsString, OsString)], limit: Duration) -> std::io::Result<Bounded> {
        run_bounded(program, args, env, limit)
    }
}

/// `\\?\Volume{...}\...`: a volume named by its GUID.
fn is_volume_name(s: &str) -> bool {
    s.get(..11).is_some_and(|p| p.eq_ignore_ascii_case(r"\\?\Volume{"))
}

/// The absolute native path an argument names, as written (nothing followed).
fn lexical_path(s: &str) -> Option<PathBuf> {
    if is_volume_name(s) {
        // `\\?\Volume{...}\x`: the same place below the volume's first mount path.
        if let Some((guid, rest)) = s.split_once(r"}\").map(|(g, r)| (format!(r"{g}}}\"), r)) {
            if let Some(root) = crate::provider::vss::volume::volume_paths(&guid).ok().and_then(|p| p.into_iter().next()) {
                return Some(normalize(&Path::new(&root).join(rest)));
            }
        }
        return Some(PathBuf::from(s));
    }
    if let Some(d) = winpath::parse(s, reader()) {
        return Some(PathBuf::from(d.native()));
    }
    if s.starts_with(r"\\") || s.starts_with("//") {
        return Some(PathBuf::from(s));
    }
    if s.starts_with('/') || s.is_empty() {
        return None;
    }
    let full = std::env::current_dir().ok()?.join(s.replace('/', "\\"));
    Some(normalize(&full))
}

/// `.` and `..` resolved lexically (the path need not exist).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c.as_os_str()),
        }
    }
    out
}

/// A drive letter this run mapped, removed exactly on undo (or drop).
struct Letter {
    letter: char,
    target: String,
    removed: bool,
}

impl Letter {
    fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        ffi::remove_letter(self.letter, &self.target).map_err(|e| Error::Expose {
            path: PathBuf::from(format!("{}:", self.letter)),
            msg: format!("could not remove the drive letter (mapped to {}): {e}", self.target),
        })?;
        log::info!("drive letter {}: removed", self.letter);
        Ok(())
    }
}

impl Drop for Letter {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            log::error!("{e}");
        }
    }
}

/// How long a run waits for another run's letter choice (a few calls).
const LETTER_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Maps a free letter of `candidates` to `target`. A letter is ours only
/// when, once defined, it has exactly one definition, ours: DefineDosDevice
/// stacks definitions, so a program that defined the same letter at the same
/// moment leaves two, and then only ours is removed (by exact match) and the
/// next letter tried. snaprsync runs themselves take the machine-wide
/// [`ffi::LetterLock`] around this, so they never race each other.
fn map_free_letter(candidates: &str, target: &str, taken: &mut Vec<char>) -> Result<Letter> {
    let _lock = ffi::LetterLock::acquire(LETTER_LOCK_WAIT)
        .inspect_err(|e| {
            log::warn!("drive letters: cannot take the lock other snaprsync runs share ({e}): relying on the ownership check alone")
        })
        .ok();
    for letter in candidates.chars() {
        if taken.contains(&letter) {
            continue;
        }
        let name = format!("{letter}:");
        let used = ffi::logical_drives();
        if winpath::pick_free_letter(&letter.to_string(), used).is_none() || !ffi::query_dos_device(&name).is_empty() {
            continue;
        }
        #[cfg(test)]
        between_check_and_define(letter);
        if let Err(e) = ffi::define_letter(letter, target) {
            log::warn!("drive letter {letter}: {e}");
            continue;
        }
        let mapped = Letter { letter, target: target.to_owned(), removed: false };
        let now = ffi::query_dos_device(&name);
        if letter_is_ours(&now, target) {
            log::info!("drive letter {letter}: mapped to {target}");
            taken.push(letter);
            return Ok(mapped);
        }
        log::warn!(
            "drive letter {letter}: defined by another program at the same moment ({} definitions: {}); removing only ours and trying the next letter",
            now.len(),
            now.join(", ")
        );
        // Dropping it removes exactly our definition, whatever is stacked on it.
        drop(mapped);
    }
    Err(Error::Expose {
        path: PathBuf::from(target),
        msg: format!("no free drive letter among drive_letters = {candidates:?}: free one, add letters, or set expose = \"device-path\""),
    })
}

/// Whether a letter whose definitions are `targets` (newest first) is ours:
/// exactly one, ours.
fn letter_is_ours(targets: &[String], ours: &str) -> bool {
    matches!(targets, [only] if only == ours)
}

#[cfg(test)]
thread_local! {
    /// The fault point between a letter's check and its definition (tests only).
    pub static BETWEEN_CHECK_AND_DEFINE: std::cell::RefCell<Option<Box<dyn FnMut(char)>>> = const { std::cell::RefCell::new(None) };
}

#[cfg(test)]
fn between_check_and_define(letter: char) {
    BETWEEN_CHECK_AND_DEFINE.with(|f| {
        if let Some(f) = f.borrow_mut().as_mut() {
            f(letter)
        }
    });
}

/// Drive letters a killed run left mapped to a shadow copy that is gone (VSS
/// deleted it with the run): the sweep, `list` and `cleanup` remove them, each
/// only while it still points at that dead device. Under LocalSystem such a
/// letter would otherwise live until reboot.
struct StrayLetters;

impl Sweeper for StrayLetters {
    fn name(&self) -> &'static str {
        "letter"
    }

    /// Each as `R:`; the stamp is none (no run can own a dead device).
    fn leftovers(&self) -> Result<Vec<Leftover>> {
        Ok(('A'..='Z')
            .filter_map(|l| {
                stray_target(l).map(|_| Leftover { provider: "letter", path: PathBuf::from(format!("{l}:")), stamp: String::new() })
            })
            .collect())
    }

    fn remove_leftover(&mut self, leftover: &Leftover) -> Result<()> {
        let Some(letter) = leftover.path.to_string_lossy().chars().next() else { return Ok(()) };
        // Checked again: still mapped, still to a dead shadow copy.
        let Some(target) = stray_target(letter) else { return Ok(()) };
        ffi::remove_letter(letter, &target).map_err(|e| Error::io(format!("{letter}:"), e))
    }
}

/// The dead shadow copy device `letter:` is mapped to, if it is.
fn stray_target(letter: char) -> Option<String> {
    let target = ffi::query_dos_device(&format!("{letter}:")).into_iter().next()?;
    let shadow = winpath::device_name(&target).is_some_and(|d| d.starts_with(r"Device\HarddiskVolumeShadowCopy"));
    (shadow && !ffi::device_exists(&target)).then_some(target)
}

/// What an exposure set up: the drive letters to remove.
pub struct Held {
    letters: Vec<Letter>,
}

impl Hold for Held {
    fn run(&mut self, launch: &Launch) -> Result<u8> {
        run_child(launch)
    }

    fn undo(&mut self) -> Result<()> {
        let mut first = Ok(());
        for l in &mut std::mem::take(&mut self.letters) {
            let r = l.remove();
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

fn find_volume<'a>(set: &'a SnapshotSet, source: &Path) -> Option<(usize, &'a VolumeSnapshot)> {
    let s = source.to_string_lossy().to_ascii_uppercase();
    let s = s.strip_prefix(r"\\?\").unwrap_or(&s).to_owned();
    set.volumes
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            // Either side may carry the verbatim prefix (wine's
            // GetVolumePathNameW gives `\\?\C:\` for a `\\?\` path).
            let o = v.origin.to_string_lossy().to_ascii_uppercase();
            let o = o.strip_prefix(r"\\?\").unwrap_or(&o);
            let o = o.trim_end_matches('\\');
            s == o || s.starts_with(&format!("{o}\\"))
        })
        .max_by_key(|(_, v)| v.origin.as_os_str().len())
}

/// Where rsync reads one volume's snapshot: a mapped letter, or the snapshot
/// path itself (a device, or the test double's directory).
enum Root {
    Letter(char),
    Device(String),
    Dir(DrivePath),
}

/// Where the snapshot of `vol` is read, with `mode`: a drive letter is mapped
/// (and added to `letters`, which remove it again).
fn root_of(mode: Expose, candidates: &str, vol: &VolumeSnapshot, letters: &mut Vec<Letter>, taken: &mut Vec<char>) -> Result<Root> {
    let snapshot = vol.snapshot.to_string_lossy().into_owned();
    Ok(match (mode, winpath::raw_target(&snapshot)) {
        (Expose::DriveLetter, target) => {
            let target = target.unwrap_or_else(|| format!(r"\??\{}", snapshot.trim_end_matches('\\')));
            let l = map_free_letter(candidates, &target, taken)?;
            let c = l.letter;
            letters.push(l);
            Root::Letter(c)
        }
        (Expose::DevicePath, Some(_)) => Root::Device(snapshot.clone()),
        (Expose::DevicePath, None) => Root::Dir(winpath::parse(&snapshot, Flavor::Native).ok_or_else(|| Error::Expose {
            path: vol.origin.clone(),
            msg: format!("snapshot {snapshot} is neither a device nor a drive path"),
        })?),
    })
}

/// exec's exposure: each volume's snapshot on a drive letter or by its device
/// path, told to the command through [`Exposure::places`] (its argv is its own).
fn expose_places(mode: Expose, candidates: &str, set: &SnapshotSet) -> Result<Exposure> {
    let (mut letters, mut taken, mut places) = (Vec::new(), Vec::new(), Vec::new());
    for vol in &set.volumes {
        let seen = match root_of(mode, candidates, vol, &mut letters, &mut taken)? {
            Root::Letter(c) => PathBuf::from(format!("{c}:\\")),
            // A device path, or the test double's directory: read as it is.
            Root::Device(_) | Root::Dir(_) => vol.snapshot.clone(),
        };
        places.push(Place { origin: vol.origin.clone(), seen });
    }
    let method = match mode {
        Expose::DriveLetter => Method::DriveLetter,
        Expose::DevicePath => Method::DevicePath,
    };
    Ok(Exposure::new(Vec::new(), method, Held { letters }).with_places(places))
}

fn expose_with(
    mode: Expose,
    candidates: &str,
    flavor: Flavor,
    set: &SnapshotSet,
    inv: &Invocation,
    sources: &[PathBuf],
    excluded: &[String],
) -> Result<Exposure> {
    let mut letters: Vec<Letter> = Vec::new();
    let mut taken = Vec::new();
    let mut roots: Vec<Option<Root>> = set.volumes.iter().map(|_| None).collect();
    let mut rewritten: Vec<Result<OsString>> = Vec::new();
    for (arg, source) in inv.sources().zip(sources) {
        let fail = |msg: String| Error::Expose { path: source.clone(), msg };
        let text = arg.to_str().ok_or_else(|| fail("the argument is not valid Unicode".into()))?;
        let Some((i, vol)) = find_volume(set, source) else {
            if let Some(entry) = sources::excluded_by(source, excluded) {
                log::warn!("{text}: its volume is excluded from shadow copies (vss_exclude_volumes has {entry:?}): rsync reads it LIVE");
                rewritten.push(Ok(arg.to_owned()));
                continue;
            }
            if source.symlink_metadata().is_ok() {
                // It exists, but on no volume of the set: never read live in silence.
                return Err(Error::Unmatched {
                    arg: text.to_owned(),
                    why: format!("{} is on no volume that was snapshotted; name it by its drive letter path", source.display()),
                });
            }
            // It does not exist: rsync reports it.
            rewritten.push(Ok(arg.to_owned()));
            continue;
        };
        let written = winpath::parse(text, flavor);
        // Where the name leads, when a junction, link, mount point or short
        // name on the way makes it another place than the text says.
        let moved = written.as_ref().is_some_and(|d| !sources::same_place(&d.native(), &source.to_string_lossy()));
        let dp = match written {
            Some(d) if !moved => d,
            _ => {
                // Rebuilt from where it leads (or, for a relative argument,
                // from its absolute path), in the reader's form below.
                let mut d = winpath::parse(&source.to_string_lossy(), Flavor::Native)
                    .ok_or_else(|| fail(format!("cannot read {text:?} as a path on a drive")))?;
                d.trailing_slash = sources::names_contents(text);
                if inv.relative {
                    return Err(fail(if moved {
                        format!(
                            "{text:?} leads through a junction, link or short name to {}: with --relative the copy's names would change; name that path itself",
                            source.display()
                        )
                    } else {
                        format!("--relative with {text:?}, which names no drive, would send the snapshot's path; give a drive-letter path such as C:/./dir/")
                    }));
                }
                if moved {
                    log::info!("{text} leads to {}: read there, in its volume's shadow copy", source.display());
                }
                d
            }
        };
        // The rsync that reads decides the form, not the argument.
        let mut dp = dp.for_reader(flavor);
        if dp.is_bare_root() {
            return Err(fail(format!(
                "{text:?} (a drive root without a trailing slash) would be sent under the snapshot's name; write {text}/"
            )));
        }
        if inv.relative && !dp.parts.iter().any(|p| p == ".") {
            return Err(fail(format!(
                "--relative would send the snapshot's path instead of {text:?}; mark the part to keep with /./ (e.g. /cygdrive/c/./Users/) or drop -R"
            )));
        }
        // Drop the origin's own components (a volume mounted in a folder).
        let origin = winpath::parse(&vol.origin.to_string_lossy(), Flavor::Native).map(|o| o.parts.len()).unwrap_or(0);
        let (mut skipped, mut marked, mut after_marker) = (0, false, false);
        dp.parts.retain(|p| {
            if p == "." {
                marked = true;
                true
            } else if skipped < origin {
                skipped += 1;
                after_marker |= marked;
                false
            } else {
                true
            }
        });
        if after_marker {
            return Err(fail(format!(
                "--relative would drop the part of {text:?} that is a volume mount point's folder; put the /./ marker at or below the mount point (e.g. {}/./...)",
                vol.origin.display()
            )));
        }
        if !dp.trailing_slash && dp.parts.iter().all(|p| p == ".") {
            return Err(fail(format!(
                "{text:?} is itself a volume mount point: without a trailing slash rsync would name the copy after the shadow copy's device; write {text}/ and name the destination folder"
            )));
        }
        if roots[i].is_none() {
            roots[i] = Some(root_of(mode, candidates, vol, &mut letters, &mut taken)?);
        }
        let out = match roots[i].as_ref().expect("set above") {
            Root::Letter(c) => dp.with_drive(*c),
            Root::Device(d) => dp.in_device(d, flavor).ok_or_else(|| fail(format!("bad device {d}")))?,
            Root::Dir(base) => {
                let mut d = dp.clone();
                d.drive = base.drive;
                d.parts = base.parts.iter().cloned().chain(dp.parts.iter().cloned()).collect();
                if flavor == Flavor::Native {
                    d.style = Style::Native { sep: '\\' };
                }
                d.render()
            }
        };
        rewritten.push(Ok(OsString::from(out)));
    }
    let mut it = rewritten.into_iter();
    let mut err = None;
    let argv = inv.render_with_sources(|a| match it.next() {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            err.get_or_insert(e);
            a.to_owned()
        }
        None => a.to_owned(),
    });
    if let Some(e) = err {
        return Err(e);
    }
    let method = match mode {
        Expose::DriveLetter => Method::DriveLetter,
        Expose::DevicePath => Method::DevicePath,
    };
    Ok(Exposure::new(argv, method, Held { letters }))
}

/// Runs `launch`, stdio inherited, inside a kill-on-close Job Object; returns
/// its exit status (an NTSTATUS death becomes 255, an end by a console event
/// 130).
pub fn run_child(launch: &Launch) -> Result<u8> {
    if let Err(e) = ffi::install_console_handler() {
        log::warn!("cannot install the console handler: {e}");
    }
    let program = launch.program.as_path();
    let spawn_err = |e: std::io::Error| Error::NotStarted { what: launch.what.as_str(), path: program.to_owned(), msg: e.to_string() };
    enable_privileges(launch);
    let job = ffi::Job::new().map_err(|e| Error::io("job object", e))?;
    let mut env = launch.env.clone();
    if launch.what == Program::Rsync {
        env.extend(reader_env(flavor_of(program)));
    }
    let mut command = Command::new(program);
    if launch.what == Program::Rsync && flavor_of(program) != Flavor::Native {
        // cygwin's runtime splits the command line by its own rules, not the C runtime's.
        for a in &launch.args {
            let quoted = a.to_str().and_then(winpath::cygwin_arg).ok_or_else(|| {
                Error::Usage(format!(
                    "{a:?}: a cygwin or MSYS2 rsync cannot receive an argument holding a double quote (its runtime drops every one) or one that is not Unicode: leave it out, or use a native rsync"
                ))
            })?;
            command.raw_arg(quoted);
        }
    } else {
        command.args(&launch.args);
    }
    // Suspended until it is in the job: it can start nothing that escapes it.
    let mut child = command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .creation_flags(windows_sys::Win32::System::Threading::CREATE_SUSPENDED)
        .spawn()
        .map_err(spawn_err)?;
    if let Err(e) = job.assign(&child) {
        log::warn!("cannot put {} in a job object: {e}", launch.what);
    }
    if let Err(e) = ffi::resume(&child) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(spawn_err(e));
    }
    let running = ffi::Running::publish(&job);
    let status = child.wait().map_err(|e| Error::io(program, e))?;
    drop(running);
    Ok(status_of(status))
}

/// The privileges `launch` is started with: SeBackupPrivilege, to read what
/// an ACL denies the account, and SeRestorePrivilege too when rsync receives
/// (a push: an rsync server without `--sender` writes files, owners and ACLs).
pub fn privileges_for(launch: &Launch) -> Vec<&'static str> {
    let receiving =
        launch.what == Program::Rsync && launch.args.iter().any(|a| a == "--server") && !launch.args.iter().any(|a| a == "--sender");
    let mut p = vec!["SeBackupPrivilege"];
    if receiving {
        p.push("SeRestorePrivilege");
    }
    p
}

/// Enables [`privileges_for`] `launch` in snaprsync's token, which the
/// program inherits; says in the log which the token lacks.
fn enable_privileges(launch: &Launch) {
    for name in privileges_for(launch) {
        match ffi::set_privilege(name, true) {
            Ok(true) => log::debug!("{name} enabled for {}", launch.what),
            Ok(false) => log::warn!(
                "the account lacks {name}: {} can read{} only what the files' ACLs allow it; run as a member of Backup Operators or Administrators (docs/windows.md \"Privileges\")",
                launch.what,
                if name == "SeRestorePrivilege" { " and write" } else { "" }
            ),
            Err(e) => log::warn!("cannot enable {name} for {}: {e}", launch.what),
        }
    }
}

fn status_of(status: std::process::ExitStatus) -> u8 {
    let code = status.code().map_or(255, |c| c as u32);
    match code {
        0..=255 => code as u8,
        0xC000_013A => ffi::KILLED_STATUS as u8,
        _ => 255,
    }
}

/// A hook: stdin from NUL, stdout to snaprsync's stderr, in a Job Object that
/// is ended as a whole when it outlasts `limit` or a console event arrives.
fn run_bounded(program: &Path, args: &[OsString], env: &[(OsString, OsString)], limit: Duration) -> std::io::Result<Bounded> {
    let job = ffi::Job::new()?;
    let mut child = super::hook_command(program, args, env).spawn()?;
    if let Err(e) = job.assign(&child) {
        log::warn!("cannot put the hook in a job object: {e}");
    }
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            // Kept open until snaprsync exits, so that a helper the hook left
            // running (one holding a lock until post_snapshot) is not ended now.
            std::mem::forget(job);
            return Ok(Bounded::Code(i32::from(status_of(status))));
        }
        if ffi::stopping() || Instant::now() >= deadline {
            // Closing the kill-on-close job ends the hook and all it started.
            drop(job);
            let _ = child.kill();
            let _ = child.wait();
            return Ok(if ffi::stopping() { Bounded::Signal(2) } else { Bounded::TimedOut });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
