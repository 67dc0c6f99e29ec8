//! The torture writer and the point-in-time checker.
//!
//! The writer rewrites an ordered series of files `f0000`, `f0001`, … in that
//! order, generation after generation; each file holds its generation number,
//! its own name, its size and deterministic padding. Like an application that
//! wants its files whole in a crash image, it writes a generation's files to
//! temp names (`.tmp.fNNNN`), syncs the filesystem once, then renames them
//! into place in order. At any instant the directory therefore holds
//! generation g+1 in a prefix of the series and g in the rest.
//!
//! The checker reads a copy and reports it consistent only if it could be such
//! an instant: every file whole, and generations non-increasing along the
//! series, spanning at most two adjacent generations. A copy made while the
//! writer runs that reads the files one by one (plain rsync) sees later files
//! at later generations and fails.
//!
//! `testbed torture write|check` runs them from the command line (the demo).

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Number of files in the series.
    pub files: usize,
    /// Size of each file in bytes (at least the header).
    pub size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { files: 200, size: 64 * 1024 }
    }
}

pub fn file_name(index: usize) -> String {
    format!("f{index:04}")
}

fn header(gen: u64, index: usize, size: usize) -> String {
    format!("torture gen={gen:012} file={} size={size:010}\n", file_name(index))
}

/// The exact bytes of file `index` at generation `gen`.
pub fn contents(gen: u64, index: usize, size: usize) -> Vec<u8> {
    let mut data = header(gen, index, size).into_bytes();
    let trailer = format!("\nend gen={gen:012}\n");
    let pad = size.saturating_sub(data.len() + trailer.len());
    // The alphabet rotated by a per-(generation, file) seed, repeated.
    let seed = gen.wrapping_mul(31).wrapping_add(index as u64 * 7) % 26;
    let cycle: Vec<u8> = (0..26u64).map(|i| b'a' + ((seed + i) % 26) as u8).collect();
    let mut padding = cycle.repeat(pad / 26 + 1);
    padding.truncate(pad);
    data.extend_from_slice(&padding);
    data.extend_from_slice(trailer.as_bytes());
    data
}

/// Writes one whole generation: temp files, one filesystem sync, renames in order.
pub fn write_generation(dir: &Path, gen: u64, cfg: Config) -> io::Result<()> {
    let mut temps = Vec::with_capacity(cfg.files);
    for index in 0..cfg.files {
        let tmp = dir.join(format!(".tmp.{}", file_name(index)));
        fs::write(&tmp, contents(gen, index, cfg.size))?;
        temps.push(tmp);
    }
    sync_filesystem(dir)?;
    for (index, tmp) in temps.iter().enumerate() {
        fs::rename(tmp, dir.join(file_name(index)))?;
    }
    Ok(())
}

#[cfg(unix)]
fn sync_filesystem(dir: &Path) -> io::Result<()> {
    let d = fs::File::open(dir)?;
    rustix::fs::syncfs(&d).map_err(io::Error::from)
}

#[cfg(not(unix))]
fn sync_filesystem(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".tmp.")) {
            fs::OpenOptions::new().write(true).open(&path)?.sync_all()?;
        }
    }
    Ok(())
}

/// A writer running in a background thread.
pub struct Writer {
    stop: Arc<AtomicBool>,
    generation: Arc<AtomicU64>,
    handle: Option<JoinHandle<io::Result<u64>>>,
}

impl Writer {
    /// Writes generation 0 synchronously (so the series exists), then keeps
    /// writing generations 1, 2, … in a thread until stopped.
    pub fn start(dir: &Path, cfg: Config) -> io::Result<Writer> {
        fs::create_dir_all(dir)?;
        write_generation(dir, 0, cfg)?;
        let stop = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let dir: PathBuf = dir.to_owned();
        let handle = {
            let stop = stop.clone();
            let generation = generation.clone();
            std::thread::spawn(move || {
                let mut gen = 0;
                while !stop.load(Ordering::SeqCst) {
                    gen += 1;
                    write_generation(&dir, gen, cfg)?;
                    generation.store(gen, Ordering::SeqCst);
                }
                Ok(gen)
            })
        };
        Ok(Writer { stop, generation, handle: Some(handle) })
    }

    /// The last generation completely renamed into place.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Waits until generation `gen` is in place; panics after 30 s (a stuck writer).
    pub fn wait_for(&self, gen: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.generation() < gen {
            assert!(Instant::now() < deadline, "torture writer stuck at generation {}", self.generation());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops after the generation in progress; returns the last one written.
    pub fn stop(mut self) -> io::Result<u64> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.take().expect("joined once").join().unwrap_or_else(|_| Err(io::Error::other("writer thread panicked")))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Runs the writer for `duration`; returns the last generation written.
pub fn write_for(dir: &Path, cfg: Config, duration: Duration) -> io::Result<u64> {
    let writer = Writer::start(dir, cfg)?;
    let end = Instant::now() + duration;
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    writer.stop()
}

/// What the checker found in a copy.
#[derive(Debug, Default)]
pub struct Verdict {
    pub files: usize,
    /// Generation of each file in series order; `None` where the file is torn or missing.
    pub generations: Vec<Option<u64>>,
    pub problems: Vec<String>,
}

impl Verdict {
    pub fn consistent(&self) -> bool {
        self.problems.is_empty() && self.files > 0
    }

    pub fn min_gen(&self) -> Option<u64> {
        self.generations.iter().flatten().min().copied()
    }

    pub fn max_gen(&self) -> Option<u64> {
        self.generations.iter().flatten().max().copied()
    }
}

impl fmt::Display for Verdict {
    /// One line: the verdict, then the first problems.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let span = match (self.min_gen(), self.max_gen()) {
            (Some(a), Some(b)) => format!("generations {a}..={b}"),
            _ => "no readable generation".to_owned(),
        };
        if self.consistent() {
            write!(f, "consistent: {} files, {span}", self.files)
        } else if self.files == 0 {
            write!(f, "torn: no torture files found")
        } else {
            let shown: Vec<&str> = self.problems.iter().take(3).map(String::as_str).collect();
            let more = self.problems.len().saturating_sub(shown.len());
            write!(f, "torn: {} files, {span}, {} problems: {}", self.files, self.problems.len(), shown.join("; "))?;
            if more > 0 {
                write!(f, "; and {more} more")?;
            }
            Ok(())
        }
    }
}

/// Reads a copy of the series in `dir`. Names starting with `.` (the
/// writer's temp files) are ignored; any other file must belong to the series.
pub fn check(dir: &Path) -> io::Result<Verdict> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    let mut v = Verdict { files: names.len(), ..Verdict::default() };
    for (index, name) in names.iter().enumerate() {
        if *name != file_name(index) {
            v.problems.push(format!("expected {} at position {index}, found {name} (a file is missing or foreign)", file_name(index)));
            return Ok(v);
        }
    }
    for (index, name) in names.iter().enumerate() {
        let data = fs::read(dir.join(name))?;
        match parse(&data, index) {
            Ok(gen) => v.generations.push(Some(gen)),
            Err(why) => {
                v.problems.push(format!("{name} torn: {why}"));
                v.generations.push(None);
            }
        }
    }
    // Walk the series: a later-written file may never hold a later generation.
    let mut prev: Option<(usize, u64)> = None;
    for (index, gen) in v.generations.iter().enumerate() {
        let Some(gen) = *gen else { continue };
        if let Some((pi, pg)) = prev {
            if gen > pg {
                v.problems.push(format!(
                    "{} holds generation {gen} but earlier-written {} holds {pg}: not a single point in time",
                    file_name(index),
                    file_name(pi)
                ));
            }
        }
        prev = Some((index, gen));
    }
    if let (Some(lo), Some(hi)) = (v.min_gen(), v.max_gen()) {
        if hi - lo > 1 {
            v.problems.push(format!("copy spans generations {lo}..={hi}; one instant holds at most two adjacent ones"));
        }
    }
    Ok(v)
}

/// The generation of a whole file, or why it is not whole.
fn parse(data: &[u8], index: usize) -> Result<u64, String> {
    if data.is_empty() {
        return Err("empty".into());
    }
    let line_end = data.iter().position(|&b| b == b'\n').ok_or("no header line")?;
    let line = std::str::from_utf8(&data[..line_end]).map_err(|_| "header is not text")?;
    let mut gen = None;
    let mut size = None;
    for field in line.split(' ').skip(1) {
        if let Some(g) = field.strip_prefix("gen=") {
            gen = g.parse::<u64>().ok();
        } else if let Some(s) = field.strip_prefix("size=") {
            size = s.parse::<usize>().ok();
        }
    }
    let (Some(gen), Some(size)) = (gen, size) else {
        return Err(format!("garbled header {line:?}"));
    };
    if data.len() != size {
        return Err(format!("{} bytes, header says {size}", data.len()));
    }
    if data != contents(gen, index, size).as_slice() {
        return Err(format!("contents differ from generation {gen}"));
    }
    Ok(gen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_generation_is_consistent_and_a_mix_is_not() {
        let dir = std::env::temp_dir().join(format!("torture-selftest-{}", std::process::id()));
        let cfg = Config { files: 10, size: 300 };
        fs::create_dir_all(&dir).unwrap();
        write_generation(&dir, 4, cfg).unwrap();
        assert!(check(&dir).unwrap().consistent());
        // A prefix at the next generation is still one instant.
        fs::write(dir.join(file_name(0)), contents(5, 0, cfg.size)).unwrap();
        assert!(check(&dir).unwrap().consistent());
        // A later file ahead of an earlier one is not.
        fs::write(dir.join(file_name(7)), contents(6, 7, cfg.size)).unwrap();
        assert!(!check(&dir).unwrap().consistent());
        fs::write(dir.join(file_name(7)), contents(4, 7, cfg.size)).unwrap();
        // A short file is torn.
        fs::write(dir.join(file_name(3)), &contents(4, 3, cfg.size)[..100]).unwrap();
        let v = check(&dir).unwrap();
        assert!(!v.consistent() && v.to_string().contains("f0003 torn"), "{v}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
