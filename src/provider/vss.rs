//! Windows VSS provider: one non-persistent shadow copy set (backup context,
//! copy backup) holding every volume with a source path, released when the
//! run ends or, if snaprsync dies, by VSS itself.
//!
//! This file is the policy: the order of the VSS calls, retries, deadlines,
//! and what each HRESULT means for the user (message, fix, exit status). The
//! COM binding for `IVssBackupComponents` and `IVssAsync`, written by hand
//! (neither `windows` nor `windows-sys` has it), is [`com`]; the volume and
//! path queries are [`volume`]. Those two files hold all the provider's `unsafe`. Its vtable slots and the
//! `VSS_SNAPSHOT_PROP` layout are checked against mingw-w64's `vsbackup.h`
//! and `vss.h` by `tests::binding_matches_mingw_headers`, which
//! `scripts/windows.sh test` feeds with a dump made by a C compiler.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Leftover, Parts, SnapshotSet, Snapshotter, Sweeper, VolumeSnapshot};
use crate::error::{Error, Result, VssKind};

mod com;
pub use com::Failure;
pub mod volume;

/// The statuses VSS failures map to (documented in README "Exit statuses").
pub mod status {
    pub use crate::error::status::{
        ACCESS_DENIED, SNAPSHOT_OVERFLOW as LOST, VSS_BUSY as BUSY, VSS_NO_STORAGE as NO_STORAGE, VSS_UNAVAILABLE as UNAVAILABLE,
        VSS_VOLUME_UNSUPPORTED as VOLUME_UNSUPPORTED,
    };
}

/// HRESULTs snaprsync tells apart (values checked against vsserror.h).
pub mod hr {
    pub const E_ACCESSDENIED: u32 = 0x8007_0005;
    pub const E_NOTIMPL: u32 = 0x8000_4001;
    pub const E_INVALIDARG: u32 = 0x8007_0057;
    pub const E_OUTOFMEMORY: u32 = 0x8007_000E;
    pub const REGDB_E_CLASSNOTREG: u32 = 0x8004_0154;
    pub const RPC_E_TOO_LATE: u32 = 0x8001_0119;
    /// HRESULT_FROM_WIN32(ERROR_SERVICE_DISABLED)
    pub const SERVICE_DISABLED: u32 = 0x8007_0422;
    /// HRESULT_FROM_WIN32(ERROR_TIMEOUT), used for snaprsync's own deadline.
    pub const TIMEOUT: u32 = 0x8007_05B4;
    pub const VSS_E_BAD_STATE: u32 = 0x8004_2301;
    pub const VSS_E_UNEXPECTED: u32 = 0x8004_2302;
    pub const VSS_S_ASYNC_PENDING: u32 = 0x0004_2309;
    pub const VSS_S_ASYNC_FINISHED: u32 = 0x0004_230A;
    pub const VSS_S_ASYNC_CANCELLED: u32 = 0x0004_230B;
    pub const VSS_E_VOLUME_NOT_SUPPORTED: u32 = 0x8004_230C;
    pub const VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER: u32 = 0x8004_230E;
    pub const VSS_E_UNEXPECTED_PROVIDER_ERROR: u32 = 0x8004_230F;
    pub const VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED: u32 = 0x8004_2312;
    pub const VSS_E_FLUSH_WRITES_TIMEOUT: u32 = 0x8004_2313;
    pub const VSS_E_HOLD_WRITES_TIMEOUT: u32 = 0x8004_2314;
    pub const VSS_E_SNAPSHOT_SET_IN_PROGRESS: u32 = 0x8004_2316;
    pub const VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED: u32 = 0x8004_2317;
    pub const VSS_E_INSUFFICIENT_STORAGE: u32 = 0x8004_231F;
    pub const VSS_E_MAXIMUM_DIFFAREA_ASSOCIATIONS_REACHED: u32 = 0x8004_231E;
    pub const VSS_E_PROVIDER_VETO: u32 = 0x8004_2306;
    pub const VSS_E_PROVIDER_NOT_REGISTERED: u32 = 0x8004_2304;
    pub const VSS_E_OBJECT_NOT_FOUND: u32 = 0x8004_2308;
}

/// `VSS_WS_FAILED_AT_IDENTIFY`, the first of the ten failed writer states
/// (through `VSS_WS_FAILED_AT_BACKUPSHUTDOWN`, 15), as vss.h numbers them.
pub const VSS_WS_FAILED_AT_IDENTIFY: i32 = 6;

/// Pure: the writers that failed (`VSS_WS_FAILED_AT_*`, states 6 to 15),
/// each named with the step it failed at and its HRESULT.
pub fn failed_writers(status: &[(String, i32, u32)]) -> Vec<String> {
    const STEPS: [&str; 10] = [
        "identify",
        "prepare backup",
        "prepare snapshot",
        "freeze",
        "thaw",
        "post snapshot",
        "backup complete",
        "pre restore",
        "post restore",
        "backup shutdown",
    ];
    status
        .iter()
        .filter_map(|(name, state, failure)| {
            let step = STEPS.get(usize::try_from(state - VSS_WS_FAILED_AT_IDENTIFY).ok()?)?;
            Some(format!("{name} (failed at {step}, {failure:#010x})"))
        })
        .collect()
}

/// Pure: a `VSS_WRITER_STATE` as vss.h names it, without its prefix
/// (`stable`, `failed at freeze`), for `selftest`'s report.
pub fn writer_state_name(state: i32) -> String {
    const NAMES: [&str; 16] = [
        "unknown",
        "stable",
        "waiting for freeze",
        "waiting for thaw",
        "waiting for post snapshot",
        "waiting for backup complete",
        "failed at identify",
        "failed at prepare backup",
        "failed at prepare snapshot",
        "failed at freeze",
        "failed at thaw",
        "failed at post snapshot",
        "failed at backup complete",
        "failed at pre restore",
        "failed at post restore",
        "failed at backup shutdown",
    ];
    usize::try_from(state).ok().and_then(|i| NAMES.get(i)).map_or_else(|| format!("state {state}"), |n| (*n).to_owned())
}

/// Retry pacing while another snapshot set is in progress, or after a
/// writer could not flush or hold its writes in time.
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long the writers' state is waited for once the copy is made: its own
/// bound, so that a DoSnapshotSet that took most of `vss_timeout` does not
/// leave the writers' state unknown (which `vss_writers = "require"` refuses).
const WRITER_STATUS_WAIT: Duration = Duration::from_secs(60);
/// How many times a flush or hold timeout is tried again: it is a busy
/// moment, not a broken writer, but one that never ends is reported.
const TIMEOUT_RETRIES: u32 = 2;

/// Pure: why a failed attempt is worth another one (`tries` timeouts so far),
/// or `None`. Another set in progress is retried until `vss_timeout`; a flush
/// or hold timeout (the system was too busy to freeze in VSS's 10 or 60 s) a
/// few times.
pub fn retry_reason(hresult: u32, tries: u32) -> Option<&'static str> {
    match hresult {
        hr::VSS_E_SNAPSHOT_SET_IN_PROGRESS => Some("another snapshot set is in progress"),
        hr::VSS_E_FLUSH_WRITES_TIMEOUT if tries < TIMEOUT_RETRIES => Some("the system could not flush its writes in time"),
        hr::VSS_E_HOLD_WRITES_TIMEOUT if tries < TIMEOUT_RETRIES => Some("the system could not hold its writes in time"),
        _ => None,
    }
}

/// The one-line message, with the fix, and the exit status for a failed VSS step.
pub fn classify(what: &str, hresult: u32, timeout_secs: u64) -> Error {
    use hr::*;
    let (kind, msg): (VssKind, String) = match hresult {
        E_ACCESSDENIED => (
            VssKind::AccessDenied,
            "access denied: run snaprsync elevated, as a member of Administrators or Backup Operators \
             (the ssh account needs SeBackupPrivilege)"
                .into(),
        ),
        VSS_E_SNAPSHOT_SET_IN_PROGRESS => (
            VssKind::Busy,
            format!(
                "another shadow copy set stayed in progress for vss_timeout = {timeout_secs} s \
                 (another backup running?): schedule backups apart or raise vss_timeout"
            ),
        ),
        TIMEOUT | VSS_E_FLUSH_WRITES_TIMEOUT | VSS_E_HOLD_WRITES_TIMEOUT => (
            VssKind::Busy,
            format!(
                "did not finish within vss_timeout = {timeout_secs} s: a writer may hang \
                 (check `vssadmin list writers`); raise vss_timeout or restart the stuck writer's service"
            ),
        ),
        VSS_E_PROVIDER_NOT_REGISTERED => (
            VssKind::Unavailable,
            "the VSS provider named by vss_provider is not registered here: see `vssadmin list providers`, \
             or set vss_provider = \"any\""
                .into(),
        ),
        VSS_E_INSUFFICIENT_STORAGE | VSS_E_MAXIMUM_DIFFAREA_ASSOCIATIONS_REACHED => (
            VssKind::NoStorage,
            "not enough shadow copy storage: free disk space, or enlarge it with \
             `vssadmin resize shadowstorage /for=C: /on=C: /maxsize=10%`"
                .into(),
        ),
        VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED | VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED => (
            VssKind::NoStorage,
            "the volume already holds the maximum number of shadow copies: delete old ones \
             (`vssadmin list shadows`, `vssadmin delete shadows /for=C: /oldest`)"
                .into(),
        ),
        VSS_E_VOLUME_NOT_SUPPORTED => (
            VssKind::VolumeUnsupported,
            "VSS cannot shadow this volume: a BitLocker volume that is locked (`manage-bde -status`), \
             ReFS on Windows older than Server 2012 / Windows 8, a network drive, FAT/exFAT (no NTFS for shadow storage), \
             or a RAM disk or other volume without a shadow copy provider: unlock it, or back it up without snaprsync, \
             or set on_snapshot_failure = \"live\""
                .into(),
        ),
        VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER => (
            VssKind::VolumeUnsupported,
            "the provider named by vss_provider cannot shadow this volume (a hardware provider for other disks, or \
             the system provider on a locked BitLocker, FAT/exFAT, ReFS-before-2012 or RAM-disk volume): set \
             vss_provider = \"any\" or \"system\" (see `vssadmin list providers`), or set on_snapshot_failure = \"live\""
                .into(),
        ),
        VSS_S_ASYNC_CANCELLED => (
            VssKind::Failed,
            "the operation was cancelled, not by snaprsync's deadline (by VSS itself or another program): \
             see the Application event log (source VSS) and `vssadmin list writers`, then retry"
                .into(),
        ),
        E_NOTIMPL => (
            VssKind::Unavailable,
            "VSS is not implemented on this system (wine, or a Windows edition without VSS): \
             run on Windows with the Volume Shadow Copy service, or set on_snapshot_failure = \"live\""
                .into(),
        ),
        REGDB_E_CLASSNOTREG | SERVICE_DISABLED => (
            VssKind::Unavailable,
            "the Volume Shadow Copy service is missing or disabled: `sc config vss start= demand` \
             as Administrator, or set on_snapshot_failure = \"live\""
                .into(),
        ),
        VSS_E_BAD_STATE => (
            VssKind::Failed,
            "VSS reports a bad state (a 32-bit requestor on 64-bit Windows, or a VSS call out of order): \
             use the 64-bit snaprsync.exe and report this with `snaprsync selftest --report FILE`"
                .into(),
        ),
        VSS_E_PROVIDER_VETO | VSS_E_UNEXPECTED_PROVIDER_ERROR | VSS_E_UNEXPECTED => (
            VssKind::Failed,
            "the VSS provider failed: see the Application event log (sources VSS, volsnap) and \
             `vssadmin list writers`, then retry"
                .into(),
        ),
        _ => (VssKind::Failed, "VSS failed: see the Application event log (source VSS) and `vssadmin list writers`".into()),
    };
    Error::Vss { what: what.to_owned(), hresult, msg, kind }
}

fn unavailable(what: &str, msg: String) -> Error {
    Error::Vss { what: what.to_owned(), hresult: hr::E_NOTIMPL, msg, kind: VssKind::Unavailable }
}

/// The failure of a shadow copy that vanished while rsync read it (status
/// 93): volsnap deletes a copy whose diff area could not grow in time (Event
/// 25), and rsync then reports its files as vanished, which many servers
/// accept. `why` says how it was found gone.
pub fn lost(volume: &str, device: &str, why: &str, hresult: u32) -> Error {
    Error::Vss {
        what: format!("the shadow copy {device} of {volume}"),
        hresult,
        msg: format!(
            "{why}: it vanished while it was read, so this backup is not a consistent copy. Windows deletes a shadow copy \
             whose storage could not grow in time under heavy writes (Event 25 from volsnap in the System log): give the volume \
             more shadow storage (`vssadmin resize shadowstorage /for={v} /on={v} /maxsize=20%`, or /on= another volume), \
             or back up at a quieter time",
            v = volume.trim_end_matches('\\')
        ),
        kind: VssKind::Lost,
    }
}

/// One shadow copy of a set: its volume, the id VSS knows it by, its device.
pub struct Shadow<I> {
    pub volume: String,
    pub id: I,
    pub device: String,
}

/// After rsync: every shadow copy of the set still exists (`properties`
/// finds it by id, with the same device) and its device still opens; the
/// first that does not fails the run with [`lost`]. The VSS provider asks
/// `GetSnapshotProperties`; the test double asks its own directories.
pub fn check_shadows<I>(
    shadows: &[Shadow<I>],
    properties: impl Fn(&I) -> std::result::Result<String, Failure>,
    opens: impl Fn(&str) -> std::io::Result<()>,
) -> Result<()> {
    for s in shadows {
        match properties(&s.id) {
            Err(Failure { call: what, hresult: h }) => return Err(lost(&s.volume, &s.device, &format!("{what} no longer finds it"), h)),
            Ok(d) if !d.trim_end_matches('\\').eq_ignore_ascii_case(s.device.trim_end_matches('\\')) => {
                return Err(lost(&s.volume, &s.device, &format!("its id now leads to another device, {d}"), hr::VSS_E_OBJECT_NOT_FOUND))
            }
            Ok(_) => {}
        }
        if let Err(e) = opens(&s.device) {
            let h = e.raw_os_error().map_or(hr::VSS_E_OBJECT_NOT_FOUND, |c| 0x8007_0000 | (c as u32 & 0xFFFF));
            return Err(lost(&s.volume, &s.device, &format!("its device no longer opens ({e})"), h));
        }
    }
    Ok(())
}

/// The VSS provider. Holds the backup components of the set it made until
/// `remove`; dropping it without `remove` aborts the backup and releases the
/// set (VSS deletes non-persistent shadow copies on release).
pub struct Vss {
    timeout: Duration,
    live: Option<com::BackupComponents>,
    /// The shadow copies of the live set, for `verify`.
    shadows: Vec<Shadow<com::GUID>>,
    /// Whether the run was asked to stop (a console event): creation then
    /// cancels between VSS steps and inside the waits, instead of waiting
    /// out `vss_timeout`, and removal skips BackupComplete.
    stop: fn() -> bool,
    /// `vss_writers = "require"`: a failed writer fails the run.
    require_writers: bool,
    /// `vss_provider`: GUID_NULL lets VSS choose.
    provider: com::GUID,
    /// Each step of the sequence as it went, and the writers' states
    /// (`selftest` reports them).
    trace: std::sync::Mutex<Vec<String>>,
}

impl Vss {
    pub fn new(vss_timeout_secs: u64) -> Vss {
        Vss {
            timeout: Duration::from_secs(vss_timeout_secs),
            live: None,
            shadows: Vec::new(),
            stop: || false,
            require_writers: false,
            provider: com::GUID::default(),
            trace: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The sequence so far: each VSS step with its time, or how it failed,
    /// and each writer's state.
    pub fn trace(&self) -> Vec<String> {
        self.trace.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn note(&self, line: String) {
        self.trace.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }

    /// Notes a step that went, with the time it took.
    fn went(&self, step: &str, since: Instant) {
        self.note(format!("{step}: ok ({} ms)", since.elapsed().as_millis()));
    }

    /// The same, failing when a writer failed (`vss_writers = "require"`).
    pub fn requiring_writers(mut self, require: bool) -> Vss {
        self.require_writers = require;
        self
    }

    /// The same, with the shadow copies made by provider `id` (`vss_provider`).
    pub fn with_provider(mut self, id: Option<u128>) -> Vss {
        self.provider = id.map(com::GUID::from_u128).unwrap_or_default();
        self
    }

    /// The same, cancelled when `stop` says so.
    pub fn stopped_by(mut self, stop: fn() -> bool) -> Vss {
        self.stop = stop;
        self
    }

    /// The stop check between steps: a cancelled step's failure.
    fn go_on(&self, step: &str) -> std::result::Result<(), Failure> {
        if (self.stop)() {
            return Err(Failure::new(format!("{step} (stopped)"), hr::VSS_S_ASYNC_CANCELLED));
        }
        Ok(())
    }

    fn timeout_secs(&self) -> u64 {
        self.timeout.as_secs()
    }

    /// One attempt at the whole sequence, for `volumes` (roots like `C:\`).
    fn attempt(&self, targets: &[(String, Vec<String>)], deadline: Instant) -> std::result::Result<Attempt, Failure> {
        let stop = self.stop;
        let volumes: Vec<&String> = targets.iter().map(|(v, _)| v).collect();
        self.go_on("CreateVssBackupComponents")?;
        let t = Instant::now();
        let bc = com::BackupComponents::create()?;
        bc.initialize_for_backup()?;
        bc.set_context(com::VSS_CTX_BACKUP)?;
        bc.set_backup_state(com::VSS_BT_COPY)?;
        self.went("CreateVssBackupComponents, InitializeForBackup, SetContext(backup), SetBackupState(copy)", t);
        let t = Instant::now();
        bc.gather_writer_metadata()?.wait(deadline, "GatherWriterMetadata", stop)?;
        self.went("GatherWriterMetadata", t);
        if let Err(Failure { call: what, hresult: h }) = bc.free_writer_metadata() {
            log::debug!("vss: {what}: {h:#010x}");
        }
        for &v in &volumes {
            if !bc.is_volume_supported(v, self.provider)? {
                // Asked of one provider, the answer is about that provider.
                let h = if self.provider == com::GUID::default() {
                    hr::VSS_E_VOLUME_NOT_SUPPORTED
                } else {
                    hr::VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER
                };
                return Err(Failure::new(format!("IsVolumeSupported({v})"), h));
            }
        }
        self.note(format!("IsVolumeSupported({}): yes", volumes.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")));
        let set_id = bc.start_snapshot_set()?;
        log::debug!("vss: snapshot set {set_id}");
        self.note(format!("StartSnapshotSet, AddToSnapshotSet: set {set_id}"));
        let mut ids = Vec::new();
        for (v, aliases) in targets {
            match bc.add_to_snapshot_set(v, self.provider) {
                Ok(id) => ids.push((v, aliases, id)),
                Err(e) => {
                    bc.abort_backup();
                    return Err(e);
                }
            }
        }
        let t = Instant::now();
        let prepared =
            self.go_on("PrepareForBackup").and_then(|()| bc.prepare_for_backup()).and_then(|a| a.wait(deadline, "PrepareForBackup", stop));
        if prepared.is_ok() {
            self.went("PrepareForBackup", t);
        }
        let t = Instant::now();
        let done = prepared
            .and_then(|()| self.go_on("DoSnapshotSet"))
            .and_then(|()| bc.do_snapshot_set())
            .and_then(|a| a.wait(deadline, "DoSnapshotSet", stop));
        if done.is_ok() {
            self.went("DoSnapshotSet", t);
        }
        if let Err(e) = done {
            bc.abort_backup();
            return Err(e);
        }
        let (mut snaps, mut shadows) = (Vec::new(), Vec::new());
        for (v, aliases, id) in ids {
            let device = bc.snapshot_device(id).inspect_err(|_| bc.abort_backup())?;
            log::info!("vss: {v} is shadowed as {device} (snapshot {id})");
            self.note(format!("GetSnapshotProperties: {v} is {device}"));
            shadows.push(Shadow { volume: v.clone(), id, device: device.clone() });
            // The same volume reached by another root: the same shadow copy.
            for root in std::iter::once(v).chain(aliases) {
                snaps.push(VolumeSnapshot {
                    origin: PathBuf::from(root),
                    snapshot: PathBuf::from(format!("{device}\\")),
                    id: id.to_string(),
                    mount: None,
                });
            }
        }
        // Its own bound, not what DoSnapshotSet left of vss_timeout.
        let t = Instant::now();
        let failed = match bc.writer_status(Instant::now() + WRITER_STATUS_WAIT, stop) {
            Ok((writers, unread)) => {
                self.went(&format!("GatherWriterStatus: {} writer(s), {unread} unread", writers.len()), t);
                for (name, state, failure) in &writers {
                    self.note(format!("writer {name}: {} ({failure:#010x})", writer_state_name(*state)));
                }
                let mut failed = failed_writers(&writers);
                if unread > 0 {
                    failed.push(format!("{unread} writer(s) whose state could not be read"));
                }
                failed
            }
            // Under vss_writers = "require" an unknown state is a failure too.
            Err(Failure { call: what, hresult: h }) => {
                vec![format!("every writer: {what} failed ({h:#010x}), so whether they froze their applications is unknown")]
            }
        };
        Ok((bc, snaps, shadows, failed))
    }
}

/// What one whole attempt made: the components holding the set, its
/// snapshots (one per root), its shadow copies, the writers that failed.
type Attempt = (com::BackupComponents, Vec<VolumeSnapshot>, Vec<Shadow<com::GUID>>, Vec<String>);

/// The volumes holding `sources`, in first-seen order, each once: its root
/// (`C:\`, or a mount folder `D:\Mount\Data\`) and the other roots a source
/// reached the same volume by (a volume with a letter and a mount folder).
fn volumes_of(sources: &[PathBuf]) -> Result<Vec<(String, Vec<String>)>> {
    let mut roots: Vec<(String, Option<String>)> = Vec::new();
    for s in sources {
        let v =
            volume::volume_path_name(s).map_err(|e| Error::Snapshot { path: s.clone(), msg: format!("cannot find its volume: {e}") })?;
        if volume::is_remote_drive(&v) {
            return Err(classify(&format!("{} is on network drive {v}", s.display()), hr::VSS_E_VOLUME_NOT_SUPPORTED, 0));
        }
        let guid = volume::volume_guid(&v).ok();
        roots.push((v, guid));
    }
    Ok(group_volumes(&roots))
}

/// Pure: volume roots grouped by volume, in first-seen order: (root, other
/// roots of the same volume). Two roots are one volume when their GUID names
/// match, or, a GUID being unknown, when they are the same root in two forms
/// (`C:\`, `\\?\C:\`).
pub fn group_volumes(roots: &[(String, Option<String>)]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Option<String>, Vec<String>)> = Vec::new();
    for (root, guid) in roots {
        let same = |(r, g, aliases): &(String, Option<String>, Vec<String>)| {
            let by_guid = matches!((g, guid), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b));
            by_guid || same_volume(r, root) || aliases.iter().any(|a| same_volume(a, root))
        };
        match out.iter_mut().find(|e| same(e)) {
            Some((r, _, aliases)) => {
                if !same_volume(r, root) && !aliases.iter().any(|a| same_volume(a, root)) {
                    aliases.push(root.clone());
                }
            }
            None => out.push((root.clone(), guid.clone(), Vec::new())),
        }
    }
    out.into_iter().map(|(r, _, a)| (r, a)).collect()
}

/// Pure: the volume mount points strictly below a source: (source, mount
/// folder). `mounts` are the folders volumes are mounted at (`C:\Mount\Data\`);
/// inside a shadow copy such a folder still leads to the LIVE volume.
pub fn mount_points_below(sources: &[PathBuf], mounts: &[String]) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for s in sources {
        let src = root_key(&s.to_string_lossy());
        for m in mounts {
            let m_key = root_key(m);
            if m_key.len() > src.len() && m_key.starts_with(&src) && m_key[src.len()..].starts_with('\\') {
                out.push((s.clone(), m.clone()));
            }
        }
    }
    out
}

/// Pure: whether two volume paths name the same volume root, whatever the
/// case, the verbatim prefix or the trailing separator.
pub fn same_volume(a: &str, b: &str) -> bool {
    root_key(a) == root_key(b)
}

/// A volume path as Windows compares it: no verbatim prefix, no trailing
/// separator, upper case.
fn root_key(s: &str) -> String {
    let s = s.strip_prefix(r"\\?\").unwrap_or(s);
    s.trim_end_matches('\\').to_ascii_uppercase()
}

/// Its row's parts: every local volume (the platform applies
/// `vss_exclude_volumes`); its sweeper finds nothing, since a shadow copy
/// dies with the process that made it.
pub const PARTS: Parts = Parts {
    build: |cfg, machine| {
        Ok(Box::new(
            Vss::new(cfg.vss_timeout)
                .stopped_by(machine.stopping)
                .requiring_writers(cfg.vss_writers == crate::config::VssWriters::Require)
                .with_provider(cfg.vss_provider_id().ok().flatten()),
        ))
    },
    in_use: || true,
    sweeper: |cfg, machine| Ok(Box::new(Vss::new(cfg.vss_timeout).stopped_by(machine.stopping))),
};

/// Non-persistent shadow copies (backup context) cannot outlive their
/// process: none is ever left.
impl Sweeper for Vss {
    fn name(&self) -> &'static str {
        "vss"
    }

    fn leftovers(&self) -> Result<Vec<Leftover>> {
        Ok(Vec::new())
    }

    fn remove_leftover(&mut self, _leftover: &Leftover) -> Result<()> {
        Ok(())
    }
}

impl Snapshotter for Vss {
    fn create(&mut self, sources: &[PathBuf]) -> Result<SnapshotSet> {
        if com::is_wow64() {
            return Err(unavailable(
                "VSS",
                "this is a 32-bit snaprsync on 64-bit Windows, where VSS refuses 32-bit requestors: \
                 install the 64-bit snaprsync.exe"
                    .into(),
            ));
        }
        let targets = volumes_of(sources)?;
        let volumes: Vec<String> = targets.iter().map(|(v, _)| v.clone()).collect();
        com::init().map_err(|Failure { call: what, hresult: h }| classify(&what, h, self.timeout_secs()))?;
        let deadline = Instant::now() + self.timeout;
        let mut backoff = FIRST_BACKOFF;
        let mut timeouts = 0;
        loop {
            match self.attempt(&targets, deadline) {
                Ok((bc, snaps, shadows, failed)) => {
                    if !failed.is_empty() {
                        let which = failed.join("; ");
                        if self.require_writers {
                            // Dropping the components releases the set.
                            bc.abort_backup();
                            // Not a snapshot failure: on_snapshot_failure = "live"
                            // must not turn a refused crash-consistent copy into a live one.
                            return Err(Error::WritersFailed {
                                volumes: volumes.join(" "),
                                msg: format!(
                                    "{which}; their applications' files would be only crash-consistent, and vss_writers = \"require\" refuses that: see `vssadmin list writers`, or set vss_writers = \"warn\""
                                ),
                            });
                        }
                        log::warn!(
                            "vss: writers failed while the shadow copy was made: {which}; their applications' files are only crash-consistent in this backup (see `vssadmin list writers`)"
                        );
                    }
                    self.live = Some(bc);
                    self.shadows = shadows;
                    return Ok(SnapshotSet { provider: "vss", volumes: snaps, views: Vec::new() });
                }
                // A console event: end now, nothing is left (the attempt aborted).
                Err(Failure { call: what, hresult: h }) if h == hr::VSS_S_ASYNC_CANCELLED && (self.stop)() => {
                    log::warn!("vss: {what}: the run was asked to stop");
                    return Err(Error::Interrupted(2));
                }
                Err(Failure { call: what, hresult: h }) if Instant::now() + backoff < deadline && retry_reason(h, timeouts).is_some() => {
                    let why = retry_reason(h, timeouts).unwrap_or_default();
                    if h != hr::VSS_E_SNAPSHOT_SET_IN_PROGRESS {
                        timeouts += 1;
                    }
                    log::warn!("vss: {what}: {why}; retrying in {} s", backoff.as_secs());
                    self.note(format!("{what}: {why} (HRESULT {h:#010x}); retrying in {} s", backoff.as_secs()));
                    let until = Instant::now() + backoff;
                    while Instant::now() < until {
                        if (self.stop)() {
                            return Err(Error::Interrupted(2));
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(Failure { call: what, hresult: h }) => {
                    self.note(format!("{what}: failed, HRESULT {h:#010x}"));
                    return Err(classify(&format!("VSS {what} for {}", volumes.join(" ")), h, self.timeout_secs()));
                }
            }
        }
    }

    /// Every shadow copy of the set still there, by id and by its device.
    fn verify(&self, _set: &SnapshotSet) -> Result<()> {
        let Some(bc) = &self.live else { return Ok(()) };
        check_shadows(&self.shadows, |id| bc.snapshot_device(*id), volume::device_opens)
    }

    fn remove(&mut self, set: &SnapshotSet) -> Result<()> {
        self.shadows.clear();
        let Some(bc) = self.live.take() else { return Ok(()) };
        if (self.stop)() {
            // Stopping: no BackupComplete (writers would be told of a backup
            // that did not finish); releasing deletes the shadow copies.
            bc.abort_backup();
            drop(bc);
            log::info!("vss: stopped: released {}", copies(set));
            return Ok(());
        }
        let deadline = Instant::now() + self.timeout;
        let t = Instant::now();
        let completed = bc.backup_complete().and_then(|a| a.wait(deadline, "BackupComplete", || false));
        match &completed {
            Ok(()) => self.went("BackupComplete, release", t),
            Err(Failure { call: what, hresult: h }) => self.note(format!("{what}: failed, HRESULT {h:#010x}")),
        }
        // Releasing the components deletes the non-persistent shadow copies.
        drop(bc);
        log::info!("vss: released {}", copies(set));
        completed.map_err(|Failure { call: what, hresult: h }| classify(&format!("VSS {what}"), h, self.timeout_secs()))
    }
}

/// "1 shadow copy", "2 shadow copies": one per volume (a volume reached by
/// two roots is in the set twice, with one id).
fn copies(set: &SnapshotSet) -> String {
    let n = set.volumes.iter().map(|v| &v.id).collect::<std::collections::HashSet<_>>().len();
    format!("{n} shadow cop{}", if n == 1 { "y" } else { "ies" })
}

impl Drop for Vss {
    fn drop(&mut self) {
        if let Some(bc) = self.live.take() {
            log::warn!("vss: set not removed normally; aborting the backup and releasing it");
            bc.abort_backup();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_volume_in_two_forms_is_one() {
        assert!(same_volume(r"C:\", r"\\?\c:\"));
        assert!(same_volume(r"C:\Mount\Data\", r"c:\mount\data"));
        assert!(!same_volume(r"C:\", r"D:\"));
        assert!(!same_volume(r"C:\Mount\", r"C:\"));
    }

    #[test]
    fn a_volume_reached_by_two_roots_is_shadowed_once() {
        let g = |s: &str| Some(format!(r"\\?\Volume{{{s}}}\"));
        let roots = [
            (r"C:\".to_owned(), g("c")),
            (r"D:\".to_owned(), g("d")),
            // D: also mounted in a folder of C:, and C: written verbatim.
            (r"C:\Mount\D\".to_owned(), g("d")),
            (r"\\?\C:\".to_owned(), g("c")),
            (r"c:\".to_owned(), None),
            (r"E:\".to_owned(), None),
            (r"\\?\e:\".to_owned(), None),
        ];
        assert_eq!(
            group_volumes(&roots),
            [(r"C:\".to_owned(), vec![]), (r"D:\".to_owned(), vec![r"C:\Mount\D\".to_owned()]), (r"E:\".to_owned(), vec![]),]
        );
    }

    #[test]
    fn mount_points_strictly_below_a_source_are_found() {
        let mounts: Vec<String> = [r"C:\", r"D:\", r"C:\Data\Mnt\", r"\\?\C:\Data2\M\", r"C:\DataX\"].map(String::from).to_vec();
        let found = |s: &str| -> Vec<String> { mount_points_below(&[PathBuf::from(s)], &mounts).into_iter().map(|(_, m)| m).collect() };
        assert_eq!(found(r"C:\"), [r"C:\Data\Mnt\", r"\\?\C:\Data2\M\", r"C:\DataX\"]);
        assert_eq!(found(r"C:\data"), [r"C:\Data\Mnt\"], "case does not matter; DataX is not below Data");
        assert_eq!(found(r"\\?\C:\Data2\"), [r"\\?\C:\Data2\M\"]);
        assert!(found(r"C:\Data\Mnt").is_empty(), "the mount folder itself is read from its own volume");
        assert!(found(r"C:\Data\Mnt\x").is_empty());
        assert!(found(r"D:\").is_empty());
    }

    #[test]
    fn a_provider_id_becomes_the_guid_it_reads_as() {
        let system = crate::config::parse_guid("{b5946137-7b9f-4925-af80-51abd60b20d5}").unwrap();
        assert_eq!(com::GUID::from_u128(system).to_string(), "{B5946137-7B9F-4925-AF80-51ABD60B20D5}");
        assert!(com::GUID::from_u128(0) == com::GUID::default());
    }

    #[test]
    fn failed_writers_are_named_with_their_step() {
        let status = [
            ("System Writer".to_owned(), 1, 0),
            ("SqlServerWriter".to_owned(), 9, 0x800423F2),
            ("Registry Writer".to_owned(), 5, 0),
            ("COM+ Writer".to_owned(), 6, 0x800423F3),
            ("ASR Writer".to_owned(), 7, 0x800423F4),
            ("WMI Writer".to_owned(), 15, 0x800423F4),
            ("Odd Writer".to_owned(), 16, 0),
            ("Negative".to_owned(), -1, 0),
        ];
        assert_eq!(
            failed_writers(&status),
            [
                "SqlServerWriter (failed at freeze, 0x800423f2)",
                "COM+ Writer (failed at identify, 0x800423f3)",
                "ASR Writer (failed at prepare backup, 0x800423f4)",
                "WMI Writer (failed at backup shutdown, 0x800423f4)"
            ]
        );
        assert!(failed_writers(&status[..1]).is_empty());
    }

    #[test]
    fn writer_states_are_named_as_vss_h_numbers_them() {
        assert_eq!(writer_state_name(1), "stable");
        assert_eq!(writer_state_name(5), "waiting for backup complete");
        assert_eq!(writer_state_name(VSS_WS_FAILED_AT_IDENTIFY), "failed at identify");
        assert_eq!(writer_state_name(9), "failed at freeze");
        assert_eq!(writer_state_name(15), "failed at backup shutdown");
        assert_eq!(writer_state_name(16), "state 16");
        assert_eq!(writer_state_name(-1), "state -1");
    }

    #[test]
    fn transient_failures_are_retried_a_bounded_number_of_times() {
        assert!(retry_reason(hr::VSS_E_SNAPSHOT_SET_IN_PROGRESS, 99).is_some(), "until vss_timeout");
        for h in [hr::VSS_E_FLUSH_WRITES_TIMEOUT, hr::VSS_E_HOLD_WRITES_TIMEOUT] {
            assert!(retry_reason(h, 0).is_some() && retry_reason(h, 1).is_some());
            assert_eq!(retry_reason(h, TIMEOUT_RETRIES), None, "{h:#x}: a timeout that never ends is reported");
        }
        for h in [hr::E_ACCESSDENIED, hr::VSS_E_INSUFFICIENT_STORAGE, hr::VSS_E_PROVIDER_VETO, hr::TIMEOUT] {
            assert_eq!(retry_reason(h, 0), None, "{h:#x}");
        }
    }

    /// The vtable slots, struct layout and HRESULT values of the binding
    /// against mingw-w64's headers (dumped by `scripts/windows.sh check-abi`,
    /// which `scripts/windows.sh test` runs first and passes in
    /// SNAPRSYNC_HEADER_ABI). A slot off by one fails here, not on a user's machine.
    #[test]
    fn binding_matches_mingw_headers() {
        let path = std::env::var("SNAPRSYNC_HEADER_ABI")
            .expect("SNAPRSYNC_HEADER_ABI is not set: run the Windows tests with scripts/windows.sh test");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
        let header = |kind: &str, scope: &str| -> Vec<(String, String)> {
            lines.iter().filter(|l| l.len() == 4 && l[0] == kind && l[1] == scope).map(|l| (l[2].to_owned(), l[3].to_owned())).collect()
        };
        let total = |iface: &str| -> usize {
            lines.iter().find(|l| l.len() == 3 && l[0] == "slots" && l[1] == iface).map(|l| l[2].parse().unwrap()).expect("slot count")
        };
        let ours = |v: Vec<(&'static str, usize)>| -> Vec<(String, String)> {
            v.into_iter().map(|(n, s)| (n.to_owned(), s.to_string())).collect()
        };

        assert_eq!(ours(com::IVssBackupComponentsVtbl::slots()), header("slot", "IVssBackupComponents"));
        assert_eq!(std::mem::size_of::<com::IVssBackupComponentsVtbl>() / 8, total("IVssBackupComponents"));
        assert_eq!(ours(com::IVssAsyncVtbl::slots()), header("slot", "IVssAsync"));
        assert_eq!(std::mem::size_of::<com::IVssAsyncVtbl>() / 8, total("IVssAsync"));
        assert_eq!(ours(com::IGlobalOptionsVtbl::slots()), header("slot", "IGlobalOptions"));
        assert_eq!(std::mem::size_of::<com::IGlobalOptionsVtbl>() / 8, total("IGlobalOptions"));
        assert_eq!(ours(com::snapshot_prop_fields()), header("field", "VSS_SNAPSHOT_PROP"));
        let size = |s: &str| -> usize {
            lines.iter().find(|l| l.len() == 3 && l[0] == "size" && l[1] == s).map(|l| l[2].parse().unwrap()).expect("size")
        };
        assert_eq!(std::mem::size_of::<com::VSS_SNAPSHOT_PROP>(), size("VSS_SNAPSHOT_PROP"));
        assert_eq!(std::mem::size_of::<com::GUID>(), size("VSS_ID"));

        let value = |name: &str| -> u32 {
            let l = lines
                .iter()
                .find(|l| l.len() == 3 && l[0] == "hresult" && l[1] == name)
                .unwrap_or_else(|| panic!("{name} not in the headers"));
            u32::from_str_radix(l[2].trim_start_matches("0x"), 16).unwrap()
        };
        use hr::*;
        for (name, v) in [
            ("E_ACCESSDENIED", E_ACCESSDENIED),
            ("E_NOTIMPL", E_NOTIMPL),
            ("E_INVALIDARG", E_INVALIDARG),
            ("E_OUTOFMEMORY", E_OUTOFMEMORY),
            ("REGDB_E_CLASSNOTREG", REGDB_E_CLASSNOTREG),
            ("RPC_E_TOO_LATE", RPC_E_TOO_LATE),
            ("VSS_E_BAD_STATE", VSS_E_BAD_STATE),
            ("VSS_E_UNEXPECTED", VSS_E_UNEXPECTED),
            ("VSS_S_ASYNC_PENDING", VSS_S_ASYNC_PENDING),
            ("VSS_S_ASYNC_FINISHED", VSS_S_ASYNC_FINISHED),
            ("VSS_S_ASYNC_CANCELLED", VSS_S_ASYNC_CANCELLED),
            ("VSS_E_VOLUME_NOT_SUPPORTED", VSS_E_VOLUME_NOT_SUPPORTED),
            ("VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER", VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER),
            ("VSS_E_UNEXPECTED_PROVIDER_ERROR", VSS_E_UNEXPECTED_PROVIDER_ERROR),
            ("VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED", VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED),
            ("VSS_E_FLUSH_WRITES_TIMEOUT", VSS_E_FLUSH_WRITES_TIMEOUT),
            ("VSS_E_HOLD_WRITES_TIMEOUT", VSS_E_HOLD_WRITES_TIMEOUT),
            ("VSS_E_SNAPSHOT_SET_IN_PROGRESS", VSS_E_SNAPSHOT_SET_IN_PROGRESS),
            ("VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED", VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED),
            ("VSS_E_INSUFFICIENT_STORAGE", VSS_E_INSUFFICIENT_STORAGE),
            ("VSS_E_MAXIMUM_DIFFAREA_ASSOCIATIONS_REACHED", VSS_E_MAXIMUM_DIFFAREA_ASSOCIATIONS_REACHED),
            ("VSS_E_PROVIDER_VETO", VSS_E_PROVIDER_VETO),
            ("VSS_E_OBJECT_NOT_FOUND", VSS_E_OBJECT_NOT_FOUND),
            ("VSS_CTX_BACKUP", com::VSS_CTX_BACKUP as u32),
            ("VSS_BT_COPY", com::VSS_BT_COPY as u32),
            ("VSS_WS_FAILED_AT_IDENTIFY", VSS_WS_FAILED_AT_IDENTIFY as u32),
            ("VSS_WS_FAILED_AT_BACKUPSHUTDOWN", VSS_WS_FAILED_AT_IDENTIFY as u32 + 9),
            ("VSS_E_PROVIDER_NOT_REGISTERED", VSS_E_PROVIDER_NOT_REGISTERED),
            ("COMGLB_EXCEPTION_HANDLING", com::global_option_values().0 as u32),
            ("COMGLB_EXCEPTION_DONOT_HANDLE", com::global_option_values().1 as u32),
        ] {
            assert_eq!(v, value(name), "{name}");
        }
    }

    #[test]
    fn every_user_facing_error_has_its_status_and_fix() {
        let cases = [
            (hr::E_ACCESSDENIED, status::ACCESS_DENIED, "Backup Operators"),
            (hr::VSS_E_PROVIDER_NOT_REGISTERED, status::UNAVAILABLE, "vssadmin list providers"),
            (hr::VSS_E_SNAPSHOT_SET_IN_PROGRESS, status::BUSY, "vss_timeout"),
            (hr::TIMEOUT, status::BUSY, "vss_timeout"),
            (hr::VSS_E_INSUFFICIENT_STORAGE, status::NO_STORAGE, "vssadmin resize shadowstorage"),
            (hr::VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED, status::NO_STORAGE, "vssadmin delete shadows"),
            (hr::VSS_E_VOLUME_NOT_SUPPORTED, status::VOLUME_UNSUPPORTED, "network drive"),
            (hr::VSS_E_VOLUME_NOT_SUPPORTED, status::VOLUME_UNSUPPORTED, "BitLocker"),
            (hr::VSS_E_VOLUME_NOT_SUPPORTED, status::VOLUME_UNSUPPORTED, "ReFS"),
            (hr::VSS_E_VOLUME_NOT_SUPPORTED, status::VOLUME_UNSUPPORTED, "FAT/exFAT"),
            (hr::VSS_E_VOLUME_NOT_SUPPORTED, status::VOLUME_UNSUPPORTED, "RAM disk"),
            (hr::VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER, status::VOLUME_UNSUPPORTED, "vss_provider = \"any\""),
            (hr::VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER, status::VOLUME_UNSUPPORTED, "BitLocker"),
            (hr::VSS_S_ASYNC_CANCELLED, crate::error::status::SNAPSHOT, "cancelled, not by snaprsync"),
            (hr::E_NOTIMPL, status::UNAVAILABLE, "not implemented"),
            (hr::REGDB_E_CLASSNOTREG, status::UNAVAILABLE, "sc config vss"),
            (hr::SERVICE_DISABLED, status::UNAVAILABLE, "sc config vss"),
            (0x8000_4005, crate::error::status::SNAPSHOT, "event log"),
        ];
        for (h, st, fix) in cases {
            let e = classify("VSS DoSnapshotSet for C:\\", h, 600);
            assert_eq!(e.exit_code(), st, "{h:#x}");
            assert!(e.is_snapshot_failure(), "{h:#x}");
            let msg = e.to_string();
            assert!(msg.contains(fix), "{h:#x}: {msg}");
            assert!(msg.contains(&format!("{h:#010x}")), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
    }

    #[test]
    fn vss_statuses_collide_with_nothing() {
        const RSYNC: &[u8] = &[0, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24, 25, 30, 35];
        use crate::error::status as s;
        let own = [s::USAGE, s::SNAPSHOT, s::RSYNC_MISSING, s::NO_PROVIDER, s::PROTECT_ARGS, s::REFUSED, s::EXPOSE, s::INTERNAL];
        for c in [status::BUSY, status::NO_STORAGE, status::VOLUME_UNSUPPORTED, status::UNAVAILABLE] {
            assert!(!RSYNC.contains(&c) && !own.contains(&c) && c < 128, "{c}");
        }
    }

    /// `verify`'s decision: a copy its id no longer finds, one whose id leads
    /// to another device, and one whose device no longer opens each fail with
    /// 93, naming Event 25 and the fix; a whole set passes.
    #[test]
    fn a_vanished_shadow_copy_is_93_with_event_25_and_the_fix() {
        let dev = |n: u32| format!(r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy{n}");
        let set = [
            Shadow { volume: r"C:\".to_owned(), id: 1u32, device: dev(1) },
            Shadow { volume: r"D:\".to_owned(), id: 2u32, device: dev(2) },
        ];
        let all = |id: &u32| Ok(dev(*id));
        let opens = |_: &str| Ok(());
        assert!(check_shadows(&set, all, opens).is_ok());
        let gone = |id: &u32| if *id == 2 { Err(Failure::new("GetSnapshotProperties", hr::VSS_E_OBJECT_NOT_FOUND)) } else { Ok(dev(*id)) };
        let moved = |id: &u32| Ok(dev(*id + 10));
        let dead = |d: &str| if d.ends_with("Copy1") { Err(std::io::Error::from_raw_os_error(2)) } else { Ok(()) };
        for (e, names) in
            [(check_shadows(&set, gone, opens), "D:"), (check_shadows(&set, moved, opens), "C:"), (check_shadows(&set, all, dead), "C:")]
        {
            let e = e.expect_err("a lost copy passed");
            let msg = e.to_string();
            assert_eq!(e.exit_code(), status::LOST, "{msg}");
            assert_eq!(status::LOST, 93);
            for want in ["Event 25", "vanished", &format!("/for={names}"), "resize shadowstorage"] {
                assert!(msg.contains(want), "{want:?} not in {msg}");
            }
            assert!(!msg.contains('\n'), "{msg}");
        }
        let msg = check_shadows(&set, all, dead).unwrap_err().to_string();
        assert!(msg.contains("0x80070002") && msg.contains("no longer opens"), "{msg}");
    }

    /// The device check itself: a shadow copy device that is not there does
    /// not open, a volume's root does.
    #[test]
    fn a_missing_shadow_device_does_not_open() {
        assert!(volume::device_opens(r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy4242").is_err());
        assert!(volume::device_opens(r"C:\").is_ok());
        assert!(volume::device_opens(&std::env::temp_dir().to_string_lossy()).is_ok());
    }

    /// COM's process-wide settings: snaprsync's own security and
    /// COMGLB_EXCEPTION_DONOT_HANDLE (wine's ole32 accepts the call, but its
    /// Query answers 0 whatever was set, so that the option takes only real
    /// Windows shows);
    /// a second init does not take snaprsync's own security for another's;
    /// RPC_E_TOO_LATE goes on with a warning naming the consequence, any
    /// other failure of CoInitializeSecurity stops.
    #[test]
    fn com_security_and_exception_handling_are_set_once_and_too_late_is_named() {
        let first = com::init().expect("COM initialises under wine");
        assert_eq!(first.exceptions, Ok(()), "IGlobalOptions::Set(COMGLB_EXCEPTION_HANDLING, DONOT_HANDLE)");
        assert_eq!(com::init().unwrap(), first, "a second init is the first's");
        let late = com::secure_for_test(hr::RPC_E_TOO_LATE as i32).expect("RPC_E_TOO_LATE is not fatal");
        assert!(late.security_too_late);
        for want in ["RPC_E_TOO_LATE", "Event 8194", "writers", "unknown"] {
            assert!(com::TOO_LATE_WARNING.contains(want), "{want:?}");
        }
        assert!(!com::secure_for_test(0).unwrap().security_too_late);
        assert_eq!(com::secure_for_test(hr::E_ACCESSDENIED as i32), Err(Failure::new("CoInitializeSecurity", hr::E_ACCESSDENIED)));
    }

    /// Under wine VSS answers E_NOTIMPL: the provider must say so clearly, with
    /// the documented status, and leave nothing behind.
    #[test]
    fn unavailable_vss_is_reported_not_fatal() {
        let mut vss = Vss::new(5);
        let dir = std::env::temp_dir();
        match vss.create(&[dir]) {
            Ok(set) => {
                // Real Windows with VSS and privileges: the set must be usable and removable.
                assert!(!set.volumes.is_empty());
                vss.remove(&set).unwrap();
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(e.is_snapshot_failure(), "{msg}");
                assert!(matches!(e.exit_code(), status::UNAVAILABLE | status::ACCESS_DENIED), "{msg}");
                assert!(!msg.contains('\n'), "{msg}");
            }
        }
        assert!(vss.live.is_none());
    }
}
