//! Metadata prefetch of a fresh snapshot, while rsync walks it.
//!
//! The first look at each inode of a new btrfs snapshot is what makes a
//! nightly incremental slow: the metadata blocks are shared and cached, but
//! every inode and dentry of the new subvolume is built anew on first touch.
//! rsync's walk is one thread. Threads of snaprsync's own, at the lowest
//! priority, touch the same inodes (one `stat` each) so that rsync finds them
//! built. They start with rsync, take no more than a fixed amount of memory,
//! and stop as soon as rsync ends: [`Prefetch`] is stopped on drop. A thread
//! still stuck in one look after [`JOIN_WAIT`] (a hung disk) is left to end
//! with the process rather than hold up the snapshot's removal.
//!
//! They walk in rsync's order (depth first, names sorted), several at once,
//! so that they stay ahead of rsync's one walk. Measured on a 2-core machine
//! (BENCHMARKS.md), that beat both one thread and a walk from the far end of
//! the tree, which rsync was meant to meet in the middle.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// How many directories may wait to be walked; beyond that a thread walks a
/// directory's subdirectories itself, depth first, so memory stays bounded.
const MAX_QUEUED: usize = 4096;
/// Each thread's stack: a walk holds one directory's names at a time, on the heap.
const STACK: usize = 64 * 1024;
/// How long stopping waits for a thread to notice.
const JOIN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What the threads share.
struct Shared {
    /// Directories still to walk: a stack, the next in rsync's order on top.
    queue: Mutex<Work>,
    wake: Condvar,
    stop: AtomicBool,
    entries: AtomicU64,
}

struct Work {
    dirs: VecDeque<PathBuf>,
    /// Threads walking a directory now (the walk is over when none is and the queue is empty).
    busy: usize,
}

/// Running prefetch threads; dropping it stops and joins them.
pub struct Prefetch {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    started: Instant,
}

/// How many threads `prefetch_threads = 0` means: one per core snaprsync may
/// run on, and one more, so that one is ready while another waits on a lock
/// or a read (measured: BENCHMARKS.md). At the lowest priority they take only
/// what rsync leaves idle.
pub fn auto_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get) + 1
}

impl Prefetch {
    /// Starts `threads` threads walking `roots` (directories; others are
    /// skipped). `None` when there is nothing to walk.
    pub fn start(roots: Vec<PathBuf>, threads: usize, lower_priority: fn()) -> Option<Prefetch> {
        let dirs: VecDeque<PathBuf> = roots.into_iter().filter(|r| r.is_dir()).collect();
        if dirs.is_empty() || threads == 0 {
            return None;
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Work { dirs, busy: 0 }),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            entries: AtomicU64::new(0),
        });
        let mut handles = Vec::new();
        for i in 0..threads {
            let s = Arc::clone(&shared);
            let spawned = std::thread::Builder::new().name(format!("prefetch-{i}")).stack_size(STACK).spawn(move || {
                lower_priority();
                worker(&s);
            });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => log::debug!("prefetch: thread {i} not started: {e}"),
            }
        }
        (!handles.is_empty()).then(|| Prefetch { shared, threads: handles, started: Instant::now() })
    }

    /// Inodes looked at so far.
    pub fn entries(&self) -> u64 {
        self.shared.entries.load(Ordering::Relaxed)
    }

    /// Stops and joins the threads; the inodes they looked at.
    pub fn stop(self) -> u64 {
        let shared = Arc::clone(&self.shared);
        drop(self);
        shared.entries.load(Ordering::Relaxed)
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_all();
        let deadline = Instant::now() + JOIN_WAIT;
        while self.threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let (done, stuck): (Vec<_>, Vec<_>) = self.threads.drain(..).partition(JoinHandle::is_finished);
        for t in done {
            let _ = t.join();
        }
        if !stuck.is_empty() {
            log::warn!("prefetch: {} thread(s) still in one look after {} s; left to end with snaprsync", stuck.len(), JOIN_WAIT.as_secs());
        }
        log::debug!("prefetch: {} inodes in {} ms, stopped", self.entries(), self.started.elapsed().as_millis());
    }
}

fn worker(s: &Shared) {
    loop {
        let dir = {
            let mut w = s.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if s.stop.load(Ordering::Relaxed) {
                    return;
                }
                if let Some(d) = w.dirs.pop_back() {
                    w.busy += 1;
                    break d;
                }
                if w.busy == 0 {
                    // All walked: wake the others to end too.
                    s.wake.notify_all();
                    return;
                }
                w = s.wake.wait(w).unwrap_or_else(|e| e.into_inner());
            }
        };
        walk(s, dir);
        let mut w = s.queue.lock().unwrap_or_else(|e| e.into_inner());
        w.busy -= 1;
        s.wake.notify_all();
    }
}

/// Looks at every entry of `dir` (and, when the stack is full, of its
/// subdirectories); subdirectories go on the stack, first name on top.
fn walk(s: &Shared, dir: PathBuf) {
    let mut own = vec![dir];
    while let Some(dir) = own.pop() {
        let Ok(read) = std::fs::read_dir(&dir) else { continue };
        let mut subdirs = Vec::new();
        for entry in read.flatten() {
            if s.stop.load(Ordering::Relaxed) {
                return;
            }
            // fstatat on the directory: builds the inode and its dentry.
            if let Ok(meta) = entry.metadata() {
                s.entries.fetch_add(1, Ordering::Relaxed);
                if meta.is_dir() {
                    subdirs.push(entry.path());
                }
            }
        }
        // rsync walks names in sorted order: the first is taken first.
        subdirs.sort_by(|a, b| b.cmp(a));
        let mut w = s.queue.lock().unwrap_or_else(|e| e.into_inner());
        if w.dirs.len() + subdirs.len() <= MAX_QUEUED {
            w.dirs.extend(subdirs);
            s.wake.notify_all();
        } else {
            drop(w);
            own.extend(subdirs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &std::path::Path, dirs: usize, files: usize) {
        for d in 0..dirs {
            let sub = root.join(format!("d{d:03}")).join("inner");
            std::fs::create_dir_all(&sub).unwrap();
            for f in 0..files {
                std::fs::write(sub.join(format!("f{f}")), b"x").unwrap();
            }
        }
    }

    #[test]
    fn walks_every_inode_once_and_ends_by_itself() {
        let t = tempfile::tempdir().unwrap();
        tree(t.path(), 30, 5);
        for threads in [1, 2, 4] {
            let p = Prefetch::start(vec![t.path().to_owned()], threads, || {}).unwrap();
            let deadline = Instant::now() + std::time::Duration::from_secs(20);
            while p.threads.iter().any(|h| !h.is_finished()) {
                assert!(Instant::now() < deadline, "the walk did not end");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            // d*, d*/inner and the files.
            assert_eq!(p.entries(), 30 * (2 + 5), "{threads} threads");
        }
    }

    #[test]
    fn stop_ends_a_walk_before_it_is_done() {
        let t = tempfile::tempdir().unwrap();
        tree(t.path(), 300, 40);
        let total = 300 * (2 + 40);
        for _ in 0..20 {
            let p = Prefetch::start(vec![t.path().to_owned()], 2, || {}).unwrap();
            let started = Instant::now();
            let seen = p.stop();
            assert!(started.elapsed() < std::time::Duration::from_secs(2), "stopping took {:?}", started.elapsed());
            assert!(seen < total, "the whole walk ran before the stop: {seen}");
        }
    }

    #[test]
    fn nothing_to_walk_starts_nothing() {
        assert!(Prefetch::start(vec![PathBuf::from("/nonexistent/x")], 2, || {}).is_none());
        let t = tempfile::tempdir().unwrap();
        assert!(Prefetch::start(vec![t.path().to_owned()], 0, || {}).is_none());
    }
}
