/* Test helper for snaprsync's Windows tests, standing in for rsync: writes
 * each argument it got (as CommandLineToArgvW splits its command line) to the
 * file named by SNAPRSYNC_ECHO_OUT, one per line, UTF-8; for each argument
 * that is a directory, also the contents of its probe.txt ("read <arg>: ...");
 * sleeps SNAPRSYNC_ECHO_SLEEP ms; exits with SNAPRSYNC_ECHO_EXIT. */
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

int main(void)
{
    int argc = 0;
    wchar_t **argv = CommandLineToArgvW(GetCommandLineW(), &argc);
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
    for (int i = 1; i < argc; i++) {
        wchar_t p[8192];
        size_t len = wcslen(argv[i]);
        if (len == 0 || len > 8000)
            continue;
        wcscpy(p, argv[i]);
        if (p[len - 1] != L'\\' && p[len - 1] != L'/')
            wcscat(p, L"\\");
        wcscat(p, L"probe.txt");
        FILE *r = _wfopen(p, L"rb");
        if (!r)
            continue;
        char line[1024] = {0};
        size_t got = fread(line, 1, sizeof line - 1, r);
        fclose(r);
        line[got] = 0;
        fputs("read ", f);
        put(f, argv[i]);
        fputs(": ", f);
        fputs(line, f);
        fputs("\n", f);
    }
    fflush(f);
    if (f != stderr)
        fclose(f);
    if (GetEnvironmentVariableW(L"SNAPRSYNC_ECHO_SLEEP", num, 64))
        Sleep((DWORD)_wtoi(num));
    if (GetEnvironmentVariableW(L"SNAPRSYNC_ECHO_EXIT", num, 64))
        return _wtoi(num);
    return 0;
}
