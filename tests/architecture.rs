//! Test only: ARCHITECTURE.md is the truth about `src/`. Its file list names
//! every file there and nothing else, and its floors hold: a module imports
//! (`crate::…`) only from its own floor or a lower one, and no modules import
//! each other around a circle. Read from the source text of every file, tests
//! left out (they may reach anywhere).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file below `src/`, as a path relative to the crate root.
fn files(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p.strip_prefix(root()).unwrap().to_string_lossy().replace('\\', "/"));
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `src/lib.rs` and
/// `src/main.rs` are the crate (`lib`, `main`).
fn module_of(file: &str) -> String {
    let p = file.strip_prefix("src/").unwrap().strip_suffix(".rs").unwrap();
    let p = p.strip_suffix("/mod").unwrap_or(p);
    p.replace('/', "::")
}

/// The code of a file without its test module (by convention, the last
/// thing in it) and without comments (a doc link is not an import).
fn code(text: &str) -> String {
    let at = text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len());
    let mut out = String::new();
    for line in text[..at].lines() {
        // A `//` inside a string (an even count of quotes before it) is kept.
        let cut = line.match_indices("//").map(|(i, _)| i).find(|&i| line[..i].matches('"').count() % 2 == 0);
        out.push_str(&line[..cut.unwrap_or(line.len())]);
        out.push('\n');
    }
    out
}

/// A file that is all tests (`mod tests;` in its parent): it may reach anywhere.
fn is_tests(file: &str) -> bool {
    file.ends_with("/tests.rs")
}

/// Every path a `crate::` in `code` names, with `{…}` groups expanded.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = code.as_bytes();
    let mut i = 0;
    while let Some(at) = code[i..].find("crate::") {
        let start = i + at;
        i = start + "crate::".len();
        // `$crate::` or `foo_crate::` is not ours.
        if start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_' || b[start - 1] == b'$') {
            continue;
        }
        let (paths, end) = tree(code, i, String::new());
        out.extend(paths);
        i = end;
    }
    out
}

/// Parses a use tree at `i` (`a::b`, `a::{b, c::d}`, `{a, b}`), prefixed by `prefix`.
fn tree(code: &str, mut i: usize, prefix: String) -> (Vec<String>, usize) {
    let b = code.as_bytes();
    if b.get(i) == Some(&b'{') {
        let mut out = Vec::new();
        i += 1;
        loop {
            while b.get(i).is_some_and(|c| c.is_ascii_whitespace() || *c == b',') {
                i += 1;
            }
            if b.get(i).is_none_or(|c| *c == b'}') {
                return (out, i + 1);
            }
            let (paths, end) = tree(code, i, prefix.clone());
            out.extend(paths);
            if end <= i {
                return (out, i + 1);
            }
            i = end;
            // `as name` and anything else up to the next item.
            while b.get(i).is_some_and(|c| *c != b',' && *c != b'}') {
                i += 1;
            }
        }
    }
    let start = i;
    while b.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
        i += 1;
    }
    if i == start {
        return (if prefix.is_empty() { vec![] } else { vec![prefix] }, i);
    }
    let path = if prefix.is_empty() { code[start..i].to_owned() } else { format!("{prefix}::{}", &code[start..i]) };
    if code[i..].starts_with("::") {
        return tree(code, i + 2, path);
    }
    (vec![path], i)
}

/// The module a path names: its longest prefix that is a module of `mods`.
fn target<'a>(path: &str, mods: &'a BTreeSet<String>) -> Option<&'a String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len()).rev().find_map(|n| mods.get(&parts[..n].join("::")))
}

/// The floors of ARCHITECTURE.md's "Floors" list, bottom first: the
/// backquoted modules of each numbered line.
fn floors(doc: &str) -> Vec<Vec<String>> {
    let section = doc.split("\n## Floors").nth(1).expect("ARCHITECTURE.md has a \"## Floors\" section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|l| l.split_once(". ").is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())))
        .map(|l| l.split('`').skip(1).step_by(2).map(str::to_owned).collect())
        .collect()
}

/// The floor of `module`: that of the longest listed prefix of it.
fn floor_of(module: &str, floors: &[Vec<String>]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (f, names) in floors.iter().enumerate() {
        for n in names {
            if (module == n || module.starts_with(&format!("{n}::"))) && best.is_none_or(|(len, _)| n.len() > len) {
                best = Some((n.len(), f));
            }
        }
    }
    best.map(|(_, f)| f)
}

fn sources() -> BTreeMap<String, String> {
    let mut fs = Vec::new();
    files(&root().join("src"), &mut fs);
    fs.into_iter().map(|f| (f.clone(), std::fs::read_to_string(root().join(&f)).unwrap())).collect()
}

#[test]
fn the_file_list_is_src() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let section = doc.split("\n### `src/`").nth(1).expect("ARCHITECTURE.md has a \"### `src/`\" section");
    let section = section.split("\n### ").next().unwrap();
    let listed: BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("- `"))
        .filter_map(|l| l.split_once('`').map(|(name, _)| name.to_owned()))
        .filter(|name| name.ends_with(".rs"))
        .map(|name| format!("src/{name}"))
        .collect();
    let actual: BTreeSet<String> = sources().into_keys().collect();
    let missing: Vec<_> = actual.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&actual).collect();
    assert!(missing.is_empty() && stale.is_empty(), "ARCHITECTURE.md lacks {missing:?} and names {stale:?}, which are not in src/");
}

#[test]
fn imports_run_down_the_floors_and_around_no_circle() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let floors = floors(&doc);
    let src = sources();
    let mods: BTreeSet<String> = src.keys().map(|f| module_of(f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (file, text) in src.iter().filter(|(f, _)| !is_tests(f)) {
        let from = module_of(file);
        let Some(f_from) = floor_of(&from, &floors) else {
            wrong.push(format!("{from} is on no floor of ARCHITECTURE.md"));
            continue;
        };
        for path in crate_paths(&code(text)) {
            let Some(to) = target(&path, &mods) else { continue };
            // A module's own parts, and its parent's items (`super`), are its own.
            if *to == from || from.starts_with(&format!("{to}::")) || to.starts_with(&format!("{from}::")) {
                continue;
            }
            match floor_of(to, &floors) {
                Some(f_to) if f_to > f_from => wrong.push(format!("{from} (floor {}) imports {path} (floor {})", f_from + 1, f_to + 1)),
                _ => {}
            }
            edges.entry(from.clone()).or_default().insert(to.clone());
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // A circle: a module reached again from itself.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut circle = path[at..].to_vec();
            circle.push(m.to_owned());
            return Some(circle);
        }
        if !done.insert(m.to_owned()) {
            return None;
        }
        path.push(m.to_owned());
        for next in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        if let Some(c) = visit(m, &edges, &mut Vec::new(), &mut done) {
            panic!("an import circle: {}", c.join(" -> "));
        }
    }
}

#[test]
fn use_trees_are_read_whole() {
    let text = "use crate::a::{b, c::{d, e as f}};\nlet x = crate::g::h(1); // crate::no\n/// [`crate::no`]\n$crate::no; my_crate::no;\nlet u = \"http://x\"; crate::i::j;";
    let mut got = crate_paths(&code(text));
    got.sort();
    assert_eq!(got, ["a::b", "a::c::d", "a::c::e", "g::h", "i::j"]);
}
