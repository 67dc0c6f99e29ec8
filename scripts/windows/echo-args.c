/* Test helper for snaprsync's Windows tests, standing in for rsync: writes
 * each argument it got (as CommandLineToArgvW splits its command line) to the
 * file named by SNAPRSYNC_ECHO_OUT, one per line, UTF-8; for each argument
 * that is a directory, also the contents of its probe.txt ("read <arg>: ...");
 * then, when run by exec (SNAPRSYNC_EXPOSE set), each SNAPRSYNC_* variable
 * but its own ("env NAME=VALUE") and the
 * probe.txt in SNAPRSYNC_PATH_0 ("read-path0: ..."), which is what exec tells
 * a command; sleeps SNAPRSYNC_ECHO_SLEEP ms; exits with SNAPRSYNC_ECHO_EXIT.
 * Run as a hook (SNAPRSYNC_HOOK set), it instead appends "hook NAME STATE" to
 * SNAPRSYNC_ECHO_HOOK_OUT, overwrites the file SNAPRSYNC_ECHO_CLOBBER (a live
 * change after the snapshot) and exits 0. Given --list-only first, it
 * instead lists the directory named by its last argument on stdout, one
 * "-rw-r--r--  SIZE 2026/01/01 00:00:00 NAME" line per entry, as rsync does;
 * given -n first, "544:513 NAME" per entry of its last but one argument, as
 * rsync's dry run with --out-format='%U:%G %n' does.
 * With SNAPRSYNC_ECHO_PRIVS set, it also writes "priv NAME enabled|disabled|
 * absent" for SeBackupPrivilege and SeRestorePrivilege in the token it got. */
#include <windows.h>
#include <shellapi.h>
#include <stdio.h>
#include <stdlib.h>

static void put(FILE *f, const wchar_t *w)
{
    char buf[8192];
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, sizeof buf, NULL, NULL);
    if (n > 0)
        fputs(buf, f);
}

static void probe(FILE *f, const char *label, const wchar_t *dir)
{
    wchar_t p[8192];
    size_t len = wcslen(dir);
    if (len == 0 || len > 8000)
        return;
    wcscpy(p, dir);
    if (p[len - 1] != L'\\' && p[len - 1] != L'/')
        wcscat(p, L"\\");
    wcscat(p, L"probe.txt");
    FILE *r = _wfopen(p, L"rb");
    if (!r)
        return;
    char line[1024] = {0};
    size_t got = fread(line, 1, sizeof line - 1, r);
    fclose(r);
    line[got] = 0;
    fputs(label, f);
    put(f, dir);
    fputs(": ", f);
    fputs(line, f);
    fputs("\n", f);
}

static int hook(void)
{
    wchar_t out[4096], name[256], state[256], clobber[4096];
    if (GetEnvironmentVariableW(L"SNAPRSYNC_ECHO_HOOK_OUT", out, 4096)) {
        FILE *f = _wfopen(out, L"ab");
        if (!f)
            return 70;
        if (!GetEnvironmentVariableW(L"SNAPRSYNC_HOOK", name, 256))
            name[0] = 0;
        if (!GetEnvironmentVariableW(L"SNAPRSYNC_SNAPSHOT", state, 256))
            wcscpy(state, L"-");
        fputs("hook ", f);
        put(f, name);
        fputs(" ", f);
        put(f, state);
        fputs("\n", f);
        fclose(f);
    }
    if (GetEnvironmentVariableW(L"SNAPRSYNC_ECHO_CLOBBER", clobber, 4096)) {
        FILE *c = _wfopen(clobber, L"wb");
        if (!c)
            return 71;
        fputs("changed after the snapshot", c);
        fclose(c);
    }
    return 0;
}

/* The first entry of DIR into FD: its search handle, or INVALID_HANDLE_VALUE. */
static HANDLE first_entry(const wchar_t *dir, WIN32_FIND_DATAW *fd)
{
    wchar_t pattern[8192];
    size_t len = wcslen(dir);
    if (len == 0 || len > 8000)
        return INVALID_HANDLE_VALUE;
    wcscpy(pattern, dir);
    if (pattern[len - 1] != L'\\' && pattern[len - 1] != L'/')
        wcscat(pattern, L"\\");
    wcscat(pattern, L"*");
    return FindFirstFileW(pattern, fd);
}

static int list_only(const wchar_t *dir)
{
    WIN32_FIND_DATAW fd;
    HANDLE h = first_entry(dir, &fd);
    if (h == INVALID_HANDLE_VALUE)
        return 23;
    do {
        if (wcscmp(fd.cFileName, L"..") == 0)
            continue;
        int is_dir = (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) != 0;
        printf("%s %14lu 2026/01/01 00:00:00 ", is_dir ? "drwxr-xr-x" : "-rw-r--r--", (unsigned long)fd.nFileSizeLow);
        put(stdout, fd.cFileName);
        fputs("\n", stdout);
    } while (FindNextFileW(h, &fd));
    FindClose(h);
    return 0;
}

/* As `rsync -n -d -go --numeric-ids --out-format='%U:%G %n' SRC DEST`:
 * "544:513 NAME" per entry of SRC ("./" for itself, "NAME/" for a folder). */
static int owners(const wchar_t *dir)
{
    WIN32_FIND_DATAW fd;
    HANDLE h = first_entry(dir, &fd);
    if (h == INVALID_HANDLE_VALUE)
        return 23;
    do {
        if (wcscmp(fd.cFileName, L"..") == 0)
            continue;
        fputs("544:513 ", stdout);
        if (wcscmp(fd.cFileName, L".") == 0)
            put(stdout, L".");
        else
            put(stdout, fd.cFileName);
        fputs((fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) ? "/\n" : "\n", stdout);
    } while (FindNextFileW(h, &fd));
    FindClose(h);
    return 0;
}

static void privilege(FILE *f, HANDLE token, const wchar_t *name)
{
    static DWORD buf[4096];
    DWORD len = 0;
    LUID luid;
    const char *state = "absent";
    if (!LookupPrivilegeValueW(NULL, name, &luid) || !GetTokenInformation(token, TokenPrivileges, buf, sizeof buf, &len))
        state = "unknown";
    else {
        TOKEN_PRIVILEGES *tp = (TOKEN_PRIVILEGES *)buf;
        for (DWORD i = 0; i < tp->PrivilegeCount; i++)
            if (tp->Privileges[i].Luid.LowPart == luid.LowPart && tp->Privileges[i].Luid.HighPart == luid.HighPart)
                state = (tp->Privileges[i].Attributes & SE_PRIVILEGE_ENABLED) ? "enabled" : "disabled";
    }
    fputs("priv ", f);
    put(f, name);
    fputs(" ", f);
    fputs(state, f);
    fputs("\n", f);
}

static void privileges(FILE *f)
{
    HANDLE token;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
        return;
    privilege(f, token, L"SeBackupPrivilege");
    privilege(f, token, L"SeRestorePrivilege");
    CloseHandle(token);
}

int main(void)
{
    wchar_t hookname[64];
    if (GetEnvironmentVariableW(L"SNAPRSYNC_HOOK", hookname, 64))
        return hook();
    int argc = 0;
    wchar_t **argv = CommandLineToArgvW(GetCommandLineW(), &argc);
    if (argc >= 3 && wcscmp(argv[1], L"--list-only") == 0)
        return list_only(argv[argc - 1]);
    if (argc >= 4 && wcscmp(argv[1], L"-n") == 0)
        return owners(argv[argc - 2]);
    wchar_t out[4096], num[64];
    FILE *f = stderr;
    if (GetEnvironmentVariableW(L"SNAPRSYNC_ECHO_OUT", out, 4096))
        f = _wfopen(out, L"wb");
    if (!f)
        return 70;
    for (int i = 1; i < argc; i++) {
        put(f, argv[i]);
        fputs("\n", f);
    }
    for (int i = 1; i < argc; i++)
        probe(f, "read ", argv[i]);
    /* Only as exec's command: rsync's tests compare every line. */
    wchar_t expose[64];
    wchar_t *env = GetEnvironmentVariableW(L"SNAPRSYNC_EXPOSE", expose, 64) ? GetEnvironmentStringsW() : NULL;
    for (wchar_t *e = env; e && *e; e += wcslen(e) + 1) {
        if (wcsncmp(e, L"SNAPRSYNC_", 10) == 0 && wcsncmp(e, L"SNAPRSYNC_ECHO_", 15) != 0) {
            fputs("env ", f);
            put(f, e);
            fputs("\n", f);
        }
    }
    if (env)
        FreeEnvironmentStringsW(env);
    wchar_t path0[4096];
    if (GetEnvironmentVariableW(L"SNAPRSYNC_PATH_0", path0, 4096))
        probe(f, "read-path0 ", path0);
    if (GetEnvironmentVariableW(L"SNAPRSYNC_ECHO_PRIVS", num, 64))
        privileges(f);
    fflush(f);
    if (f != stderr)
        fclose(f);
    if (GetEnvironmentVariableW(L"SNAPRSYNC_ECHO_SLEEP", num, 64))
        Sleep((DWORD)_wtoi(num));
    if (GetEnvironmentVariableW(L"SNAPRSYNC_ECHO_EXIT", num, 64))
        return _wtoi(num);
    return 0;
}
