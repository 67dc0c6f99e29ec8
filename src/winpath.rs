//! Windows path forms as rsync builds write them, and their rewriting into a
//! shadow copy: pure string work, compiled and tested on every platform.
//!
//! A source argument names a drive in one of four styles: cygwin
//! (`/cygdrive/c/Users/`), MSYS2 (`/c/Users/`), native (`C:\Users`, `C:/Users`)
//! or verbatim (`\\?\C:\Users`). [`DrivePath`] keeps the style, the drive, the
//! components below it and whether a trailing separator was given, so that the
//! same place can be written back on another drive letter or inside a shadow
//! copy's device, with rsync's trailing-slash meaning intact.
//!
//! The rsync that reads decides the form written back, not the argument: a
//! cygwin or MSYS2 rsync does not take `\` as a separator, so it never gets a
//! backslash or `\\?\` ([`DrivePath::for_reader`], [`DrivePath::in_device`]).

/// Which rsync build reads the paths; decides how ambiguous forms are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// cygwin rsync or cwRsync: `/cygdrive/c/...`; `/c/...` is a path under the cygwin root.
    Cygwin,
    /// MSYS2 rsync: `/c/...` (and `/cygdrive/c/...`).
    Msys,
    /// A native Windows rsync: only `C:\...` forms.
    Native,
}

/// How a path argument was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `/cygdrive/c/...`
    Cygwin,
    /// `/c/...`
    Msys,
    /// `C:\...` (`sep` = `\`) or `C:/...` (`sep` = `/`).
    Native { sep: char },
    /// `\\?\C:\...`
    Verbatim,
}

impl Style {
    /// Whether a cygwin-based program is expected to read this path.
    pub fn is_posix(self) -> bool {
        matches!(self, Style::Cygwin | Style::Msys)
    }
}

/// Paths longer than this need the `\\?\` prefix for native programs.
const MAX_PATH: usize = 259;

/// A path on a lettered drive, as one rsync argument named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrivePath {
    pub style: Style,
    /// Upper-case drive letter.
    pub drive: char,
    /// The components below the drive root, in order (`.` kept: it is rsync's
    /// `--relative` marker).
    pub parts: Vec<String>,
    /// The argument ended in a separator (rsync: "the contents of").
    pub trailing_slash: bool,
}

/// Reads `arg` as a path on a lettered drive. `None` for relative paths, UNC
/// paths, other posix paths and anything else that names no drive.
pub fn parse(arg: &str, flavor: Flavor) -> Option<DrivePath> {
    if let Some(rest) = arg.strip_prefix(r"\\?\").or_else(|| arg.strip_prefix("//?/")) {
        let (drive, tail) = native_drive(rest)?;
        return Some(build(Style::Verbatim, drive, tail, &['\\', '/']));
    }
    if let Some((drive, tail)) = native_drive(arg) {
        let sep = if tail.starts_with('/') { '/' } else { '\\' };
        return Some(build(Style::Native { sep }, drive, tail, &['\\', '/']));
    }
    if flavor == Flavor::Native {
        return None;
    }
    if let Some(rest) = arg.strip_prefix("/cygdrive/") {
        let (drive, tail) = posix_drive(rest)?;
        return Some(build(Style::Cygwin, drive, tail, &['/']));
    }
    if flavor == Flavor::Msys {
        let (drive, tail) = posix_drive(arg.strip_prefix('/')?)?;
        return Some(build(Style::Msys, drive, tail, &['/']));
    }
    None
}

/// `C:` followed by a separator (a drive-relative `C:foo` is refused).
fn native_drive(s: &str) -> Option<(char, &str)> {
    let mut chars = s.chars();
    let d = chars.next()?;
    if !d.is_ascii_alphabetic() || chars.next()? != ':' {
        return None;
    }
    let tail = &s[2..];
    (tail.starts_with('\\') || tail.starts_with('/')).then_some((d.to_ascii_uppercase(), tail))
}

/// `c` followed by `/` or the end.
fn posix_drive(s: &str) -> Option<(char, &str)> {
    let mut chars = s.chars();
    let d = chars.next()?;
    if !d.is_ascii_alphabetic() {
        return None;
    }
    let tail = &s[1..];
    (tail.is_empty() || tail.starts_with('/')).then_some((d.to_ascii_uppercase(), tail))
}

fn build(style: Style, drive: char, tail: &str, seps: &[char]) -> DrivePath {
    let trailing_slash = tail.ends_with(seps);
    let parts = tail.split(seps).filter(|p| !p.is_empty()).map(str::to_owned).collect();
    DrivePath { style, drive, parts, trailing_slash }
}

impl DrivePath {
    /// A native absolute path (`C:\Users\x`), for finding the volume; `\\?\`
    /// when too long for plain Win32 calls. `.` components are dropped.
    pub fn native(&self) -> String {
        let mut s = format!("{}:\\", self.drive);
        s.push_str(&self.real_parts().join("\\"));
        if s.len() > MAX_PATH {
            s.insert_str(0, r"\\?\");
        }
        s
    }

    fn real_parts(&self) -> Vec<&str> {
        self.parts.iter().map(String::as_str).filter(|p| *p != ".").collect()
    }

    /// True for a drive root written without a trailing separator
    /// (`/cygdrive/c`): rsync would name the copy after the drive letter, which
    /// no rewrite can keep.
    pub fn is_bare_root(&self) -> bool {
        self.parts.is_empty() && !self.trailing_slash
    }

    /// The same place in a form `flavor`'s rsync reads as the argument meant
    /// it. A cygwin or MSYS2 rsync gets a native or verbatim argument as
    /// `C:/...`: forward slashes, which every cygwin reads whatever its
    /// cygdrive prefix, and no `\\?\` (cygwin handles long paths itself).
    /// Posix forms, and every form for a native rsync, stay as written.
    pub fn for_reader(mut self, flavor: Flavor) -> DrivePath {
        if flavor != Flavor::Native && !self.style.is_posix() {
            self.style = Style::Native { sep: '/' };
        }
        self
    }

    /// The same path written in its own style.
    pub fn render(&self) -> String {
        self.with_drive(self.drive)
    }

    /// The same place on drive `letter`, in the argument's own style.
    pub fn with_drive(&self, letter: char) -> String {
        let l = letter.to_ascii_uppercase();
        match self.style {
            Style::Cygwin => self.posix(&format!("/cygdrive/{}", l.to_ascii_lowercase())),
            Style::Msys => self.posix(&format!("/{}", l.to_ascii_lowercase())),
            Style::Native { sep } => {
                let s = self.joined(&format!("{l}:"), sep);
                if s.len() > MAX_PATH && sep == '\\' {
                    format!(r"\\?\{s}")
                } else {
                    s
                }
            }
            Style::Verbatim => format!(r"\\?\{}", self.joined(&format!("{l}:"), '\\')),
        }
    }

    /// The same place inside a shadow copy's device, given as VSS names it
    /// (`\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy3`, with or without the
    /// trailing separator): `/proc/sys/Device/...` for a cygwin or MSYS2
    /// reader, whatever the argument's form; `\\?\GLOBALROOT\Device\...` for
    /// a native one. `None` if `device` is not a device path.
    pub fn in_device(&self, device: &str, reader: Flavor) -> Option<String> {
        let dev = device_name(device)?;
        Some(if reader != Flavor::Native {
            self.posix(&format!("/proc/sys/{}", dev.replace('\\', "/")))
        } else {
            format!(r"\\?\GLOBALROOT\{}", self.joined(dev, '\\'))
        })
    }

    fn posix(&self, root: &str) -> String {
        self.joined(root, '/')
    }

    /// `root` + sep + parts, with the trailing separator as given; a bare
    /// root stays bare.
    fn joined(&self, root: &str, sep: char) -> String {
        let mut s = root.to_owned();
        for p in &self.parts {
            s.push(sep);
            s.push_str(p);
        }
        if self.trailing_slash || (self.parts.is_empty() && root.ends_with(':')) {
            s.push(sep);
        }
        s
    }
}

/// `Device\HarddiskVolumeShadowCopy3` from any of the forms VSS and users write
/// a shadow copy device in: `\\?\GLOBALROOT\Device\...`, `\\.\GLOBALROOT\...`,
/// `\Device\...`, `GLOBALROOT\Device\...`, with or without a trailing `\`.
pub fn device_name(device: &str) -> Option<&str> {
    let s = device.trim_end_matches(['\\', '/']);
    let s = s.strip_prefix(r"\\?\").or_else(|| s.strip_prefix(r"\\.\")).unwrap_or(s);
    let s = s.strip_prefix("GLOBALROOT\\").unwrap_or(s);
    let s = s.strip_prefix('\\').unwrap_or(s);
    (s.starts_with("Device\\") && s.len() > "Device\\".len()).then_some(s)
}

/// The NT target DefineDosDevice(DDD_RAW_TARGET_PATH) wants for a shadow copy
/// device: `\Device\HarddiskVolumeShadowCopy3`.
pub fn raw_target(device: &str) -> Option<String> {
    device_name(device).map(|d| format!("\\{d}"))
}

/// The drive-letter root for a native program: `R:\`.
pub fn drive_root(letter: char) -> String {
    format!("{}:\\", letter.to_ascii_uppercase())
}

/// The volume root (`C:\`) of a native absolute path, `\\?\` prefix allowed.
pub fn volume_of_native(path: &str) -> Option<String> {
    let p = path.strip_prefix(r"\\?\").unwrap_or(path);
    native_drive(p).map(|(d, _)| drive_root(d))
}

/// The first letter of `candidates` (in order) that is not in use; `in_use`
/// is the GetLogicalDrives bitmask (bit 0 = A). `None` if all are taken.
pub fn pick_free_letter(candidates: &str, in_use: u32) -> Option<char> {
    candidates.chars().map(|c| c.to_ascii_uppercase()).find(|c| c.is_ascii_uppercase() && in_use & (1 << (*c as u32 - 'A' as u32)) == 0)
}

/// Windows command-line quoting of one argument (the rules of
/// CommandLineToArgvW and the C runtime), for logging and for tests that
/// build a command line by hand.
pub fn quote_arg(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains([' ', '\t', '\n', '\x0b', '"']) {
        return arg.to_owned();
    }
    let mut out = String::from("\"");
    let mut backslashes = 0;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                out.extend(std::iter::repeat_n('\\', backslashes * 2 + 1));
                out.push('"');
                backslashes = 0;
            }
            _ => {
                out.extend(std::iter::repeat_n('\\', backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    out.extend(std::iter::repeat_n('\\', backslashes * 2));
    out.push('"');
    out
}

/// One argument as a cygwin or MSYS2 program started by a native one, with
/// globbing off (`noglob`), reads it back exactly: in one pair of double
/// quotes. By cygwin's `build_argv` with globbing off every `"` opens or
/// closes a quoted part and is dropped, a backslash is an ordinary character,
/// and a word beginning with an unquoted `@` is a response file; so the one
/// pair keeps spaces, backslashes (a trailing one too), `@`, `*` and the empty
/// argument, and an argument holding a `"` cannot be passed at all (`None`).
pub fn cygwin_arg(arg: &str) -> Option<String> {
    (!arg.contains('"')).then(|| format!("\"{arg}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cygwin_argument_is_one_quoted_word_and_a_quote_is_refused() {
        for (arg, want) in
            [("a b", r#""a b""#), (r"x y\", r#""x y\""#), ("@f", r#""@f""#), ("*", r#""*""#), ("", r#""""#), ("Jürgen", r#""Jürgen""#)]
        {
            assert_eq!(cygwin_arg(arg).as_deref(), Some(want), "{arg}");
        }
        assert_eq!(cygwin_arg(r#"a"b"#), None);
    }

    fn p(s: &str) -> DrivePath {
        parse(s, Flavor::Msys).unwrap_or_else(|| panic!("{s} not parsed"))
    }

    const SHADOW: &str = r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy7\";

    #[test]
    fn the_four_styles_are_read() {
        let c = p("/cygdrive/c/Users/alice/");
        assert_eq!((c.style, c.drive, c.trailing_slash), (Style::Cygwin, 'C', true));
        assert_eq!(c.parts, ["Users", "alice"]);
        let m = p("/d/data");
        assert_eq!((m.style, m.drive, m.trailing_slash), (Style::Msys, 'D', false));
        let n = p(r"c:\Users");
        assert_eq!((n.style, n.drive), (Style::Native { sep: '\\' }, 'C'));
        let f = p("C:/Users/");
        assert_eq!((f.style, f.trailing_slash), (Style::Native { sep: '/' }, true));
        let v = p(r"\\?\E:\deep\x");
        assert_eq!((v.style, v.drive, v.parts.len()), (Style::Verbatim, 'E', 2));
    }

    #[test]
    fn native_path_for_every_style() {
        for arg in ["/cygdrive/c/Users/a b/", "/c/Users/a b/", r"C:\Users\a b\", "C:/Users/a b/", r"\\?\C:\Users\a b\"] {
            assert_eq!(p(arg).native(), r"C:\Users\a b", "{arg}");
        }
        assert_eq!(p("/cygdrive/c/").native(), r"C:\");
        assert_eq!(p("/c").native(), r"C:\");
        assert_eq!(p(r"C:\").native(), r"C:\");
    }

    #[test]
    fn not_drive_paths_are_none() {
        for arg in [
            "relative/x",
            ".",
            "",
            "/home/u",
            "/cygdrive/",
            "/cygdrive/cd/x",
            r"\\server\share\x",
            "C:foo",
            "C:",
            "//host/x",
            "host:/x",
            "/ab/x",
        ] {
            assert_eq!(parse(arg, Flavor::Msys), None, "{arg}");
        }
    }

    #[test]
    fn flavor_decides_ambiguous_forms() {
        assert_eq!(parse("/c/Users", Flavor::Cygwin), None, "a cygwin-root path");
        assert!(parse("/cygdrive/c/Users", Flavor::Cygwin).is_some());
        assert!(parse("/cygdrive/c/Users", Flavor::Msys).is_some());
        assert_eq!(parse("/cygdrive/c/Users", Flavor::Native), None);
        assert!(parse(r"C:\Users", Flavor::Native).is_some());
        assert!(parse(r"C:\Users", Flavor::Cygwin).is_some());
    }

    #[test]
    fn drive_letter_rewrite_keeps_style_and_trailing_slash() {
        let cases = [
            ("/cygdrive/c/Users/", "/cygdrive/r/Users/"),
            ("/cygdrive/c/Users", "/cygdrive/r/Users"),
            ("/cygdrive/c/", "/cygdrive/r/"),
            ("/c/Users/", "/r/Users/"),
            ("/c/", "/r/"),
            (r"C:\Users\", r"R:\Users\"),
            (r"C:\Users", r"R:\Users"),
            (r"C:\", r"R:\"),
            ("C:/Users/", "R:/Users/"),
            ("C:/", "R:/"),
            (r"\\?\C:\Users", r"\\?\R:\Users"),
            (r"\\?\C:\", r"\\?\R:\"),
        ];
        for (arg, want) in cases {
            assert_eq!(p(arg).with_drive('r'), want, "{arg}");
            assert_eq!(p(arg).render(), arg, "{arg} round trip");
        }
    }

    #[test]
    fn render_round_trips_normal_forms() {
        for arg in ["/cygdrive/c/Users/", "/c/x y/z", r"C:\Users\", "C:/a/b", r"\\?\C:\a\", "/cygdrive/d/./rel/"] {
            assert_eq!(p(arg).render(), arg);
        }
        // Doubled separators collapse, as rsync would read them.
        assert_eq!(p("/cygdrive/c//Users///x/").render(), "/cygdrive/c/Users/x/");
        assert_eq!(p(r"c:\a\\b").render(), r"C:\a\b");
    }

    #[test]
    fn device_rewrite_follows_the_reader_not_the_argument() {
        use Flavor::{Cygwin, Msys, Native};
        let cases = [
            ("/cygdrive/c/Users/", Cygwin, "/proc/sys/Device/HarddiskVolumeShadowCopy7/Users/"),
            ("/c/Users", Msys, "/proc/sys/Device/HarddiskVolumeShadowCopy7/Users"),
            ("/cygdrive/c/", Msys, "/proc/sys/Device/HarddiskVolumeShadowCopy7/"),
            // A native form given to a cygwin or MSYS2 rsync: still posix, the
            // trailing slash and the last component kept exactly.
            (r"C:\Users\", Cygwin, "/proc/sys/Device/HarddiskVolumeShadowCopy7/Users/"),
            ("C:/x/", Cygwin, "/proc/sys/Device/HarddiskVolumeShadowCopy7/x/"),
            ("C:/Users", Msys, "/proc/sys/Device/HarddiskVolumeShadowCopy7/Users"),
            (r"\\?\C:\x\", Cygwin, "/proc/sys/Device/HarddiskVolumeShadowCopy7/x/"),
            (r"C:\", Msys, "/proc/sys/Device/HarddiskVolumeShadowCopy7/"),
            // A native rsync: the verbatim device form.
            (r"C:\Users\", Native, r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy7\Users\"),
            ("C:/Users", Native, r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy7\Users"),
            (r"C:\", Native, r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy7\"),
            (r"\\?\C:\x\", Native, r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy7\x\"),
        ];
        for (arg, reader, want) in cases {
            let got = parse(arg, reader).expect(arg).for_reader(reader).in_device(SHADOW, reader);
            assert_eq!(got.as_deref(), Some(want), "{arg} for a {reader:?} rsync");
            assert!(reader == Native || !got.as_deref().unwrap_or("").contains(['\\', '?']), "{arg}: {got:?}");
        }
        assert_eq!(p("/c/x").in_device("C:\\", Msys).as_deref(), None);
    }

    #[test]
    fn a_drive_letter_follows_the_reader_not_the_argument() {
        use Flavor::{Cygwin, Msys, Native};
        let cases = [
            (r"C:\Users\", Cygwin, "R:/Users/"),
            (r"C:\Users", Msys, "R:/Users"),
            (r"\\?\C:\x y\", Cygwin, "R:/x y/"),
            ("C:/x/", Cygwin, "R:/x/"),
            (r"C:\.\Users\", Cygwin, "R:/./Users/"),
            ("/cygdrive/c/x/", Cygwin, "/cygdrive/r/x/"),
            ("/c/x", Msys, "/r/x"),
            (r"C:\Users\", Native, r"R:\Users\"),
            (r"\\?\C:\x\", Native, r"\\?\R:\x\"),
        ];
        for (arg, reader, want) in cases {
            assert_eq!(parse(arg, reader).expect(arg).for_reader(reader).with_drive('R'), want, "{arg} for a {reader:?} rsync");
        }
        // Long: no verbatim prefix for a cygwin reader.
        let deep: String = (0..40).map(|i| format!("d{i:02}xxxxxxx")).collect::<Vec<_>>().join("\\");
        let long = parse(&format!("C:\\{deep}\\"), Cygwin).unwrap().for_reader(Cygwin).with_drive('R');
        assert!(long.starts_with("R:/d00xxxxxxx/") && !long.contains('\\'), "{long}");
    }

    #[test]
    fn relative_marker_survives_rewrites() {
        let d = p("/cygdrive/c/./Users/alice/");
        assert_eq!(d.with_drive('S'), "/cygdrive/s/./Users/alice/");
        assert_eq!(d.in_device(SHADOW, Flavor::Cygwin).unwrap(), "/proc/sys/Device/HarddiskVolumeShadowCopy7/./Users/alice/");
        assert_eq!(d.native(), r"C:\Users\alice");
    }

    #[test]
    fn spaces_and_non_ascii_pass_through() {
        let d = p("/cygdrive/c/Users/Jürgen Müller/Документы/日本語 メモ/");
        assert_eq!(d.native(), r"C:\Users\Jürgen Müller\Документы\日本語 メモ");
        assert_eq!(d.with_drive('T'), "/cygdrive/t/Users/Jürgen Müller/Документы/日本語 メモ/");
        let n = p(r"D:\Données partagées\été 2024");
        assert_eq!(
            n.in_device(SHADOW, Flavor::Native).unwrap(),
            r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy7\Données partagées\été 2024"
        );
    }

    #[test]
    fn long_paths_get_the_verbatim_prefix_for_native_readers() {
        let deep: String = (0..40).map(|i| format!("directory{i:02}")).collect::<Vec<_>>().join("/");
        let d = p(&format!("/cygdrive/c/{deep}/"));
        assert!(d.native().starts_with(r"\\?\C:\directory00\"), "{}", d.native());
        // cygwin readers handle long posix paths themselves.
        assert!(d.with_drive('R').starts_with("/cygdrive/r/directory00/"));
        let n = p(&format!("C:\\{}", deep.replace('/', "\\")));
        assert!(n.with_drive('R').starts_with(r"\\?\R:\directory00\"));
        assert!(n.in_device(SHADOW, Flavor::Native).unwrap().starts_with(r"\\?\GLOBALROOT\Device\"));
        // Short ones stay plain.
        assert_eq!(p(r"C:\short").with_drive('R'), r"R:\short");
    }

    #[test]
    fn several_volumes_keep_their_own_drive() {
        let args = ["/cygdrive/c/Users/", "/cygdrive/d/Data", "/cygdrive/e/"];
        let natives: Vec<_> = args.iter().map(|a| p(a).native()).collect();
        assert_eq!(natives, [r"C:\Users", r"D:\Data", r"E:\"]);
        let vols: Vec<_> = natives.iter().map(|n| volume_of_native(n).unwrap()).collect();
        assert_eq!(vols, [r"C:\", r"D:\", r"E:\"]);
    }

    #[test]
    fn bare_roots_are_flagged() {
        assert!(p("/cygdrive/c").is_bare_root());
        assert!(p("/c").is_bare_root());
        assert!(!p("/cygdrive/c/").is_bare_root());
        assert!(!p(r"C:\").is_bare_root());
        assert!(!p("/cygdrive/c/x").is_bare_root());
    }

    #[test]
    fn device_names_in_every_form() {
        for d in [
            SHADOW,
            r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy7",
            r"\Device\HarddiskVolumeShadowCopy7",
            r"\\.\GLOBALROOT\Device\HarddiskVolumeShadowCopy7\",
        ] {
            assert_eq!(device_name(d), Some(r"Device\HarddiskVolumeShadowCopy7"), "{d}");
        }
        assert_eq!(device_name(r"C:\"), None);
        assert_eq!(device_name(r"\Device\"), None);
        assert_eq!(raw_target(SHADOW).unwrap(), r"\Device\HarddiskVolumeShadowCopy7");
    }

    #[test]
    fn free_letter_skips_used_ones() {
        let used = |ls: &str| ls.chars().fold(0u32, |m, c| m | 1 << (c as u32 - 'A' as u32));
        assert_eq!(pick_free_letter("RSTUVWXYZ", used("CZ")), Some('R'));
        assert_eq!(pick_free_letter("RSTUVWXYZ", used("CRS")), Some('T'));
        assert_eq!(pick_free_letter("RS", used("RS")), None);
        assert_eq!(pick_free_letter("zr", used("Z")), Some('R'));
    }

    #[test]
    fn windows_quoting_follows_the_crt_rules() {
        assert_eq!(quote_arg("plain"), "plain");
        assert_eq!(quote_arg(""), "\"\"");
        assert_eq!(quote_arg("a b"), "\"a b\"");
        assert_eq!(quote_arg(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(quote_arg(r"C:\dir with space\"), r#""C:\dir with space\\""#);
        assert_eq!(quote_arg(r"C:\no\space\"), r"C:\no\space\");
        assert_eq!(quote_arg(r#"a\"b"#), r#""a\\\"b""#);
    }
}
