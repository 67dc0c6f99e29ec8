//! Shell completions (bash, zsh, fish) for snaprsync's subcommands and
//! `--snap-*` options, made from `cli::OPTIONS` and `cli::COMMANDS`, so that
//! they offer exactly what the parser reads. Past snaprsync's own words, the
//! arguments are rsync's: bash and zsh hand them to rsync's own completion
//! where the shell has one, fish wraps rsync's. After `exec`, all three offer
//! files for the PATHs, a command right after `--`, then its arguments.

use std::fmt::Write;

use crate::cli::{OptionDoc, COMMANDS, OPTIONS};
use crate::config::KEYS;
use crate::manual::short;

/// The words `--snap-log-level=` takes, from what the config key accepts.
fn levels() -> Vec<&'static str> {
    let accepts = KEYS.iter().find(|k| k.name == "log_level").map_or("", |k| k.accepts);
    accepts.split('"').skip(1).step_by(2).collect()
}

/// What an option's value is completed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    File,
    Dir,
    Level,
}

fn value_of(o: &OptionDoc) -> Option<Value> {
    match o.value? {
        "DIR" => Some(Value::Dir),
        "LEVEL" => Some(Value::Level),
        _ => Some(Value::File),
    }
}

fn command_names() -> String {
    COMMANDS.iter().map(|c| c.name).collect::<Vec<_>>().join(" ")
}

/// The bash completion (for bash-completion's loader).
pub fn bash() -> String {
    let own: Vec<String> = OPTIONS.iter().map(|o| format!("{}{}", o.name, if o.value.is_some() { "=" } else { "" })).collect();
    let names = |v: Value| OPTIONS.iter().filter(|o| value_of(o) == Some(v)).map(|o| o.name).collect::<Vec<_>>().join("|");
    let mut o = String::new();
    o.push_str("# bash completion for snaprsync                           -*- shell-script -*-\n");
    o.push_str("# Made by `snaprsync __doc bash` from the options and commands snaprsync reads.\n\n");
    o.push_str("_snaprsync()\n{\n    local cur prev words cword split\n    _init_completion -s || return\n\n");
    let _ = writeln!(o, "    local own=\"{}\"", own.join(" "));
    let _ = writeln!(o, "    local commands=\"{}\"", command_names());
    o.push_str(
        "    # The first word that is not one of snaprsync's own options.\n    local i=1\n    \
         while [[ $i -lt $cword && ${words[i]} == --snap-* ]]; do\n        ((i++))\n    done\n\n    if [[ $i -eq $cword ]]; then\n        \
         if [[ ${split-} == true ]]; then\n            case $prev in\n",
    );
    let level_words = format!("COMPREPLY=($(compgen -W \"{}\" -- \"$cur\"))", levels().join(" "));
    for (v, action) in [(Value::File, "_filedir"), (Value::Dir, "_filedir -d"), (Value::Level, level_words.as_str())] {
        let pattern = names(v);
        if !pattern.is_empty() {
            let _ =
                writeln!(o, "                {pattern})\n                    {action}\n                    return\n                    ;;");
        }
    }
    o.push_str(
        "            esac\n        fi\n        if [[ $cur == -* ]]; then\n            COMPREPLY=($(compgen -W \"$own\" -- \"$cur\"))\n            \
         [[ ${COMPREPLY-} == *= ]] && compopt -o nospace\n            return\n        fi\n        \
         COMPREPLY=($(compgen -W \"$commands\" -- \"$cur\"))\n        # Or a local path, rsync's first argument.\n        _filedir\n        return\n    fi\n\n    \
         case ${words[i]} in\n",
    );
    for c in COMMANDS {
        if c.name == crate::cli::EXEC {
            // PATHs, then `--`, then a command, then its arguments (files).
            let _ = writeln!(
                o,
                "        {})\n            local j dashes=0\n            for ((j = i + 1; j < cword; j++)); do\n                \
                 if [[ ${{words[j]}} == -- ]]; then dashes=$j; break; fi\n            done\n            \
                 if [[ $dashes -gt 0 && $((dashes + 1)) -eq $cword ]]; then\n                COMPREPLY=($(compgen -c -- \"$cur\"))\n            \
                 else\n                _filedir\n            fi\n            return\n            ;;",
                c.name
            );
            continue;
        }
        if c.options.is_empty() {
            let _ = writeln!(o, "        {})\n            return\n            ;;", c.name);
            continue;
        }
        let opts = c.options.join(" ");
        let dirs = if c.name == "doctor" { "_filedir -d" } else { "_filedir" };
        let _ = writeln!(
            o,
            "        {})\n            if [[ $cur == -* ]]; then\n                COMPREPLY=($(compgen -W \"{opts}\" -- \"$cur\"))\n                \
             [[ ${{COMPREPLY-}} == *= ]] && compopt -o nospace\n            else\n                {dirs}\n            fi\n            return\n            ;;",
            c.name
        );
    }
    o.push_str(
        "    esac\n\n    # rsync's arguments: rsync's own completion, if the shell has one.\n    \
         declare -F __load_completion >/dev/null && __load_completion rsync 2>/dev/null\n    \
         local spec func\n    spec=$(complete -p rsync 2>/dev/null) && func=${spec##*-F } && func=${func%% *}\n    \
         if [[ -n ${func-} && $func != _snaprsync ]] && declare -F \"$func\" >/dev/null; then\n        \"$func\" rsync \"$cur\" \"$prev\"\n        return\n    fi\n    \
         _filedir\n} &&\n    complete -F _snaprsync snaprsync\n\n# ex: filetype=sh\n",
    );
    o
}

/// Text in single quotes for zsh and bash.
fn single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The zsh completion (`_snaprsync` on fpath).
pub fn zsh() -> String {
    let mut o = String::new();
    o.push_str("#compdef snaprsync\n# Made by `snaprsync __doc zsh` from the options and commands snaprsync reads.\n\n");
    o.push_str("local -a commands valued flags\ncommands=(\n");
    for c in COMMANDS {
        let _ = writeln!(o, "  {}", single_quoted(&format!("{}:{}", c.name, short(c.about).replace(':', "\\:"))));
    }
    o.push_str(")\nvalued=(\n");
    for opt in OPTIONS.iter().filter(|o| o.value.is_some()) {
        let _ = writeln!(o, "  {}", single_quoted(&format!("{}=:{}", opt.name, short(opt.about).replace(':', "\\:"))));
    }
    o.push_str(")\nflags=(\n");
    for opt in OPTIONS.iter().filter(|o| o.value.is_none()) {
        let _ = writeln!(o, "  {}", single_quoted(&format!("{}:{}", opt.name, short(opt.about).replace(':', "\\:"))));
    }
    o.push_str(")\n\n# The first word that is not one of snaprsync's own options.\nlocal i=2\nwhile (( i < CURRENT )) && [[ $words[i] == --snap-* ]]; do\n  (( i++ ))\ndone\n\n");
    o.push_str("if (( i == CURRENT )); then\n  if [[ $PREFIX == --snap-*=* ]]; then\n    local opt=${PREFIX%%=*}\n    compset -P '*='\n    case $opt in\n");
    let names = |v: Value| OPTIONS.iter().filter(|o| value_of(o) == Some(v)).map(|o| o.name).collect::<Vec<_>>().join("|");
    let level_words = format!("compadd -- {}", levels().join(" "));
    for (v, action) in [(Value::File, "_files"), (Value::Dir, "_files -/"), (Value::Level, level_words.as_str())] {
        let pattern = names(v);
        if !pattern.is_empty() {
            let _ = writeln!(o, "      {pattern}) {action} ;;");
        }
    }
    o.push_str(
        "    esac\n  elif [[ $PREFIX == -* ]]; then\n    _describe -t options 'snaprsync option' valued -S ''\n    _describe -t options 'snaprsync option' flags\n  \
         else\n    _describe -t commands 'snaprsync command' commands\n    _files\n  fi\n  return\nfi\n\ncase $words[i] in\n",
    );
    for c in COMMANDS {
        if c.name == crate::cli::EXEC {
            // PATHs, then `--`, then a command completed as if typed alone
            // (its name, then its own completion's arguments).
            let _ = writeln!(
                o,
                "  {})\n    local j dashes=0\n    for (( j = i + 1; j < CURRENT; j++ )); do\n      \
                 if [[ $words[j] == -- ]]; then dashes=$j; break; fi\n    done\n    \
                 if (( dashes == 0 )); then\n      _files\n    else\n      \
                 words=(\"${{(@)words[dashes+1,-1]}}\")\n      (( CURRENT = CURRENT - dashes ))\n      _normal\n    fi\n    ;;",
                c.name
            );
            continue;
        }
        if c.options.is_empty() {
            let _ = writeln!(o, "  {}) ;;", c.name);
            continue;
        }
        let files = if c.name == "doctor" { "_files -/" } else { "_files" };
        let opts: Vec<String> = c.options.iter().map(|x| single_quoted(x)).collect();
        let _ = writeln!(
            o,
            "  {})\n    if [[ $PREFIX == -* ]]; then\n      compadd -S '' -- {}\n    else\n      {files}\n    fi\n    ;;",
            c.name,
            opts.join(" ")
        );
    }
    o.push_str(
        "  *)\n    # rsync's arguments: as if rsync itself were being completed.\n    words=(rsync \"${(@)words[i,-1]}\")\n    (( CURRENT = CURRENT - i + 2 ))\n    _normal\n    ;;\nesac\n",
    );
    o
}

/// Text in single quotes for fish.
fn fish_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The fish completion (vendor_completions.d).
pub fn fish() -> String {
    let mut o = String::new();
    o.push_str("# fish completion for snaprsync\n# Made by `snaprsync __doc fish` from the options and commands snaprsync reads.\n\n");
    o.push_str(
        "# Past snaprsync's own words, the arguments are rsync's.\ncomplete -c snaprsync -w rsync\n\n\
         # True while every word so far is one of snaprsync's own options.\nfunction __snaprsync_first_word\n    set -l words (commandline -opc)\n    set -e words[1]\n    \
         for w in $words\n        string match -q -- '--snap-*' $w; or return 1\n    end\n    return 0\nend\n\n\
         # True if the first word after snaprsync's own options is $argv[1].\nfunction __snaprsync_command_is\n    set -l words (commandline -opc)\n    set -e words[1]\n    \
         for w in $words\n        string match -q -- '--snap-*' $w; and continue\n        test \"$w\" = \"$argv[1]\"\n        return\n    end\n    return 1\nend\n\n\
         # exec's words: `paths` before `--`, `command` right after it, `args` then.\nfunction __snaprsync_exec_is\n    set -l words (commandline -opc)\n    set -e words[1]\n    \
         while set -q words[1]; and string match -q -- '--snap-*' $words[1]\n        set -e words[1]\n    end\n    \
         test \"$words[1]\" = exec; or return 1\n    set -e words[1]\n    set -l dashes (contains -i -- -- $words)\n    \
         if test -z \"$dashes\"\n        test \"$argv[1]\" = paths\n    else if test $dashes -eq (count $words)\n        test \"$argv[1]\" = command\n    \
         else\n        test \"$argv[1]\" = args\n    end\nend\n\n",
    );
    for c in COMMANDS {
        let _ = writeln!(o, "complete -c snaprsync -n __snaprsync_first_word -a {} -d {}", c.name, fish_quoted(&short(c.about)));
    }
    for opt in OPTIONS {
        let long = opt.name.trim_start_matches("--");
        let value = match value_of(opt) {
            None => String::new(),
            Some(Value::File) => " -r -F".into(),
            Some(Value::Dir) => " -x -a '(__fish_complete_directories)'".into(),
            Some(Value::Level) => format!(" -x -a {}", fish_quoted(&levels().join(" "))),
        };
        let _ = writeln!(o, "complete -c snaprsync -n __snaprsync_first_word -l {long}{value} -d {}", fish_quoted(&short(opt.about)));
    }
    let _ = writeln!(o, "complete -c snaprsync -n '__snaprsync_exec_is paths' -F");
    let _ = writeln!(o, "complete -c snaprsync -n '__snaprsync_exec_is command' -x -a '(__fish_complete_command)'");
    let _ = writeln!(o, "complete -c snaprsync -n '__snaprsync_exec_is args' -F");
    for c in COMMANDS {
        for opt in c.options {
            let long = opt.trim_start_matches("--").trim_end_matches('=');
            let value = if opt.ends_with('=') { " -x" } else { "" };
            let _ = writeln!(o, "complete -c snaprsync -n '__snaprsync_command_is {}' -l {long}{value}", c.name);
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_and_command_is_offered() {
        for script in [bash(), zsh(), fish()] {
            for c in COMMANDS {
                assert!(script.contains(c.name), "{} missing", c.name);
            }
            for opt in OPTIONS {
                assert!(script.contains(opt.name.trim_start_matches("--")), "{} missing", opt.name);
            }
        }
        assert_eq!(levels(), ["error", "warn", "info", "debug"]);
    }

    /// zsh's exec branch, run by a real zsh with compsys' `_files` and
    /// `_normal` stood in for by functions that print what they were asked.
    #[cfg(target_os = "linux")]
    #[test]
    fn zsh_completes_exec_paths_then_a_command() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("_snaprsync");
        std::fs::write(&file, zsh()).unwrap();
        let run = |line: &str| {
            let script = format!(
                "_files() {{ print files }}\n_normal() {{ print normal $CURRENT ${{words[*]}} }}\n\
                 words=({line}); CURRENT=${{#words}}; PREFIX=${{words[-1]}}\n\
                 fpath=({} $fpath); autoload -U _snaprsync; _snaprsync",
                single_quoted(&dir.path().display().to_string())
            );
            let out = std::process::Command::new("zsh").args(["-f", "-c", &script]).output().expect("run zsh");
            assert!(out.status.success(), "zsh: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        };
        assert_eq!(run("snaprsync exec af"), "files");
        assert_eq!(run("snaprsync exec /srv /home af"), "files");
        assert_eq!(run("snaprsync exec /srv -- bas"), "normal 1 bas");
        assert_eq!(run("snaprsync --snap-config=x exec /srv -- bash af"), "normal 2 bash af");
    }

    /// fish's exec completions, asked of a real fish as a user's TAB would.
    #[cfg(target_os = "linux")]
    #[test]
    fn fish_completes_exec_paths_then_a_command() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("snaprsync.fish");
        std::fs::write(&file, fish()).unwrap();
        std::fs::write(dir.path().join("afile"), "").unwrap();
        let run = |line: &str| {
            let script = format!("source {}; complete -C{}", fish_quoted(&file.display().to_string()), fish_quoted(line));
            let out =
                std::process::Command::new("fish").args(["--no-config", "-c", &script]).current_dir(dir.path()).output().expect("run fish");
            assert!(out.status.success(), "fish: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap().lines().map(|l| l.split('\t').next().unwrap_or("").to_owned()).collect::<Vec<_>>()
        };
        assert!(run("snaprsync exec af").contains(&"afile".to_owned()));
        let command = run("snaprsync exec /srv -- bas");
        assert!(command.contains(&"bash".to_owned()), "after --: {command:?}");
        assert!(!run("snaprsync exec /srv bas").contains(&"bash".to_owned()), "a command offered before --");
        assert!(run("snaprsync exec /srv -- bash af").contains(&"afile".to_owned()));
    }

    #[test]
    fn quoting() {
        assert_eq!(single_quoted("it's"), "'it'\\''s'");
        assert_eq!(fish_quoted("it's \\"), "'it\\'s \\\\'");
    }
}
