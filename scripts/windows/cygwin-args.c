/* Test helper for snaprsync's Windows tests: a stand-in for a cygwin (or
 * MSYS2) rsync that splits its command line as cygwin's runtime does when
 * started by a native program with globbing off (CYGWIN=noglob): a port of
 * build_argv() and quoted() of winsup/cygwin/dcrt0.cc with winshell = 0,
 * written for the test. Every '"' opens or closes a quoted part and is
 * removed; a backslash is an ordinary character; a word after the first that
 * starts with '@' and whose last quote is not its first character is a
 * response file ("@FILE name" here, read by cygwin). Writes each argument
 * after argv[0], one per line, UTF-8, to the file SNAPRSYNC_ECHO_OUT. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int issep(char c)
{
    return c && strchr(" \t\n\r", c) != NULL;
}

/* quoted (cmd, 0): drop the opening quote and the next one of its kind. */
static char *quoted(char *cmd)
{
    char quote = *cmd;
    memmove(cmd, cmd + 1, strlen(cmd));
    char *p = strchr(cmd, quote);
    if (!p)
        return cmd + strlen(cmd);
    memmove(p, p + 1, strlen(p));
    return p;
}

int main(void)
{
    const wchar_t *wline = GetCommandLineW();
    int n = WideCharToMultiByte(CP_UTF8, 0, wline, -1, NULL, 0, NULL, NULL);
    char *cmd = malloc(n + 1);
    WideCharToMultiByte(CP_UTF8, 0, wline, -1, cmd, n, NULL, NULL);
    wchar_t out[4096];
    FILE *f = stderr;
    if (GetEnvironmentVariableW(L"SNAPRSYNC_ECHO_OUT", out, 4096))
        f = _wfopen(out, L"wb");
    if (!f)
        return 70;
    int argc = 0;
    while (*cmd) {
        if (issep(*cmd)) {
            cmd++;
            continue;
        }
        char *word = cmd, *sawquote = NULL;
        while (*cmd) {
            if (*cmd != '"')
                cmd++;
            else {
                sawquote = cmd;
                cmd = quoted(cmd);
            }
            if (issep(*cmd))
                break;
        }
        if (*cmd)
            *cmd++ = '\0';
        if (argc && sawquote != word && *word == '@')
            fprintf(f, "@FILE %s\n", word + 1);
        else if (argc)
            fprintf(f, "%s\n", word);
        argc++;
    }
    fclose(f);
    return 0;
}
