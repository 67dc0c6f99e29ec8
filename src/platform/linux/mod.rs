//! Linux: mountinfo picks the provider (`choose`); a private mount namespace
//! shows rsync the snapshot under the original names (`plan`, `ns`,
//! `expose`), or in restricted mode a root of its own (`child`); one loop
//! waits for rsync, passing signals on and watching the connection
//! (`supervise`); the `--protect-args` block is handed on through stdin (`feed`);
//! hooks run with a time limit in a process group of their own (`bounded`);
//! `snaprsync doctor` reads privileges, filesystems and free space (`diagnose`).

mod bounded;
pub mod child;
mod choose;
mod diagnose;
mod expose;
mod feed;
mod jail;
mod ns;
mod plan;
mod supervise;

pub use supervise::lower_thread_priority;

/// The real Linux system (see `platform::System`).
pub struct Platform;
