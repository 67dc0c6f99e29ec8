//! The COM binding for `IVssBackupComponents` and `IVssAsync`, written by hand
//! (neither `windows` nor `windows-sys` has it), and every Win32 call of the
//! VSS provider, each behind a small safe function or method. The vtable slots
//! and the `VSS_SNAPSHOT_PROP` layout are checked against mingw-w64's headers
//! by the provider's `tests::binding_matches_mingw_headers`.
//!
//! All `unsafe` of the provider is here: the only module of it that may have
//! any, and every block says why it holds.
#![allow(unsafe_code)]
// The C names are kept as the headers spell them, so that the check can compare them.
#![allow(non_snake_case, clippy::upper_case_acronyms)]

use std::ffi::c_void;
use std::fmt;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{FreeLibrary, HMODULE};
use windows_sys::Win32::System::Com::{
    CLSID_GlobalOptions, CoCreateInstance, CoInitializeEx, CoInitializeSecurity, CoTaskMemFree, CLSCTX_INPROC_SERVER, COINIT_MULTITHREADED,
    COMGLB_EXCEPTION_DONOT_HANDLE, COMGLB_EXCEPTION_HANDLING, EOAC_STATIC_CLOAKING, RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
    RPC_C_IMP_LEVEL_IMPERSONATE,
};
use windows_sys::Win32::System::LibraryLoader::{GetProcAddress, LoadLibraryExW, LOAD_LIBRARY_SEARCH_SYSTEM32};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, IsWow64Process};

use super::hr;

pub type HRESULT = i32;
/// A COM or VSS call that failed: which call (with what it acted on), and its HRESULT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub call: String,
    pub hresult: u32,
}

impl Failure {
    pub fn new(call: impl Into<String>, hresult: u32) -> Failure {
        Failure { call: call.into(), hresult }
    }
}

pub const VSS_CTX_BACKUP: i32 = 0;
pub const VSS_BT_COPY: i32 = 5;

/// VSS_ID / GUID.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct GUID {
    pub data1: u32,
    pub data2: u16,
    pub data3: u16,
    pub data4: [u8; 8],
}

impl GUID {
    /// From a number whose hex digits read as the GUID's text does
    /// (`config::parse_guid`).
    pub fn from_u128(v: u128) -> GUID {
        GUID { data1: (v >> 96) as u32, data2: (v >> 80) as u16, data3: (v >> 64) as u16, data4: (v as u64).to_be_bytes() }
    }
}

impl fmt::Display for GUID {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.data4;
        write!(
            f,
            "{{{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

/// VSS_SNAPSHOT_PROP, field for field as vss.h has it.
#[repr(C)]
pub struct VSS_SNAPSHOT_PROP {
    pub m_SnapshotId: GUID,
    pub m_SnapshotSetId: GUID,
    pub m_lSnapshotsCount: i32,
    pub m_pwszSnapshotDeviceObject: *mut u16,
    pub m_pwszOriginalVolumeName: *mut u16,
    pub m_pwszOriginatingMachine: *mut u16,
    pub m_pwszServiceMachine: *mut u16,
    pub m_pwszExposedName: *mut u16,
    pub m_pwszExposedPath: *mut u16,
    pub m_ProviderId: GUID,
    pub m_lSnapshotAttributes: i32,
    pub m_tsCreationTimestamp: i64,
    pub m_eStatus: i32,
}

/// The fields of VSS_SNAPSHOT_PROP with their byte offsets, for the header check.
#[cfg(test)]
pub fn snapshot_prop_fields() -> Vec<(&'static str, usize)> {
    use std::mem::offset_of;
    macro_rules! f { ($($n:ident),*) => { vec![$((stringify!($n), offset_of!(VSS_SNAPSHOT_PROP, $n))),*] } }
    f!(
        m_SnapshotId,
        m_SnapshotSetId,
        m_lSnapshotsCount,
        m_pwszSnapshotDeviceObject,
        m_pwszOriginalVolumeName,
        m_pwszOriginatingMachine,
        m_pwszServiceMachine,
        m_pwszExposedName,
        m_pwszExposedPath,
        m_ProviderId,
        m_lSnapshotAttributes,
        m_tsCreationTimestamp,
        m_eStatus
    )
}

/// A vtable struct whose fields are named like the C methods, in order, plus
/// the list of (method, slot) that the header check compares.
macro_rules! vtable {
    ($name:ident { $($method:ident : $ty:ty,)* }) => {
        #[repr(C)]
        pub struct $name { $(pub $method: $ty,)* }
        impl $name {
            #[cfg(test)]
            pub fn slots() -> Vec<(&'static str, usize)> {
                vec![$((stringify!($method), std::mem::offset_of!($name, $method) / std::mem::size_of::<usize>()),)*]
            }
        }
    };
}

/// A slot snaprsync never calls: only its place matters.
type Unused = usize;
type This = *mut IVssBackupComponents;
type Async = *mut *mut IVssAsync;

vtable!(IVssBackupComponentsVtbl {
    QueryInterface: Unused,
    AddRef: Unused,
    Release: unsafe extern "system" fn(This) -> u32,
    GetWriterComponentsCount: Unused,
    GetWriterComponents: Unused,
    InitializeForBackup: unsafe extern "system" fn(This, *mut u16) -> HRESULT,
    SetBackupState: unsafe extern "system" fn(This, u8, u8, i32, u8) -> HRESULT,
    InitializeForRestore: Unused,
    SetRestoreState: Unused,
    GatherWriterMetadata: unsafe extern "system" fn(This, Async) -> HRESULT,
    GetWriterMetadataCount: Unused,
    GetWriterMetadata: Unused,
    FreeWriterMetadata: unsafe extern "system" fn(This) -> HRESULT,
    AddComponent: Unused,
    PrepareForBackup: unsafe extern "system" fn(This, Async) -> HRESULT,
    AbortBackup: unsafe extern "system" fn(This) -> HRESULT,
    GatherWriterStatus: unsafe extern "system" fn(This, Async) -> HRESULT,
    GetWriterStatusCount: unsafe extern "system" fn(This, *mut u32) -> HRESULT,
    FreeWriterStatus: unsafe extern "system" fn(This) -> HRESULT,
    GetWriterStatus: unsafe extern "system" fn(This, u32, *mut GUID, *mut GUID, *mut *mut u16, *mut i32, *mut HRESULT) -> HRESULT,
    SetBackupSucceeded: Unused,
    SetBackupOptions: Unused,
    SetSelectedForRestore: Unused,
    SetRestoreOptions: Unused,
    SetAdditionalRestores: Unused,
    SetPreviousBackupStamp: Unused,
    SaveAsXML: Unused,
    BackupComplete: unsafe extern "system" fn(This, Async) -> HRESULT,
    AddAlternativeLocationMapping: Unused,
    AddRestoreSubcomponent: Unused,
    SetFileRestoreStatus: Unused,
    AddNewTarget: Unused,
    SetRangesFilePath: Unused,
    PreRestore: Unused,
    PostRestore: Unused,
    SetContext: unsafe extern "system" fn(This, i32) -> HRESULT,
    StartSnapshotSet: unsafe extern "system" fn(This, *mut GUID) -> HRESULT,
    AddToSnapshotSet: unsafe extern "system" fn(This, *const u16, GUID, *mut GUID) -> HRESULT,
    DoSnapshotSet: unsafe extern "system" fn(This, Async) -> HRESULT,
    DeleteSnapshots: Unused,
    ImportSnapshots: Unused,
    BreakSnapshotSet: Unused,
    GetSnapshotProperties: unsafe extern "system" fn(This, GUID, *mut VSS_SNAPSHOT_PROP) -> HRESULT,
    Query: Unused,
    IsVolumeSupported: unsafe extern "system" fn(This, GUID, *const u16, *mut i32) -> HRESULT,
    DisableWriterClasses: Unused,
    EnableWriterClasses: Unused,
    DisableWriterInstances: Unused,
    ExposeSnapshot: Unused,
    RevertToSnapshot: Unused,
    QueryRevertStatus: Unused,
});

vtable!(IVssAsyncVtbl {
    QueryInterface: Unused,
    AddRef: Unused,
    Release: unsafe extern "system" fn(*mut IVssAsync) -> u32,
    Cancel: unsafe extern "system" fn(*mut IVssAsync) -> HRESULT,
    Wait: Unused,
    QueryStatus: unsafe extern "system" fn(*mut IVssAsync, *mut HRESULT, *mut i32) -> HRESULT,
});

vtable!(IGlobalOptionsVtbl {
    QueryInterface: Unused,
    AddRef: Unused,
    Release: unsafe extern "system" fn(*mut IGlobalOptions) -> u32,
    Set: unsafe extern "system" fn(*mut IGlobalOptions, i32, usize) -> HRESULT,
    Query: Unused,
});

#[repr(C)]
pub struct IGlobalOptions {
    vtbl: *const IGlobalOptionsVtbl,
}

/// IID_IGlobalOptions, {0000015B-0000-0000-C000-000000000046}.
const IID_IGLOBAL_OPTIONS: windows_sys::core::GUID = windows_sys::core::GUID::from_u128(0x0000015b_0000_0000_c000_000000000046);

#[repr(C)]
pub struct IVssBackupComponents {
    vtbl: *const IVssBackupComponentsVtbl,
}

#[repr(C)]
pub struct IVssAsync {
    vtbl: *const IVssAsyncVtbl,
}

type CreateFn = unsafe extern "system" fn(*mut *mut IVssBackupComponents) -> HRESULT;

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn check(what: &str, h: HRESULT) -> Result<(), Failure> {
    if h < 0 {
        Err(Failure::new(what.to_owned(), h as u32))
    } else {
        Ok(())
    }
}

/// How COM's process-wide settings were found by [`init`]: whether
/// snaprsync's own security was set (or another part of the process had set
/// COM's security first: RPC_E_TOO_LATE), and whether COM was told to let
/// exceptions crash the process rather than swallow them.
#[derive(Clone, Debug, PartialEq)]
pub struct Setup {
    pub security_too_late: bool,
    pub exceptions: Result<(), Failure>,
}

/// The process-wide part of [`init`], done once: a second call must not
/// take snaprsync's own earlier security for someone else's.
static SETUP: std::sync::OnceLock<Result<Setup, Failure>> = std::sync::OnceLock::new();

/// COM for this thread, and for the process the security VSS requires
/// (packet privacy, impersonation, static cloaking) and
/// `COMGLB_EXCEPTION_DONOT_HANDLE`, as Microsoft asks of requesters.
/// Idempotent.
pub fn init() -> Result<Setup, Failure> {
    // SAFETY: plain calls with a null reserved pointer; COM reference counts
    // repeated initialisation on the same thread.
    let h = unsafe { CoInitializeEx(std::ptr::null(), COINIT_MULTITHREADED as u32) };
    check("CoInitializeEx", h)?;
    SETUP.get_or_init(|| secure(initialize_security())).clone()
}

/// What `CoInitializeSecurity` answered, for [`secure`].
fn initialize_security() -> HRESULT {
    // SAFETY: all pointer arguments are null (defaults); the rest are constants.
    unsafe {
        CoInitializeSecurity(
            std::ptr::null_mut(),
            -1,
            std::ptr::null(),
            std::ptr::null(),
            RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
            RPC_C_IMP_LEVEL_IMPERSONATE,
            std::ptr::null(),
            EOAC_STATIC_CLOAKING as u32,
            std::ptr::null(),
        )
    }
}

/// The process-wide settings, given what CoInitializeSecurity answered.
fn secure(security: HRESULT) -> Result<Setup, Failure> {
    let security_too_late = security as u32 == hr::RPC_E_TOO_LATE;
    if security < 0 && !security_too_late {
        return Err(Failure::new("CoInitializeSecurity", security as u32));
    }
    if security_too_late {
        log::warn!("{}", TOO_LATE_WARNING);
    }
    let exceptions = exceptions_not_handled();
    if let Err(Failure { call: what, hresult: h }) = &exceptions {
        log::warn!("vss: {what}: HRESULT {h:#010x}: COM may swallow a crash inside a VSS call and go on in a corrupt state");
    }
    Ok(Setup { security_too_late, exceptions })
}

/// The consequence of RPC_E_TOO_LATE, for the log.
pub const TOO_LATE_WARNING: &str = "vss: COM security was already set in this process (CoInitializeSecurity: RPC_E_TOO_LATE), \
     not with the packet privacy and impersonation VSS needs: writers may be unable to call back (Event 8194 in the Application \
     log) and their state in this backup is then unknown; report which program or DLL initialises COM in snaprsync";

/// Tells COM not to catch exceptions raised in calls it dispatches
/// (COMGLB_EXCEPTION_DONOT_HANDLE through IGlobalOptions), so that a crash in
/// a VSS call ends the process, where VSS releases the set, instead of going
/// on in an unknown state.
fn exceptions_not_handled() -> Result<(), Failure> {
    global_options(|opts, vtbl| {
        // SAFETY: a live IGlobalOptions; Set takes (this, GLOBALOPT_PROPERTIES, ULONG_PTR).
        let h = unsafe { (vtbl.Set)(opts, COMGLB_EXCEPTION_HANDLING, COMGLB_EXCEPTION_DONOT_HANDLE as usize) };
        check("IGlobalOptions::Set(COMGLB_EXCEPTION_HANDLING)", h)
    })
}

/// Calls `f` with COM's IGlobalOptions object, released after.
fn global_options<T>(f: impl FnOnce(*mut IGlobalOptions, &IGlobalOptionsVtbl) -> Result<T, Failure>) -> Result<T, Failure> {
    let mut p: *mut c_void = std::ptr::null_mut();
    // SAFETY: COM is initialised on this thread; the class and interface ids
    // are COM's own; `p` is a valid out pointer.
    let h = unsafe { CoCreateInstance(&CLSID_GlobalOptions, std::ptr::null_mut(), CLSCTX_INPROC_SERVER, &IID_IGLOBAL_OPTIONS, &mut p) };
    check("CoCreateInstance(GlobalOptions)", h)?;
    if p.is_null() {
        return Err(Failure::new("CoCreateInstance(GlobalOptions)", hr::E_OUTOFMEMORY));
    }
    let opts = p.cast::<IGlobalOptions>();
    // SAFETY: `opts` is a live IGlobalOptions (asked for by its IID) whose
    // first field is its vtable; the one reference we hold is released once,
    // after `f`, which does not keep it.
    unsafe {
        let vtbl = &*(*opts).vtbl;
        let r = f(opts, vtbl);
        (vtbl.Release)(opts);
        r
    }
}

#[cfg(test)]
pub fn secure_for_test(security: HRESULT) -> Result<Setup, Failure> {
    secure(security)
}

#[cfg(test)]
pub fn global_option_values() -> (i32, i32) {
    (COMGLB_EXCEPTION_HANDLING, COMGLB_EXCEPTION_DONOT_HANDLE)
}

/// True for a 32-bit process on 64-bit Windows.
pub fn is_wow64() -> bool {
    let mut wow = 0;
    // SAFETY: the pseudo handle of this process and a valid out pointer.
    let ok = unsafe { IsWow64Process(GetCurrentProcess(), &mut wow) };
    ok != 0 && wow != 0
}

/// An `IVssBackupComponents` reference, released on drop.
pub struct BackupComponents {
    ptr: *mut IVssBackupComponents,
    lib: HMODULE,
}

/// An `IVssAsync` reference, released on drop.
pub struct AsyncOp {
    ptr: *mut IVssAsync,
}

impl BackupComponents {
    fn vtbl(&self) -> &IVssBackupComponentsVtbl {
        // SAFETY: `ptr` is a live COM object (we hold a reference) whose first
        // field is its vtable pointer.
        unsafe { &*(*self.ptr).vtbl }
    }

    /// CreateVssBackupComponents (the `...Internal` export of vssapi.dll,
    /// loaded from System32 only, so a system without it is reported, not fatal).
    pub fn create() -> Result<BackupComponents, Failure> {
        let name = wide("vssapi.dll");
        // SAFETY: NUL-terminated name, no file handle, a documented flag.
        let lib = unsafe { LoadLibraryExW(name.as_ptr(), std::ptr::null_mut(), LOAD_LIBRARY_SEARCH_SYSTEM32) };
        if lib.is_null() {
            return Err(Failure::new("LoadLibrary(vssapi.dll)", hr::REGDB_E_CLASSNOTREG));
        }
        // SAFETY: `lib` is a loaded module; the name is NUL-terminated ASCII.
        let proc = unsafe { GetProcAddress(lib, c"CreateVssBackupComponentsInternal".as_ptr().cast()) };
        let Some(proc) = proc else {
            // SAFETY: `lib` was loaded above and nothing from it is in use.
            unsafe { FreeLibrary(lib) };
            return Err(Failure::new("CreateVssBackupComponents", hr::E_NOTIMPL));
        };
        // SAFETY: vsbackup.h declares this export as
        // HRESULT STDAPICALLTYPE (IVssBackupComponents **).
        let create: CreateFn = unsafe { std::mem::transmute::<unsafe extern "system" fn() -> isize, CreateFn>(proc) };
        let mut ptr = std::ptr::null_mut();
        // SAFETY: a valid out pointer.
        let h = unsafe { create(&mut ptr) };
        if h < 0 || ptr.is_null() {
            // SAFETY: as above.
            unsafe { FreeLibrary(lib) };
            return Err(Failure::new("CreateVssBackupComponents", if h < 0 { h as u32 } else { hr::E_OUTOFMEMORY }));
        }
        Ok(BackupComponents { ptr, lib })
    }

    pub fn initialize_for_backup(&self) -> Result<(), Failure> {
        // SAFETY: live object; a null BSTR means "no saved document".
        check("InitializeForBackup", unsafe { (self.vtbl().InitializeForBackup)(self.ptr, std::ptr::null_mut()) })
    }

    pub fn set_context(&self, ctx: i32) -> Result<(), Failure> {
        // SAFETY: live object, plain value.
        check("SetContext", unsafe { (self.vtbl().SetContext)(self.ptr, ctx) })
    }

    /// No component selection, no bootable system state, no partial files.
    pub fn set_backup_state(&self, kind: i32) -> Result<(), Failure> {
        // SAFETY: live object, plain values (C `boolean` is one byte).
        check("SetBackupState", unsafe { (self.vtbl().SetBackupState)(self.ptr, 0, 0, kind, 0) })
    }

    fn async_call(&self, what: &str, f: unsafe extern "system" fn(This, Async) -> HRESULT) -> Result<AsyncOp, Failure> {
        let mut a = std::ptr::null_mut();
        // SAFETY: `f` is a slot of this object's vtable taking (this, IVssAsync**).
        let h = unsafe { f(self.ptr, &mut a) };
        check(what, h)?;
        if a.is_null() {
            return Err(Failure::new(what.to_owned(), hr::VSS_E_UNEXPECTED));
        }
        Ok(AsyncOp { ptr: a })
    }

    pub fn gather_writer_metadata(&self) -> Result<AsyncOp, Failure> {
        self.async_call("GatherWriterMetadata", self.vtbl().GatherWriterMetadata)
    }

    /// Frees what GatherWriterMetadata collected; snaprsync selects no
    /// components, so it needs none of it after the gather.
    pub fn free_writer_metadata(&self) -> Result<(), Failure> {
        // SAFETY: a slot of this object's vtable taking only `this`, called
        // after GatherWriterMetadata completed.
        let h = unsafe { (self.vtbl().FreeWriterMetadata)(self.ptr) };
        check("FreeWriterMetadata", h)
    }

    /// Each writer's name, state (`VSS_WRITER_STATE`) and failure HRESULT,
    /// as gathered after the snapshot set was made, and how many writers'
    /// state could not be read.
    #[allow(clippy::type_complexity)]
    pub fn writer_status(&self, deadline: Instant, stop: fn() -> bool) -> Result<(Vec<(String, i32, u32)>, u32), Failure> {
        self.async_call("GatherWriterStatus", self.vtbl().GatherWriterStatus)?.wait(deadline, "GatherWriterStatus", stop)?;
        let mut n = 0u32;
        // SAFETY: a slot taking (this, UINT*); `n` is a valid out pointer.
        let counted = check("GetWriterStatusCount", unsafe { (self.vtbl().GetWriterStatusCount)(self.ptr, &mut n) });
        let mut out = Vec::new();
        let mut unread = 0;
        for i in 0..n {
            let (mut instance, mut writer) = (GUID::default(), GUID::default());
            let mut name: *mut u16 = std::ptr::null_mut();
            let (mut state, mut failure): (i32, HRESULT) = (0, 0);
            // SAFETY: a slot taking (this, index, VSS_ID*, VSS_ID*, BSTR*,
            // VSS_WRITER_STATE*, HRESULT*); every out pointer is valid.
            let h = unsafe { (self.vtbl().GetWriterStatus)(self.ptr, i, &mut instance, &mut writer, &mut name, &mut state, &mut failure) };
            if h < 0 {
                unread += 1;
                continue;
            }
            let text = bstr(name);
            out.push((text, state, failure as u32));
        }
        // SAFETY: a slot taking only `this`, after the status was read.
        unsafe { (self.vtbl().FreeWriterStatus)(self.ptr) };
        counted?;
        Ok((out, unread))
    }

    pub fn prepare_for_backup(&self) -> Result<AsyncOp, Failure> {
        self.async_call("PrepareForBackup", self.vtbl().PrepareForBackup)
    }

    pub fn do_snapshot_set(&self) -> Result<AsyncOp, Failure> {
        self.async_call("DoSnapshotSet", self.vtbl().DoSnapshotSet)
    }

    pub fn backup_complete(&self) -> Result<AsyncOp, Failure> {
        self.async_call("BackupComplete", self.vtbl().BackupComplete)
    }

    /// Best effort: only logs.
    pub fn abort_backup(&self) {
        // SAFETY: live object, no arguments.
        let h = unsafe { (self.vtbl().AbortBackup)(self.ptr) };
        if h < 0 {
            log::warn!("vss: AbortBackup: HRESULT {:#010x}", h as u32);
        }
    }

    /// Whether `provider` (GUID_NULL: any) can shadow `volume`.
    pub fn is_volume_supported(&self, volume: &str, provider: GUID) -> Result<bool, Failure> {
        let w = wide(volume);
        let mut yes = 0;
        // SAFETY: live object, a provider id by value, NUL-terminated name, valid out pointer.
        let h = unsafe { (self.vtbl().IsVolumeSupported)(self.ptr, provider, w.as_ptr(), &mut yes) };
        check(&format!("IsVolumeSupported({volume})"), h)?;
        Ok(yes != 0)
    }

    pub fn start_snapshot_set(&self) -> Result<GUID, Failure> {
        let mut id = GUID::default();
        // SAFETY: live object, valid out pointer.
        check("StartSnapshotSet", unsafe { (self.vtbl().StartSnapshotSet)(self.ptr, &mut id) })?;
        Ok(id)
    }

    /// Adds `volume`, shadowed by `provider` (GUID_NULL: VSS chooses).
    pub fn add_to_snapshot_set(&self, volume: &str, provider: GUID) -> Result<GUID, Failure> {
        let w = wide(volume);
        let mut id = GUID::default();
        // SAFETY: live object, NUL-terminated name, a provider id by value, valid out pointer.
        let h = unsafe { (self.vtbl().AddToSnapshotSet)(self.ptr, w.as_ptr(), provider, &mut id) };
        check(&format!("AddToSnapshotSet({volume})"), h)?;
        Ok(id)
    }

    /// The shadow copy's device object, `\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopyN`.
    pub fn snapshot_device(&self, id: GUID) -> Result<String, Failure> {
        // SAFETY: an all-zero VSS_SNAPSHOT_PROP is valid (null pointers, zero ids).
        let mut prop: VSS_SNAPSHOT_PROP = unsafe { std::mem::zeroed() };
        // SAFETY: live object, valid out pointer; on success VSS fills `prop`
        // with CoTaskMemAlloc'd strings that we free below.
        let h = unsafe { (self.vtbl().GetSnapshotProperties)(self.ptr, id, &mut prop) };
        check("GetSnapshotProperties", h)?;
        let device = take_wstr(prop.m_pwszSnapshotDeviceObject);
        for p in [
            prop.m_pwszOriginalVolumeName,
            prop.m_pwszOriginatingMachine,
            prop.m_pwszServiceMachine,
            prop.m_pwszExposedName,
            prop.m_pwszExposedPath,
        ] {
            // SAFETY: each is null or a CoTaskMemAlloc'd string owned by us now
            // (what VssFreeSnapshotProperties does).
            unsafe { CoTaskMemFree(p as *const c_void) };
        }
        device.filter(|d| !d.is_empty()).ok_or_else(|| Failure::new("GetSnapshotProperties: no device object", hr::VSS_E_UNEXPECTED))
    }
}

/// Copies and frees a BSTR (a writer's name).
fn bstr(p: *mut u16) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: a BSTR is NUL-terminated; we read up to the NUL.
    let s = unsafe {
        let mut n = 0;
        while *p.add(n) != 0 {
            n += 1;
        }
        String::from_utf16_lossy(std::slice::from_raw_parts(p, n))
    };
    // SAFETY: a BSTR VSS allocated for us, freed once.
    unsafe { windows_sys::Win32::Foundation::SysFreeString(p) };
    s
}

/// Copies and frees a CoTaskMemAlloc'd wide string.
fn take_wstr(p: *mut u16) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` is a NUL-terminated string from VSS; we read up to the NUL.
    let s = unsafe {
        let mut n = 0;
        while *p.add(n) != 0 {
            n += 1;
        }
        String::from_utf16_lossy(std::slice::from_raw_parts(p, n))
    };
    // SAFETY: allocated by VSS with CoTaskMemAlloc, not used after this.
    unsafe { CoTaskMemFree(p as *const c_void) };
    Some(s)
}

impl Drop for BackupComponents {
    fn drop(&mut self) {
        // SAFETY: we own one reference; after Release the pointer is not used.
        // The library stays loaded for the process (objects may still run code from it).
        unsafe { (self.vtbl().Release)(self.ptr) };
        let _ = self.lib;
    }
}

impl AsyncOp {
    fn vtbl(&self) -> &IVssAsyncVtbl {
        // SAFETY: live COM object we hold a reference to.
        unsafe { &*(*self.ptr).vtbl }
    }

    /// Polls until the operation ends, `deadline` passes or `stop()` says so;
    /// the last two cancel it and wait (a few seconds at most) for the
    /// cancel to land, so that the next step does not race a live one.
    pub fn wait(self, deadline: Instant, what: &str, stop: fn() -> bool) -> Result<(), Failure> {
        let mut pause = Duration::from_millis(50);
        loop {
            let status = self.status(what)?;
            match status {
                hr::VSS_S_ASYNC_PENDING => {}
                hr::VSS_S_ASYNC_FINISHED => return Ok(()),
                // Cancelled, but not by this wait: VSS or another program did.
                hr::VSS_S_ASYNC_CANCELLED => return Err(Failure::new(format!("{what} (cancelled)"), hr::VSS_S_ASYNC_CANCELLED)),
                s if (s as i32) < 0 => return Err(Failure::new(what.to_owned(), s)),
                _ => return Ok(()),
            }
            let stopping = stop();
            if stopping || Instant::now() >= deadline {
                // SAFETY: live object; cancelling a pending operation is allowed.
                unsafe { (self.vtbl().Cancel)(self.ptr) };
                // Within the ~4.5 s a close event leaves the process.
                let landed = Instant::now() + Duration::from_secs(2);
                while Instant::now() < landed && self.status(what).is_ok_and(|s| s == hr::VSS_S_ASYNC_PENDING) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let code = if stopping { hr::VSS_S_ASYNC_CANCELLED } else { hr::TIMEOUT };
                return Err(Failure::new(what.to_owned(), code));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    fn status(&self, what: &str) -> Result<u32, Failure> {
        let mut status: HRESULT = 0;
        // SAFETY: live object, valid out pointer, null reserved pointer.
        let h = unsafe { (self.vtbl().QueryStatus)(self.ptr, &mut status, std::ptr::null_mut()) };
        check(what, h)?;
        Ok(status as u32)
    }
}

impl Drop for AsyncOp {
    fn drop(&mut self) {
        // SAFETY: we own one reference; not used after.
        unsafe { (self.vtbl().Release)(self.ptr) };
    }
}

#[cfg(test)]
mod tests {
    //! `AsyncOp::wait` against a TEST DOUBLE of `IVssAsync` (a vtable of Rust
    //! functions answering QueryStatus from a script), since wine has no VSS.
    use super::*;
    use std::cell::Cell;

    #[repr(C)]
    struct FakeAsync {
        vtbl: *const IVssAsyncVtbl,
        /// What QueryStatus answers, in turn; the last one for ever.
        script: Vec<u32>,
        next: Cell<usize>,
        cancelled: Cell<bool>,
    }

    unsafe extern "system" fn release(_: *mut IVssAsync) -> u32 {
        0
    }

    unsafe extern "system" fn cancel(p: *mut IVssAsync) -> HRESULT {
        // SAFETY: `p` is the FakeAsync the test made, alive for the call.
        unsafe { (*p.cast::<FakeAsync>()).cancelled.set(true) };
        0
    }

    unsafe extern "system" fn query_status(p: *mut IVssAsync, status: *mut HRESULT, _: *mut i32) -> HRESULT {
        // SAFETY: `p` is the FakeAsync the test made; `status` a valid out pointer.
        unsafe {
            let f = &*p.cast::<FakeAsync>();
            let i = f.next.get();
            f.next.set(i + 1);
            // A cancel lands at once.
            let s = if f.cancelled.get() { hr::VSS_S_ASYNC_CANCELLED } else { f.script[i.min(f.script.len() - 1)] };
            *status = s as HRESULT;
        }
        0
    }

    static VTBL: IVssAsyncVtbl =
        IVssAsyncVtbl { QueryInterface: 0, AddRef: 0, Release: release, Cancel: cancel, Wait: 0, QueryStatus: query_status };

    /// Waits on a fake whose statuses are `script`; (result, whether it was cancelled by the wait).
    fn wait_on(script: &[u32], deadline: Instant, stop: fn() -> bool) -> (Result<(), Failure>, bool) {
        let fake = Box::new(FakeAsync { vtbl: &VTBL, script: script.to_vec(), next: Cell::new(0), cancelled: Cell::new(false) });
        let ptr = Box::into_raw(fake);
        let r = AsyncOp { ptr: ptr.cast() }.wait(deadline, "DoSnapshotSet", stop);
        // SAFETY: made by Box::into_raw above; the AsyncOp that used it is gone.
        let fake = unsafe { Box::from_raw(ptr) };
        (r, fake.cancelled.get())
    }

    #[test]
    fn a_cancel_by_someone_else_is_a_cancel_not_a_timeout() {
        let later = Instant::now() + Duration::from_secs(30);
        let (r, we_cancelled) = wait_on(&[hr::VSS_S_ASYNC_PENDING, hr::VSS_S_ASYNC_CANCELLED], later, || false);
        assert_eq!(r, Err(Failure::new("DoSnapshotSet (cancelled)", hr::VSS_S_ASYNC_CANCELLED)));
        assert!(!we_cancelled);
        // snaprsync's own deadline: a timeout, after cancelling the operation.
        let (r, we_cancelled) = wait_on(&[hr::VSS_S_ASYNC_PENDING], Instant::now(), || false);
        assert_eq!(r, Err(Failure::new("DoSnapshotSet", hr::TIMEOUT)));
        assert!(we_cancelled);
        // A console event: a cancel of ours.
        let (r, we_cancelled) = wait_on(&[hr::VSS_S_ASYNC_PENDING], later, || true);
        assert_eq!(r, Err(Failure::new("DoSnapshotSet", hr::VSS_S_ASYNC_CANCELLED)));
        assert!(we_cancelled);
        assert_eq!(wait_on(&[hr::VSS_S_ASYNC_PENDING, hr::VSS_S_ASYNC_FINISHED], later, || false).0, Ok(()));
        assert_eq!(wait_on(&[hr::VSS_E_UNEXPECTED], later, || false).0, Err(Failure::new("DoSnapshotSet", hr::VSS_E_UNEXPECTED)));
    }
}
