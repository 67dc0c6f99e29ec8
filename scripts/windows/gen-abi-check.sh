#!/bin/sh
# Writes a C program that prints, from mingw-w64's own headers, every vtable
# slot of the VSS interfaces snaprsync calls (and COM's IGlobalOptions), the layout of VSS_SNAPSHOT_PROP
# and the VSS HRESULT values. snaprsync's Rust binding is compared against its
# output by the unit test provider::vss::tests::binding_matches_mingw_headers.
# The method lists are read from the headers themselves, so a method snaprsync
# lacks, or one in the wrong place, shows up as a difference.
set -eu
INC=${MINGW_INCLUDE:-/usr/share/mingw-w64/include}
[ -r "$INC/vsbackup.h" ] || { echo "gen-abi-check: $INC/vsbackup.h not found" >&2; exit 1; }

methods() { # header interface
    sed -n "/typedef struct $2Vtbl {/,/} $2Vtbl;/p" "$1" |
        sed -n 's/.*(STDMETHODCALLTYPE \*\([A-Za-z0-9_]*\)).*/\1/p'
}

cat <<'C'
#include <windows.h>
#include <stddef.h>
#include <stdio.h>
#include <vss.h>
#include <vsbackup.h>
#include <vsserror.h>

#define SLOT(I, M) printf("slot %s %s %u\n", #I, #M, (unsigned)(offsetof(I##Vtbl, M) / sizeof(void *)))
#define SLOTS(I) printf("slots %s %u\n", #I, (unsigned)(sizeof(I##Vtbl) / sizeof(void *)))
#define FIELD(S, F) printf("field %s %s %u\n", #S, #F, (unsigned)offsetof(S, F))
#define SIZE(S) printf("size %s %u\n", #S, (unsigned)sizeof(S))
#define HR(C) printf("hresult %s 0x%08lx\n", #C, (unsigned long)(C))

int main(void)
{
C
for iface in IVssBackupComponents:vsbackup.h IVssAsync:vss.h IGlobalOptions:objidl.h; do
    name=${iface%%:*}
    header=$INC/${iface#*:}
    n=0
    for m in $(methods "$header" "$name"); do
        echo "    SLOT($name, $m);"
        n=$((n + 1))
    done
    [ "$n" -gt 3 ] || { echo "gen-abi-check: no methods of $name in $header" >&2; exit 1; }
    echo "    SLOTS($name);"
done
for f in $(sed -n '/typedef struct _VSS_SNAPSHOT_PROP {/,/} VSS_SNAPSHOT_PROP;/p' "$INC/vss.h" |
        sed -n 's/^ *[A-Z_]* \(m_[A-Za-z]*\);/\1/p'); do
    echo "    FIELD(VSS_SNAPSHOT_PROP, $f);"
done
echo "    SIZE(VSS_SNAPSHOT_PROP);"
echo "    SIZE(VSS_ID);"
for c in $(sed -n 's/^#define \(VSS_[ES]_[A-Z0-9_]*\) ((HRESULT)0x.*/\1/p' "$INC/vsserror.h"); do
    echo "    HR($c);"
done
for c in E_ACCESSDENIED E_NOTIMPL E_INVALIDARG E_OUTOFMEMORY REGDB_E_CLASSNOTREG RPC_E_TOO_LATE \
         VSS_CTX_BACKUP VSS_BT_COPY VSS_BT_FULL VSS_WS_FAILED_AT_IDENTIFY VSS_WS_FAILED_AT_BACKUPSHUTDOWN \
         COMGLB_EXCEPTION_HANDLING COMGLB_EXCEPTION_DONOT_HANDLE; do
    echo "    HR($c);"
done
cat <<'C'
    return 0;
}
C
