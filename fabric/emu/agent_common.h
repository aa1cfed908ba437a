/* Shared by the traffic agents (sender.c, receiver.c): fatal errors and reading whole files.
 * Each agent defines AGENT_NAME (its binary's name, the prefix of its error lines) before
 * including this header. */
#ifndef FABRIC_AGENT_COMMON_H
#define FABRIC_AGENT_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The wire format is declared once, in fabric/probe.py; fabric.emu.native passes it with -D. */
#if !defined(PROBE_HEADER_BYTES) || !defined(WIRE_OVERHEAD_BYTES)
#error "build with fabric.emu.native (python -m fabric.emu.native): it passes the wire format of fabric/probe.py"
#endif

/* One line on stderr, then exit 1: the runner shows the last line to the user. */
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, AGENT_NAME ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void *read_whole_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        die("cannot stat %s: %s", path, strerror(errno));
    *size = (size_t)st.st_size;
    char *buf = malloc(*size + 1);
    if (!buf)
        die("out of memory reading %s (%zu bytes)", path, *size);
    if (*size && fread(buf, 1, *size, f) != *size)
        die("cannot read %s: %s", path, strerror(errno));
    fclose(f);
    return buf;
}

#endif
