#!/usr/bin/env bash
# Writes the files both Linux packages ship beside the binary, made from the
# program's own tables (`snaprsync __doc`): the man pages, the sample config
# and the bash, zsh and fish completions.
#
#   scripts/doc-assets.sh BINARY DIR    (DIR is emptied first)
set -euo pipefail
bin=$1 assets=$2
rm -rf "$assets"
mkdir -p "$assets"
"$bin" __doc man1 | gzip -9n >"$assets/snaprsync.1.gz"
"$bin" __doc man5 | gzip -9n >"$assets/snaprsync.toml.5.gz"
"$bin" __doc config >"$assets/config.sample.toml"
"$bin" __doc bash >"$assets/snaprsync.bash"
"$bin" __doc zsh >"$assets/_snaprsync"
"$bin" __doc fish >"$assets/snaprsync.fish"
