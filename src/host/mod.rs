//! The host: where snaprsync keeps its files, and who is running. The lowest
//! platform layer, chosen per OS here; the journal and the config read it, and
//! nothing in it reaches up. If one OS lacks a function, the build fails.

#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod imp;

#[cfg(windows)]
#[path = "windows.rs"]
mod imp;

/// The config file read when `--snap-config` is not given.
pub use imp::default_config_path;

/// Where run records live when `state_dir` is not set.
pub use imp::default_state_dir;

/// The root directory, where detached helpers run (so they keep no
/// filesystem busy).
pub use imp::root_dir;

/// Detaches a helper process from the session that started snaprsync, so
/// that it outlives the backup connection.
pub use imp::detach;

/// The file name of the real rsync to look for on PATH (`rsync`, `rsync.exe`).
pub use imp::rsync_file_name;

/// When process `pid` started, as the OS counts it; `None` if no such process
/// (or, on Linux, a zombie: it cannot clean up).
pub use imp::process_start;

/// When process `pid` started, by the wall clock; `None` if no such process.
pub use imp::process_started_at;

/// Identifies the current boot of the machine.
pub use imp::boot_id;

/// The journal's native socket, where the platform has one.
pub use imp::journald_socket;

/// The local syslog socket, where the platform has one.
pub use imp::syslog_socket;

/// Sends one datagram to a local socket (a system log).
pub use imp::send_datagram;

/// Whether the platform has Windows' event log.
pub use imp::HAS_EVENT_LOG;

/// Writes one record (type, ID, text) to the Application event log.
pub use imp::report_event;
