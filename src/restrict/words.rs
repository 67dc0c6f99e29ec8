//! `SSH_ORIGINAL_COMMAND` read into words without a shell (see "Reading
//! `SSH_ORIGINAL_COMMAND`" in the module documentation of `restrict`).

use std::ffi::OsString;

use super::Refusal;

/// Longest `SSH_ORIGINAL_COMMAND` read, in bytes. Real backup commands are a
/// few hundred bytes; a client with very many paths can send them with `-s`,
/// whose block on stdin has its own limits (`protect_args`).
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// Most words in a command, argv[0] included: rsync's own `MAX_ARGS`.
pub const MAX_WORDS: usize = crate::protect_args::MAX_ARGS;

/// Longest single word, in bytes: what an rsync server keeps of an argument.
pub const MAX_WORD_LEN: usize = crate::protect_args::MAX_ARG_LEN;

const ORIGINAL: &str = "SSH_ORIGINAL_COMMAND";

/// SSH_ORIGINAL_COMMAND (raw bytes) → rsync's argv without argv[0], read
/// without a shell (see the module documentation for the rules and limits).
pub fn command_argv(original: &[u8]) -> Result<Vec<OsString>, Refusal> {
    if original.len() > MAX_COMMAND_BYTES {
        return Err(Refusal::new(
            ORIGINAL,
            format!(
                "{} bytes, more than the {MAX_COMMAND_BYTES} a restricted command may have; send many paths with rsync -s",
                original.len()
            ),
        ));
    }
    if original.contains(&0) {
        return Err(Refusal::new(ORIGINAL, "holds a NUL byte"));
    }
    if let Some(&b) = original.iter().find(|&&b| b == b'\n' || b == b'\r') {
        let what = if b == b'\n' { "a newline" } else { "a carriage return" };
        return Err(Refusal::new(
            ORIGINAL,
            format!("holds {what}, which would end the command for a shell; a name holding one can only be sent with rsync -s"),
        ));
    }
    let words = split_words(original)?;
    if words.len() > MAX_WORDS {
        return Err(Refusal::new(ORIGINAL, format!("{} words, more than {MAX_WORDS}", words.len())));
    }
    if let Some(w) = words.iter().find(|w| w.len() > MAX_WORD_LEN) {
        return Err(Refusal::new(w, format!("{} bytes long, more than {MAX_WORD_LEN}", w.len())));
    }
    let Some((argv0, args)) = words.split_first() else {
        return Err(Refusal::new(ORIGINAL, "empty: this key only runs rsync"));
    };
    if !names_rsync(argv0) {
        return Err(Refusal::new(argv0, "not rsync: this key only runs rsync"));
    }
    // A client's `--rsync-path="snaprsync --snap-config=..."` puts snaprsync's
    // own options before `--server`: say where they belong.
    if let Some(w) = args.iter().take_while(|w| *w != b"--server").find(|w| w.starts_with(b"--snap-")) {
        return Err(Refusal::new(
            w,
            "snaprsync's --snap-* options belong in the key's forced command in authorized_keys, not in the client's --rsync-path; \
             leave --rsync-path out (or set it to rsync)",
        ));
    }
    match args.first() {
        Some(first) if first == b"--server" => {}
        Some(first) => {
            return Err(Refusal::new(first, "the command must be an rsync server (--server right after rsync)"));
        }
        None => return Err(Refusal::new(argv0, "the command must be an rsync server (--server right after rsync)")),
    }
    if let Some(w) = args.iter().find(|w| w.starts_with(b"--snap-")) {
        return Err(Refusal::new(w, "snaprsync's own options are set by the forced command only"));
    }
    args.iter().map(|w| os_string(w)).collect()
}

/// Whether the last path component of `word` is rsync's or snaprsync's name.
fn names_rsync(word: &[u8]) -> bool {
    let base = word.rsplit(|&b| b == b'/' || b == b'\\').next().unwrap_or(word);
    let base = base.to_ascii_lowercase();
    [&b"rsync"[..], b"rsync.exe", b"snaprsync", b"snaprsync.exe"].contains(&&base[..])
}

#[cfg(unix)]
pub(super) fn os_string(w: &[u8]) -> Result<OsString, Refusal> {
    use std::os::unix::ffi::OsStringExt;
    Ok(OsString::from_vec(w.to_vec()))
}

#[cfg(not(unix))]
pub(super) fn os_string(w: &[u8]) -> Result<OsString, Refusal> {
    String::from_utf8(w.to_vec()).map(OsString::from).map_err(|_| Refusal::new(w, "not UTF-8"))
}

/// The arguments of `snaprsync check [--max-age=D] [PATH...]` (a monitoring
/// poll over a backup key), if `original` is that request; `None` for any
/// other (an rsync command, or something [`command_argv`] refuses).
pub(super) fn check_request(original: &[u8]) -> Option<Vec<OsString>> {
    if original.len() > MAX_COMMAND_BYTES {
        return None;
    }
    let words = split_words(original).ok()?;
    let names_snaprsync = |w: &[u8]| {
        let base = w.rsplit(|&b| b == b'/' || b == b'\\').next().unwrap_or(w).to_ascii_lowercase();
        base == b"snaprsync" || base == b"snaprsync.exe"
    };
    if words.len() < 2 || !names_snaprsync(&words[0]) || words[1] != b"check" {
        return None;
    }
    Some(words[2..].iter().map(|w| OsString::from(String::from_utf8_lossy(w).into_owned())).collect())
}

/// Bytes a shell would act on outside quotes.
fn shell_meaning(b: u8) -> Option<&'static str> {
    Some(match b {
        b';' | b'&' | b'|' => "a command separator",
        b'<' | b'>' => "a redirection",
        b'(' | b')' | b'{' | b'}' => "a subshell or group",
        b'$' | b'`' => "an expansion",
        b'#' => "a comment",
        b'*' | b'?' | b'[' => "a wildcard (snaprsync expands none)",
        _ => return None,
    })
}

/// Splits the command into words by the quoting rules of the module documentation.
/// Splits a command into words as [`command_argv`] does (quotes and
/// backslashes; any other shell syntax is refused), for checking a forced
/// command written in `authorized_keys`.
pub fn shell_words(s: &[u8]) -> Result<Vec<Vec<u8>>, Refusal> {
    split_words(s)
}

fn split_words(s: &[u8]) -> Result<Vec<Vec<u8>>, Refusal> {
    let mut words = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    let mut i = 0;
    let syntax = |at: usize, what: &str| {
        let from = at.saturating_sub(20);
        Refusal::new(&s[from..(at + 20).min(s.len())], format!("shell syntax at byte {at}: {what}"))
    };
    while i < s.len() {
        let b = s[i];
        match b {
            b' ' | b'\t' => {
                if let Some(w) = cur.take() {
                    words.push(w);
                }
                i += 1;
            }
            b'\\' => {
                let Some(&c) = s.get(i + 1) else {
                    return Err(syntax(i, "a trailing backslash"));
                };
                cur.get_or_insert_with(Vec::new).push(c);
                i += 2;
            }
            b'\'' => {
                let Some(len) = s[i + 1..].iter().position(|&c| c == b'\'') else {
                    return Err(syntax(i, "an unterminated single quote"));
                };
                cur.get_or_insert_with(Vec::new).extend_from_slice(&s[i + 1..i + 1 + len]);
                i += len + 2;
            }
            b'"' => {
                let w = cur.get_or_insert_with(Vec::new);
                let mut j = i + 1;
                loop {
                    match s.get(j) {
                        None => return Err(syntax(i, "an unterminated double quote")),
                        Some(b'"') => break,
                        Some(b'\\') => match s.get(j + 1) {
                            Some(&c @ (b'$' | b'`' | b'"' | b'\\')) => {
                                w.push(c);
                                j += 2;
                            }
                            _ => {
                                w.push(b'\\');
                                j += 1;
                            }
                        },
                        Some(b'$' | b'`') => return Err(syntax(j, "an expansion inside double quotes")),
                        Some(&c) => {
                            w.push(c);
                            j += 1;
                        }
                    }
                }
                i = j + 1;
            }
            b'~' if cur.is_none() => return Err(syntax(i, "a tilde expansion; write the full path")),
            _ => {
                if let Some(what) = shell_meaning(b) {
                    return Err(syntax(i, what));
                }
                cur.get_or_insert_with(Vec::new).push(b);
                i += 1;
            }
        }
    }
    if let Some(w) = cur.take() {
        words.push(w);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restrict::test_support::words;

    #[test]
    fn escaped_form_of_rsync_3_2_4() {
        // What rsync >= 3.2.4 sends for the source `/srv/my data/it's "q" (1)&$x;`.
        let got = words(r#"rsync --server --sender -logDtpre.iLsfxCIvu . /srv/my\ data/it\'s\ \"q\"\ \(1\)\&\$x\;"#).unwrap();
        assert_eq!(got, ["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", r#"/srv/my data/it's "q" (1)&$x;"#]);
        // Option values also get their wildcards escaped; a tab is escaped too.
        let got = words("rsync --server -logDtpre.iLsf --suffix=\\*\\[x\\] . /d/a\\\tb").unwrap();
        assert_eq!(got, ["--server", "-logDtpre.iLsf", "--suffix=*[x]", ".", "/d/a\tb"]);
        // A leading dash of a file name is sent as `./-x`; `\!`, `\#` and `\\` are literal.
        let got = words(r"rsync --server --sender -r . ./-x a\!b\#c\\d").unwrap();
        assert_eq!(got, ["--server", "--sender", "-r", ".", "./-x", r"a!b#c\d"]);
    }

    #[test]
    fn older_clients_send_words_unescaped() {
        let got = words("rsync --server --sender -vlogDtpre.iLsfxCIvu --numeric-ids . /srv/data/").unwrap();
        assert_eq!(got, ["--server", "--sender", "-vlogDtpre.iLsfxCIvu", "--numeric-ids", ".", "/srv/data/"]);
        // A name with a space becomes two words, exactly as a shell would split it.
        let got = words("rsync  --server\t--sender -r .   /srv/my data  ").unwrap();
        assert_eq!(got, ["--server", "--sender", "-r", ".", "/srv/my", "data"]);
        // `!`, `=`, `%`, `:`, `,`, `@`, `+`, `^` and `]` mean nothing to sh -c.
        let got = words("rsync --server --sender --log-format=%i --info=flist2,name1 . /a!b/c]d@e+f^g:h").unwrap();
        assert_eq!(got[5], "/a!b/c]d@e+f^g:h");
    }

    #[test]
    fn user_quoting_in_rsync_path() {
        let got = words("'/usr/local/bin/snaprsync' --server --sender -r . /srv").unwrap();
        assert_eq!(got, ["--server", "--sender", "-r", ".", "/srv"]);
        let got = words(r#""/opt/my tools/rsync" --server --sender -r . "/srv/a b"'/c d'e"#).unwrap();
        assert_eq!(got, ["--server", "--sender", "-r", ".", "/srv/a b/c de"]);
        // Inside double quotes only \$ \` \" \\ are escapes.
        let got = words(r#"rsync --server --sender -r . "a\"b\$c\`d\\e\f""#).unwrap();
        assert_eq!(got[4], r#"a"b$c`d\e\f"#);
        // Quotes protect every metacharacter; an empty quoted word is a word.
        let got = words(r#"rsync --server --sender -r . ';|&<>(){}*?[#~' "" '~x'"#).unwrap();
        assert_eq!(&got[4..], [";|&<>(){}*?[#~", "", "~x"]);
    }

    #[test]
    fn argv0_names_rsync() {
        for ok in [
            "rsync",
            "/usr/bin/rsync",
            "rsync.exe",
            r"'C:\cwrsync\bin\RSYNC.EXE'",
            "C:/cwrsync/bin/rsync.exe",
            "snaprsync",
            "/usr/local/bin/snaprsync",
            "snaprsync.exe",
        ] {
            assert!(command_argv(format!("{ok} --server --sender -r . /x").as_bytes()).is_ok(), "{ok}");
        }
        for bad in [
            "sh",
            "bash",
            "/bin/sh",
            "rsync2",
            "/usr/bin/rsyncx",
            "xrsync",
            "scp",
            "sftp-server",
            "sudo",
            "env",
            "python3",
            "rsync/",
            "true",
            "ls",
        ] {
            let r = command_argv(format!("{bad} --server --sender -r . /x").as_bytes()).unwrap_err();
            assert!(r.why.contains("not rsync") || r.why.contains("--server"), "{bad}: {r}");
        }
        let r = command_argv(b"sudo rsync --server --sender -r . /x").unwrap_err();
        assert_eq!(r.arg(), "sudo");
    }

    #[test]
    fn only_a_server_command() {
        for bad in [
            "",
            "   ",
            "rsync",
            "rsync --version",
            "rsync --daemon",
            "rsync -a /etc /tmp/x",
            "rsync --sender --server -r . /x",
            "rsync -v --server --sender . /x",
        ] {
            assert!(command_argv(bad.as_bytes()).is_err(), "{bad:?}");
        }
        for bad in [
            "rsync --server --sender --snap-config=/tmp/evil.toml . /x",
            "rsync --server --sender -r . --snap-allow=/",
            "rsync --server --snap-log-file=/x . /y",
        ] {
            let r = command_argv(bad.as_bytes()).unwrap_err();
            assert!(r.arg().starts_with("--snap-"), "{bad}: {r}");
        }
        // The README's --rsync-path for an unrestricted client, sent to a restricted key.
        let r = command_argv(b"/usr/bin/snaprsync --snap-config=/etc/snaprsync.toml --server --sender -logDtpre.iLsfxCIvu . /srv/")
            .unwrap_err();
        assert_eq!(r.arg(), "--snap-config=/etc/snaprsync.toml");
        assert!(r.why.contains("forced command") && r.why.contains("--rsync-path"), "{r}");
    }

    #[test]
    fn shell_syntax_is_refused() {
        let base = "rsync --server --sender -r . ";
        for tail in [
            "/x; rm -rf /",
            "/x;id",
            "/x && id",
            "/x & id",
            "/x | nc h 1",
            "/x || id",
            "/x > /etc/passwd",
            "/x < /etc/shadow",
            "/x >> f",
            "$(id)",
            "/x$HOME",
            "${HOME}",
            "`id`",
            "(id)",
            "{a,b}",
            "/x #c",
            "/*",
            "/x?",
            "/x[ab]",
            "~/x",
            "~root",
            "'/x",
            "\"/x",
            "/x\\",
            "\"$HOME\"",
            "\"`id`\"",
            "\"$(id)\"",
        ] {
            let r = command_argv(format!("{base}{tail}").as_bytes()).unwrap_err();
            assert!(r.why.starts_with("shell syntax"), "{tail}: {r}");
            assert!(!r.to_string().contains('\n'));
        }
        // Escaped or quoted, the same bytes are plain names.
        for (tail, want) in
            [("/x\\;id", "/x;id"), ("'/x && id'", "/x && id"), ("\\$HOME", "$HOME"), ("/a\\*", "/a*"), ("a~b", "a~b"), ("\\~x", "~x")]
        {
            assert_eq!(words(&format!("{base}{tail}")).unwrap()[4], want, "{tail}");
        }
    }

    #[test]
    fn control_bytes_and_size() {
        for bad in [
            &b"rsync --server --sender -r . /x\nid"[..],
            b"rsync --server --sender -r . /x\\\nid",
            b"rsync --server --sender -r . '/a\nb'",
            b"rsync --server --sender -r . /x\r",
            b"rsync --server\0 --sender -r . /x",
        ] {
            let r = command_argv(bad).unwrap_err();
            assert_eq!(r.arg(), ORIGINAL, "{r}");
            assert!(!r.to_string().contains('\n'));
        }
        let head = "rsync --server --sender -r .";
        let mut ok = head.to_owned();
        while ok.len() + 4001 <= MAX_COMMAND_BYTES {
            ok.push(' ');
            ok.push_str(&"a".repeat(4000));
        }
        assert!(command_argv(ok.as_bytes()).is_ok());
        let big = format!("{head} {}", "a/".repeat(MAX_COMMAND_BYTES / 2));
        assert!(command_argv(big.as_bytes()).unwrap_err().why.contains("more than the"));
        let long = format!("{head} {}", "a".repeat(MAX_WORD_LEN + 1));
        assert!(command_argv(long.as_bytes()).unwrap_err().why.contains("bytes long"));
        let many = format!("{head}{}", " a".repeat(MAX_WORDS));
        assert!(command_argv(many.as_bytes()).unwrap_err().why.contains("words"));
        // Bytes that are not UTF-8 are kept (Unix) as they are.
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let got = command_argv(b"rsync --server --sender -r . /\xff\xfe").unwrap();
            assert_eq!(got[4].as_bytes(), b"/\xff\xfe");
        }
    }
}
