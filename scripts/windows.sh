#!/usr/bin/env bash
# Builds and tests the Windows (x86_64) snaprsync.exe on Debian 12.
#
#   scripts/windows.sh setup          install the cross toolchain and wine, make the wine prefix
#   scripts/windows.sh build [--release]
#   scripts/windows.sh test [ARGS]    the Windows test suite under wine, plus the VSS binding check
#                                     and the event log's (records and the MSI's registration)
#   scripts/windows.sh check-abi      only the VSS binding check (vtable slots vs mingw-w64 headers)
#   scripts/windows.sh dist           release zip (and MSI when wixl is present) under target/dist/
#   scripts/windows.sh cargo ARGS     any cargo command for the Windows target
#
# The Linux build is untouched: everything Windows goes through this script, with
# its own target directory, and cargo's Windows settings given as --config flags.
# Every step fails loudly: any error ends the script with a non-zero status.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TRIPLE=x86_64-pc-windows-gnu
WORK="$ROOT/target/windows"
export CARGO_TARGET_DIR="$WORK/cargo"
export WINEPREFIX="$WORK/wineprefix"
export WINEDEBUG=-all
export WINEARCH=win64
export WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d"
unset DISPLAY
SHIM_DIR="$WORK/shim"
export WINEPATH="$SHIM_DIR"

PACKAGES=(rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64 wine64 wine msitools wixl zip)

log() { printf 'windows.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Debian's Rust (which has the library source matching its compiler) must win
# over any rustup toolchain on PATH.
use_debian_rust() {
    export PATH="/usr/bin:$PATH"
    export CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
    export RUSTC_BOOTSTRAP=1
    [[ -x /usr/bin/cargo && -x /usr/bin/rustc ]] || die "Debian's cargo/rustc are missing: run scripts/windows.sh setup"
    [[ -e /usr/lib/rustlib/src/rust/library/std ]] || die "rust-web-src is missing: run scripts/windows.sh setup"
}

# The application manifest (dist/windows/snaprsync.manifest: longPathAware,
# asInvoker) as an object of resources, linked into every exe of the build.
manifest_object() {
    # Named by its inputs' hash: a changed manifest changes the rustflags, so
    # that cargo links again (it does not watch a linker argument's file).
    local hash obj
    hash=$(cat "$ROOT/dist/windows/snaprsync.rc" "$ROOT/dist/windows/snaprsync.manifest" | sha256sum | cut -c1-12)
    obj="$WORK/resources/snaprsync-rc-$hash.o"
    mkdir -p "$WORK/resources"
    if [[ ! -e "$obj" ]]; then
        x86_64-w64-mingw32-windres --input-format=rc --output-format=coff \
            -I "$ROOT/dist/windows" -i "$ROOT/dist/windows/snaprsync.rc" -o "$obj"
    fi
    printf '%s' "$obj"
}

cargo_win() {
    use_debian_rust
    local sub=$1; shift
    local rc
    rc=$(manifest_object)
    /usr/bin/cargo "$sub" --target "$TRIPLE" \
        --config "target.$TRIPLE.rustflags=[\"-C\", \"link-arg=$rc\"]" \
        --config "target.$TRIPLE.linker=\"x86_64-w64-mingw32-gcc\"" \
        --config "target.$TRIPLE.ar=\"x86_64-w64-mingw32-ar\"" \
        --config "target.$TRIPLE.runner=\"$ROOT/scripts/windows/wine-run\"" \
        -Zbuild-std=std,panic_abort "$@"
}

setup() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        [[ $(id -u) == 0 ]] || die "installing packages needs root (or install: ${missing[*]})"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
    # rust-web-src must be the very version of rustc-web.
    local rv sv
    rv=$(dpkg-query -W -f='${Version}' rustc-web)
    sv=$(dpkg-query -W -f='${Version}' rust-web-src)
    [[ "$rv" == "$sv" ]] || die "rustc-web $rv and rust-web-src $sv differ; install matching versions"

    # Rust's std imports ProcessPrng from bcryptprimitives.dll, which Wine 8 lacks:
    # a one-function stand-in lets test executables start under wine. It is
    # only ever on WINEPATH for tests, never shipped.
    mkdir -p "$SHIM_DIR"
    if [[ ! -e "$SHIM_DIR/bcryptprimitives.dll" || "$ROOT/scripts/windows/processprng.c" -nt "$SHIM_DIR/bcryptprimitives.dll" ]]; then
        x86_64-w64-mingw32-gcc -O2 -shared -o "$SHIM_DIR/bcryptprimitives.dll" \
            "$ROOT/scripts/windows/processprng.c" "$ROOT/scripts/windows/processprng.def" -ladvapi32
    fi
    if [[ ! -e "$WINEPREFIX/system.reg" ]]; then
        log "creating the wine prefix"
        mkdir -p "$WINEPREFIX"
        wineboot -i >/dev/null 2>&1 || die "wineboot -i failed"
        wineserver -w || true
    fi
    log "setup done: $(/usr/bin/rustc --version), $(wine --version)"
}

check_abi() {
    # Ground truth: the vtable slots and struct offsets of mingw-w64's own headers.
    local out="$WORK/abi"
    mkdir -p "$out"
    "$ROOT/scripts/windows/gen-abi-check.sh" > "$out/abi_check.c"
    x86_64-w64-mingw32-gcc -Wall -Werror -o "$out/abi_check.exe" "$out/abi_check.c"
    "$ROOT/scripts/windows/wine-run" "$out/abi_check.exe" > "$out/header-abi.txt"
    tr -d '\r' < "$out/header-abi.txt" > "$out/header-abi.txt.tmp" && mv "$out/header-abi.txt.tmp" "$out/header-abi.txt"
    local n
    n=$(grep -c . "$out/header-abi.txt")
    ((n > 60)) || die "the header ABI dump has only $n lines"
    log "header ABI: $n entries in $out/header-abi.txt"
    SNAPRSYNC_HEADER_ABI=$(winepath -w "$out/header-abi.txt" 2>/dev/null)
    export SNAPRSYNC_HEADER_ABI
}

helpers() {
    # A stand-in for rsync that records its exact argv (see echo-args.c).
    mkdir -p "$WORK/helpers"
    x86_64-w64-mingw32-gcc -Wall -Werror -O2 -o "$WORK/helpers/echo-args.exe" "$ROOT/scripts/windows/echo-args.c" -lshell32 -ladvapi32
    SNAPRSYNC_ECHO_EXE=$(winepath -w "$WORK/helpers/echo-args.exe" 2>/dev/null)
    export SNAPRSYNC_ECHO_EXE
    # A stand-in for a cygwin rsync: splits its command line by cygwin's rules (see cygwin-args.c).
    x86_64-w64-mingw32-gcc -Wall -Werror -O2 -o "$WORK/helpers/cygwin-args.exe" "$ROOT/scripts/windows/cygwin-args.c"
    SNAPRSYNC_CYGWIN_ARGS_EXE=$(winepath -w "$WORK/helpers/cygwin-args.exe" 2>/dev/null)
    export SNAPRSYNC_CYGWIN_ARGS_EXE
    # A folder on C: that leads to another volume (Z:, wine's view of /). Wine
    # 8 cannot make an NTFS junction; a symbolic link in the drive's directory
    # behaves like one for every Win32 path call snaprsync makes.
    local links="$WINEPREFIX/drive_c/snaprsync-links" target="$WORK/links-target"
    rm -rf "$links" "$target"
    mkdir -p "$links/data" "$target/sub"
    echo "on the other volume" > "$target/sub/probe.txt"
    echo "on C:" > "$links/data/probe.txt"
    ln -s "$target" "$links/data/link"
    SNAPRSYNC_LINK_FIXTURE='C:\snaprsync-links\data'
    SNAPRSYNC_LINK_TARGET=$(winepath -w "$target" 2>/dev/null)
    export SNAPRSYNC_LINK_FIXTURE SNAPRSYNC_LINK_TARGET
}

run_tests() {
    check_abi
    helpers
    # The exe itself, for the check of its embedded manifest.
    cargo_win build --bin snaprsync
    SNAPRSYNC_EXE=$(winepath -w "$CARGO_TARGET_DIR/$TRIPLE/debug/snaprsync.exe" 2>/dev/null)
    export SNAPRSYNC_EXE
    # The crate's unit tests (VSS binding check among them) and the Windows
    # integration tests, all run under wine.
    cargo_win test --lib --bins "$@"
    eventlog_check "$CARGO_TARGET_DIR/$TRIPLE/debug/snaprsync.exe"
    wineserver -k 2>/dev/null || true
}

# The Application event log, as far as wine has one. Wine keeps no event log:
# its ReadEventLogW is not implemented, and it has no wevtutil, eventvwr or
# EventCreate.exe. Its ReportEventW writes each record's string to the
# `eventlog` debug channel instead ("err:" for an error, "warn:" for a
# warning, "trace:" for information), which is read back here from the real
# exe's records of each type. Then the MSI (made by dist/snaprsync.wxs from
# this exe) is installed with wine's msiexec: the source's registry values
# must be there, and gone after the uninstall. How Event Viewer renders a
# record through EventCreate.exe only real Windows shows.
eventlog_check() {
    local exe=$1 dir="$WORK/eventlog" wdir
    rm -rf "$dir" && mkdir -p "$dir/data"
    wdir=$(winepath -w "$dir" 2>/dev/null)
    # records LOG ON_FAILURE ARGS...: the eventlog lines of one run, its status in $dir/status.
    records() {
        local log=$1 on_failure=$2 status=0; shift 2
        printf 'log = "%s"\nlog_level = "info"\non_snapshot_failure = "%s"\nstate_dir = "%s"\n' \
            "$log" "$on_failure" "${wdir//\\/\\\\}\\\\state" >"$dir/config.toml"
        WINEDEBUG=-all,+eventlog wine "$exe" "--snap-config=$wdir\\config.toml" "$@" >/dev/null 2>"$dir/stderr" || status=$?
        echo "$status" >"$dir/status"
        grep -a ':eventlog:ReportEventW ' "$dir/stderr" || true
    }
    local got
    # VSS is not there under wine: the run goes live, with a warning record.
    got=$(records auto live exec "$wdir\\data" -- cmd.exe /c "exit 7")
    [[ $(cat "$dir/status") == 7 ]] || die "eventlog: the live run ended with $(cat "$dir/status"), not 7: $(cat "$dir/stderr")"
    grep -q ':warn:eventlog:ReportEventW L"VSS ' <<<"$got" || die "eventlog: log = \"auto\" wrote no warning record: $(cat "$dir/stderr")"
    ! grep -q ':err:' <<<"$got" || die "eventlog: a live run wrote an error record: $got"
    got=$(records eventlog fail exec "$wdir\\data" -- cmd.exe /c "exit 7")
    [[ $(cat "$dir/status") != 7 && $(cat "$dir/status") != 0 ]] || die "eventlog: the failed run ended with $(cat "$dir/status")"
    grep -q ':err:eventlog:ReportEventW L"VSS ' <<<"$got" || die "eventlog: log = \"eventlog\" wrote no error record: $(cat "$dir/stderr")"
    got=$(records eventlog fail doctor "$wdir\\data")
    grep -q ':trace:eventlog:ReportEventW L"doctor: a test record' <<<"$got" || die "eventlog: doctor wrote no information record: $(cat "$dir/stderr")"
    got=$(records stderr live exec "$wdir\\data" -- cmd.exe /c "exit 7")
    [[ -z $got ]] || die "eventlog: log = \"stderr\" wrote to the event log: $got"
    log "eventlog: error, warning and information records reach ReportEventW; log = \"stderr\" writes none"

    # The MSI registers the source, and its uninstall removes it.
    local stage="$dir/stage" key='HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\snaprsync' values
    mkdir -p "$stage"
    cp "$exe" "$stage/snaprsync.exe"
    cp "$ROOT/dist/config.sample.toml" "$stage/config.sample.toml"
    cp "$ROOT/docs/windows.md" "$stage/WINDOWS.md"
    (cd "$stage" && wixl -a x64 -D Version=0.0.0 -o "$dir/test.msi" "$ROOT/dist/snaprsync.wxs")
    wine msiexec /i "$(winepath -w "$dir/test.msi" 2>/dev/null)" /qn || die "eventlog: msiexec /i failed"
    values=$(wine reg query "$key" 2>/dev/null | tr -d '\r') || die "eventlog: the MSI did not create $key"
    wine msiexec /x "$(winepath -w "$dir/test.msi" 2>/dev/null)" /qn || die "eventlog: msiexec /x failed"
    grep -Eq '^ +EventMessageFile +REG_EXPAND_SZ +%SystemRoot%\\System32\\EventCreate\.exe$' <<<"$values" || die "eventlog: EventMessageFile: $values"
    grep -Eq '^ +TypesSupported +REG_DWORD +0x7$' <<<"$values" || die "eventlog: TypesSupported: $values"
    grep -Eq '^ +CustomSource +REG_DWORD +0x1$' <<<"$values" || die "eventlog: CustomSource: $values"
    ! wine reg query "$key" >/dev/null 2>&1 || die "eventlog: the uninstall left $key"
    log "eventlog: the MSI registers the source (EventCreate.exe as REG_EXPAND_SZ, types 7) and its uninstall removes it"
}

dist() {
    cargo_win build --release --bin snaprsync
    local version exe out stage
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
    exe="$CARGO_TARGET_DIR/$TRIPLE/release/snaprsync.exe"
    out="$ROOT/target/dist"
    stage="$out/snaprsync-$version-windows-x86_64"
    rm -rf "$stage" && mkdir -p "$stage"
    cp "$exe" "$stage/snaprsync.exe"
    cp "$ROOT/dist/config.sample.toml" "$stage/config.sample.toml"
    [[ -e "$ROOT/README.md" ]] && cp "$ROOT/README.md" "$stage/README.md"
    cp "$ROOT/docs/windows.md" "$stage/WINDOWS.md"
    (cd "$out" && rm -f "$(basename "$stage").zip" && zip -q -r "$(basename "$stage").zip" "$(basename "$stage")")
    log "built $out/$(basename "$stage").zip"
    if command -v wixl >/dev/null; then
        # wixl finds the files named in the .wxs relative to the current directory.
        (cd "$stage" && wixl -a x64 -D Version="$version" \
            -o "$out/snaprsync-$version-x86_64.msi" "$ROOT/dist/snaprsync.wxs")
        log "built $out/snaprsync-$version-x86_64.msi"
    else
        log "wixl not found: no MSI (install msitools' wixl)"
    fi
}

cmd=${1:-}
shift || true
case "$cmd" in
    setup) setup ;;
    build)
        if [[ "${1:-}" == --release ]]; then cargo_win build --release --bin snaprsync; else cargo_win build --bin snaprsync; fi
        log "built $CARGO_TARGET_DIR/$TRIPLE/$([[ "${1:-}" == --release ]] && echo release || echo debug)/snaprsync.exe" ;;
    test) run_tests "$@" ;;
    check-abi) check_abi ;;
    eventlog) eventlog_check "$CARGO_TARGET_DIR/$TRIPLE/debug/snaprsync.exe" ;;
    dist) dist ;;
    cargo) sub=$1; shift; cargo_win "$sub" "$@" ;;
    *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
