#!/usr/bin/env bash
# Builds snaprsync's RPM (for Fedora, openSUSE and the like; built on Debian 12):
#   scripts/rpm.sh            prints the .rpm's path on its last line
# It holds the files the .deb holds, from the same list: the assets are
# derived here from [package.metadata.deb]'s in Cargo.toml (one rule: the
# systemd unit goes to /usr/lib/systemd/system, these distributions' unit
# directory; files under /etc are config(noreplace), those under
# /usr/share/doc and /usr/share/man are docs). The generated files
# (man pages, completions, sample config) are made as scripts/deb.sh makes
# them. The scriptlets are dist/rpm/'s; %preun ends with the .deb's prerm,
# so that erasing cleans up what crashed runs left, as dpkg -r does.
# cargo-generate-rpm is installed with `cargo install` if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
CGR_VERSION=0.21.1
if ! cargo generate-rpm --version 2>/dev/null | grep -qF "$CGR_VERSION"; then
  echo "rpm.sh: cargo-generate-rpm $CGR_VERSION is missing; installing it with cargo install --locked" >&2
  cargo install --locked --version "$CGR_VERSION" cargo-generate-rpm
fi
command -v jq >/dev/null || { echo "rpm.sh: jq is missing (apt install jq)" >&2; exit 1; }
meta=$(cargo metadata --locked --no-deps --format-version 1)
target=$(jq -r .target_directory <<<"$meta")

cargo build --locked --release --bin snaprsync
bin=$target/release/snaprsync
assets=$target/release/deb-assets
scripts/doc-assets.sh "$bin" "$assets"

out=$target/rpm
mkdir -p "$out"
cat dist/rpm/preun dist/debian/prerm >"$out/preun.sh"
# The .deb's assets as cargo-generate-rpm's, written as a TOML overlay
# (JSON strings are TOML strings).
jq -r --arg preun "$out/preun.sh" '
  .packages[] | select(.name == "snaprsync") | .metadata.deb.assets
  | map({source: .[0], dest: ("/" + (.[1] | sub("^lib/systemd/system/"; "usr/lib/systemd/system/"))), mode: .[2]}
      | . + (if (.dest | startswith("/etc/")) then {config: "noreplace"} else {} end)
      | . + (if (.dest | test("^/usr/share/(doc|man)/")) then {doc: true} else {} end))
  | "pre_uninstall_script = \($preun | tojson)\nassets = [\n"
    + (map("  { " + (to_entries | map("\(.key) = \(.value | tojson)") | join(", ")) + " },") | join("\n"))
    + "\n]"' <<<"$meta" >"$out/assets.toml"
cargo generate-rpm --metadata-overwrite="$out/assets.toml" --output "$out/" >&2
version=$(jq -r '.packages[] | select(.name == "snaprsync") | .version' <<<"$meta")
rpm=$(ls -t "$out"/snaprsync-"$version"-*.rpm | head -n 1)
echo "$rpm"
