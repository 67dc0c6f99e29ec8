//! Confinement on the filesystem: a path, resolved with `..` and symlinks,
//! must lie in an allowed directory, reached without passing through
//! `/proc`, `/sys` or `/dev`.

use std::ffi::OsStr;
#[cfg(unix)]
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use super::paths::{magic_dir, magic_why};
use super::Refusal;

/// [`native`], refused if the result lies under `/proc`, `/sys` or `/dev`
/// (a relative `arg` taken from a `base` there).
pub(super) fn located(arg: &OsStr, base: &Path) -> Result<PathBuf, Refusal> {
    let path = native(arg, base)?;
    match magic_dir(path.as_os_str().as_encoded_bytes()) {
        Some(m) => Err(Refusal::new(arg.as_encoded_bytes(), format!("read from {}: {}", base.display(), magic_why(m)))),
        None => Ok(path),
    }
}

/// The native path `arg` names, relative paths taken from `base`.
#[cfg(unix)]
fn native(arg: &OsStr, base: &Path) -> Result<PathBuf, Refusal> {
    Ok(base.join(arg))
}

/// The native path `arg` names, relative paths taken from `base`; the POSIX
/// forms of the Windows rsync ports (`/cygdrive/c/x`, `/c/x`) as drive paths.
#[cfg(windows)]
fn native(arg: &OsStr, base: &Path) -> Result<PathBuf, Refusal> {
    use crate::platform::{Platform, Volumes};
    let Some(s) = arg.to_str() else {
        return Err(Refusal::new(arg.as_encoded_bytes(), "not UTF-8"));
    };
    if Path::new(s).is_absolute() {
        return Ok(PathBuf::from(s));
    }
    if s.starts_with('/') || s.starts_with('\\') {
        return Platform.source_path(arg).ok_or_else(|| Refusal::new(s, "not a path on a drive of this machine"));
    }
    Ok(base.join(s.replace('/', "\\")))
}

/// Requires `path`, resolved with `..` and symlinks, to lie within one of
/// `roots` (taken as they are on Linux: see [`root_path`]). A relative `path` is taken from the working
/// directory. A path that does not exist is resolved by its longest existing
/// ancestor; the missing rest must not hold `..`. An existing part that cannot
/// be resolved (a dangling symlink, a loop, no permission) is refused.
pub fn confine(path: &Path, roots: &[PathBuf]) -> Result<(), Refusal> {
    let arg = path.as_os_str().as_encoded_bytes();
    if roots.is_empty() {
        return Err(Refusal::new(arg, "no directory is allowed for this (--snap-allow / --snap-allow-write)"));
    }
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| Refusal::new(arg, format!("cannot tell the working directory: {e}")))?.join(path)
    };
    #[cfg(unix)]
    if let Some((link, m)) = magic_on_the_way(&full) {
        let why = match link {
            Some(link) => format!("the symlink {} leads {}", link.display(), magic_why(m)),
            None => magic_why(m),
        };
        return Err(Refusal::new(arg, why));
    }
    let real = resolve(&full).map_err(|why| Refusal::new(arg, why))?;
    let mut resolved_roots = Vec::new();
    for r in roots.iter().filter_map(|r| root_path(r)) {
        if real.starts_with(&r) {
            return Ok(());
        }
        resolved_roots.push(r.display().to_string());
    }
    if resolved_roots.is_empty() {
        return Err(Refusal::new(arg, "none of the allowed directories exists"));
    }
    Err(Refusal::new(arg, format!("resolves to {}, outside the allowed directories ({})", real.display(), resolved_roots.join(", "))))
}

/// An allowed directory as [`confine`] compares with it. On Linux it is a
/// path [`crate::pin`] walked (or one inside a snapshot snaprsync made), with
/// no symlink in it: it is never resolved again, so nothing changed on the
/// filesystem since can redirect it. Elsewhere it is resolved here.
fn root_path(root: &Path) -> Option<PathBuf> {
    if cfg!(unix) {
        Some(root.to_path_buf())
    } else {
        root.canonicalize().ok()
    }
}

/// Whether resolving `full` (absolute), following each symlink the way the
/// kernel does, passes under `/proc`, `/sys` or `/dev`: which of the three,
/// and the last symlink followed on the way there. `canonicalize` cannot tell:
/// it reads `/proc/1/root` as `/`, while opening through it reaches another
/// view of the filesystem. A loop or a missing part ends the walk ([`resolve`]
/// reports it).
#[cfg(unix)]
fn magic_on_the_way(full: &Path) -> Option<(Option<PathBuf>, &'static str)> {
    // Components still to walk, the next one last.
    let mut todo: Vec<OsString> = Vec::new();
    let push = |todo: &mut Vec<OsString>, p: &Path| {
        for c in p.components().rev() {
            match c {
                Component::Normal(n) => todo.push(n.to_owned()),
                Component::ParentDir => todo.push("..".into()),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
    };
    push(&mut todo, full);
    let mut at = PathBuf::from("/");
    let mut links = 0;
    let mut via = None;
    while let Some(c) = todo.pop() {
        if c == ".." {
            // `at` holds no symlink, so its parent is the real one.
            at.pop();
            continue;
        }
        at.push(&c);
        if let Some(m) = magic_dir(at.as_os_str().as_encoded_bytes()) {
            return Some((via, m));
        }
        let meta = at.symlink_metadata().ok()?;
        if meta.file_type().is_symlink() {
            links += 1;
            let target = std::fs::read_link(&at).ok().filter(|_| links <= 40)?;
            via = Some(at.clone());
            at.pop();
            if target.is_absolute() {
                at = PathBuf::from("/");
            }
            push(&mut todo, &target);
        }
    }
    None
}

/// `full` (absolute) with every existing part resolved by the filesystem.
fn resolve(full: &Path) -> Result<PathBuf, String> {
    let mut missing: Vec<Component> = Vec::new();
    let mut cur = full;
    loop {
        if cur.symlink_metadata().is_ok() {
            let mut out = cur.canonicalize().map_err(|e| format!("cannot resolve {}: {e}", cur.display()))?;
            for c in missing.iter().rev() {
                match c {
                    Component::Normal(n) => out.push(n),
                    Component::CurDir => {}
                    _ => return Err(format!("`..` after {}, which does not exist", out.display())),
                }
            }
            return Ok(out);
        }
        match (cur.parent(), cur.components().next_back()) {
            (Some(parent), Some(last)) => {
                missing.push(last);
                cur = parent;
            }
            _ => return Err("no part of it exists".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(unix)]
    use crate::restrict::test_support::*;
    use crate::restrict::{check, Policy};
    use crate::rsync_args::parse;
    use std::ffi::OsString;

    #[cfg(unix)]
    #[test]
    fn confine_resolves_dots_and_symlinks() {
        let w = World::new();
        let roots = w.policy().allow;
        for ok in [
            "allowed",
            "allowed/",
            "allowed/.",
            "allowed/sub/file",
            "allowed/sub/../sub/file",
            "allowed/link-in/file",
            "allowed/new",
            "allowed/new/deeper/",
            "allowed/sub/./new",
        ] {
            confine(Path::new(&w.p(ok)), &roots).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "allowed/..",
            "allowed/../outside/secret",
            "allowed/sub/../../outside",
            "allowed/link-out",
            "allowed/link-out/",
            "allowed/link-out/secret",
            "allowed/sub/rel-out",
            "allowed/dangling",
            "allowed/loop",
            "allowed/new/../../outside",
            "allowed-evil",
            "allowed-evil/x",
            "outside",
            "",
            "allowed/../outside\nx",
            "allowed/link-out/\r",
        ] {
            let r = confine(Path::new(&w.p(bad)), &roots).unwrap_err();
            assert!(!r.to_string().contains('\n'), "{bad}: {r}");
        }
        assert!(confine(Path::new("/"), &roots).is_err());
        assert!(confine(Path::new(&w.p("allowed")), &[]).is_err());
        assert!(confine(Path::new(&w.p("allowed")), &[w.dir.path().join("missing-root")]).unwrap_err().why.contains("outside"));
        // A root is taken as `crate::pin` walked it, never resolved again: a
        // name through a symlink covers nothing of where it leads.
        std::os::unix::fs::symlink(w.dir.path().join("allowed"), w.dir.path().join("alias")).unwrap();
        assert!(confine(Path::new(&w.p("allowed/sub")), &[w.dir.path().join("alias")]).is_err());
        // A relative path is taken from the working directory.
        let cwd = std::env::current_dir().unwrap();
        confine(Path::new("src"), std::slice::from_ref(&cwd)).unwrap();
        assert!(confine(Path::new("../.."), &[cwd]).is_err());
    }

    /// Confinement without symlinks, on every platform (Windows: drive paths,
    /// `..` and a name that only shares the allowed directory's prefix).
    #[test]
    fn confine_and_check_portable() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("allowed");
        std::fs::create_dir_all(allowed.join("sub")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        let roots = vec![allowed.clone()];
        confine(&allowed.join("sub"), &roots).unwrap();
        confine(&allowed.join("new").join("x"), &roots).unwrap();
        for bad in [
            allowed.join("..").join("outside"),
            dir.path().join("allowed-evil"),
            dir.path().to_path_buf(),
            allowed.join("new").join("..").join(".."),
        ] {
            assert!(confine(&bad, &roots).is_err(), "{}", bad.display());
        }
        let pol = Policy { allow: roots, allow_write: vec![] };
        let pull = |p: PathBuf| {
            let args: Vec<OsString> = vec!["--server".into(), "--sender".into(), "-r".into(), ".".into(), p.into_os_string()];
            check(&parse(&args).unwrap(), &pol)
        };
        pull(allowed.join("sub")).unwrap();
        assert!(pull(allowed.join("..").join("outside")).is_err());
    }
}
