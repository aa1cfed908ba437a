/*
 * fabric-receiver: records every probe packet that reaches an emulated host, with no interpreter in the
 * per-packet path.
 *
 * Usage: fabric-receiver PLAN_FILE OUT_FILE STOP_FD READY_FD
 *
 * Built and started by fabric/emu/native.py and fabric/emu/runner.py (one process per run, for all
 * destination hosts). It does what the former Python receiver (run_receiver in agents.py) did:
 *
 * - one UDP socket per destination host, created inside the host's network namespace (setns into
 *   /proc/<pid>/ns/net, socket, bind 0.0.0.0:udp_dst_port, then back: a socket stays in the namespace
 *   it was created in), with a 32 MB receive buffer (SO_RCVBUFFORCE), SO_TIMESTAMPNS (the kernel's
 *   receive time, CLOCK_REALTIME) and IP_RECVTOS (the DSCP the core switch wrote = the packet's path);
 * - all sockets served through one epoll, drained in batches with recvmmsg(MSG_DONTWAIT); only the
 *   28-byte probe header is read (MSG_TRUNC: the rest of the datagram is discarded in the kernel).
 *   After a drain that found packets it pauses COALESCE_NS before waiting again, so that it wakes up
 *   once per batch, not once per packet (the kernel stamps the packets on arrival: the pause does not
 *   move rx_ns; the 32 MB buffers hold far more than a pause's worth of packets);
 * - per packet index (offset[msg] + seq): the first copy's receive time and path, and the number of
 *   copies; datagrams that are not one of this run's probes are counted in `unknown`.
 *
 * Handshake (the runner's agent protocol): once every socket is bound it writes one byte to READY_FD
 * (then closes it). It stops when STOP_FD becomes readable (or hung up; it never reads from it: other
 * agents watch the same pipe) or on SIGTERM/SIGINT, drains every socket one last time, writes OUT_FILE
 * and exits 0. It runs at nice 0 (the senders run at -10 and wake up first).
 *
 * Plan file (written by fabric/emu/native.py:write_receiver_plan; all fields little-endian):
 *
 *   offset  type           field
 *   0       char[8]        "FABRECV1"
 *   8       int64          n_msgs         messages in the run (wire ids 0..n_msgs-1)
 *   16      int64          n_hosts        hosts to receive for (the destination hosts)
 *   24      int64          udp_dst_port   UDP port of the probes
 *   32      int64          probe_magic    magic of the probe header
 *   40      int64[n_msgs]  packets        packets in each message (>= 1)
 *           int64[n_hosts] host_pid       a process in each receiving host's network namespace
 *
 * Out file (raw little-endian, no header; P = total packets = sum of packets):
 *   int64[P] rx_ns (kernel receive time of the first copy, -1: never received or no stamp),
 *   int16[P] copies, int16[P] path ((tos >> 2) - 1 of the first copy; -1: none), int64 unknown.
 *   Packet index = (sum of packets of messages before it) + seq.
 *
 * Probe header (fabric/probe.py, network byte order) at the start of the UDP payload:
 *   u32 magic, u64 msg_id, u32 seq, u32 count, u64 tx_ns.
 *
 * Exits 0 on success; 1 with one line on stderr on any error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AGENT_NAME "fabric-receiver"
#include "agent_common.h"

#define PLAN_MAGIC "FABRECV1"
#define PLAN_HEADER_FIELDS 4
#define RECV_BATCH 64               /* datagrams per recvmmsg() */
#define RCVBUF_BYTES (32 * 1024 * 1024)
#define RECEIVER_NICE 0             /* normal: the senders (-10) wake up first */
#define COALESCE_NS 1000000LL       /* pause after a drain that found packets */
#define POLL_TIMEOUT_MS 500

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int signum)
{
    (void)signum;
    stop_signal = 1;
}

/* ---------------------------------------------------------------- plan */

struct plan {
    int64_t n_msgs, n_hosts, udp_dst_port, probe_magic;
    int64_t *packets, *host_pid;
    int64_t *offset;          /* first packet index of each message */
    int64_t total_packets;
};

static void load_plan(const char *path, struct plan *p)
{
    size_t size;
    char *buf = read_whole_file(path, &size);
    size_t header_bytes = 8 + 8 * PLAN_HEADER_FIELDS;
    if (size < header_bytes || memcmp(buf, PLAN_MAGIC, 8) != 0)
        die("%s: not a receiver plan file (expected it to start with \"%s\" and a %zu-byte header, got %zu bytes)",
            path, PLAN_MAGIC, header_bytes, size);
    int64_t h[PLAN_HEADER_FIELDS];
    memcpy(h, buf + 8, sizeof h);
    p->n_msgs = h[0], p->n_hosts = h[1], p->udp_dst_port = h[2], p->probe_magic = h[3];
    if (p->n_msgs < 0 || p->n_hosts < 0 || p->n_msgs > (INT64_MAX / 64) || p->n_hosts > 65535)
        die("%s: bad counts in header (n_msgs=%lld n_hosts=%lld)", path, (long long)p->n_msgs,
            (long long)p->n_hosts);
    if (p->udp_dst_port < 1 || p->udp_dst_port > 65535)
        die("%s: udp_dst_port=%lld is not a port", path, (long long)p->udp_dst_port);
    if (p->probe_magic < 0 || p->probe_magic > UINT32_MAX)
        die("%s: probe_magic=%lld is not a 32-bit value", path, (long long)p->probe_magic);
    size_t expected = header_bytes + 8 * ((size_t)p->n_msgs + (size_t)p->n_hosts);
    if (size != expected)
        die("%s: %zu bytes, expected %zu for %lld messages and %lld hosts (truncated or written by another "
            "version?)", path, size, expected, (long long)p->n_msgs, (long long)p->n_hosts);
    /* Every array is 8-byte wide and starts at a multiple of 8 from malloc's aligned buffer. */
    int64_t *a = (int64_t *)(buf + header_bytes);
    p->packets = a, a += p->n_msgs;
    p->host_pid = a;

    p->offset = malloc(sizeof(int64_t) * (size_t)(p->n_msgs ? p->n_msgs : 1));
    if (!p->offset)
        die("out of memory");
    p->total_packets = 0;
    for (int64_t m = 0; m < p->n_msgs; m++) {
        if (p->packets[m] < 1 || p->packets[m] > UINT32_MAX)
            die("%s: message %lld: packets=%lld, expected >= 1", path, (long long)m, (long long)p->packets[m]);
        p->offset[m] = p->total_packets;
        if (p->total_packets > INT64_MAX / 32 - p->packets[m])
            die("%s: too many packets", path);
        p->total_packets += p->packets[m];
    }
    for (int64_t i = 0; i < p->n_hosts; i++)
        if (p->host_pid[i] < 1 || p->host_pid[i] > INT_MAX)
            die("%s: host %lld: pid=%lld out of range", path, (long long)i, (long long)p->host_pid[i]);
}

static int parse_fd(const char *text, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < 0 || v > INT_MAX)
        die("%s=%s is not a file descriptor", what, text);
    if (fcntl((int)v, F_GETFD) < 0)
        die("%s=%ld is not open: %s", what, v, strerror(errno));
    return (int)v;
}

/* ---------------------------------------------------------------- sockets */

static void setsockopt_or_die(int fd, int level, int name, const void *val, socklen_t len, const char *what,
                              int64_t pid)
{
    if (setsockopt(fd, level, name, val, len) != 0)
        die("host of pid %lld: setsockopt %s: %s", (long long)pid, what, strerror(errno));
}

/* Open and bind the UDP socket of the host whose namespace pid is in; the caller returns to its own. */
static int open_host_socket(const struct plan *p, int64_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%lld/ns/net", (long long)pid);
    int ns = open(path, O_RDONLY | O_CLOEXEC);
    if (ns < 0)
        die("cannot open %s: %s (is the emulated fabric still up?)", path, strerror(errno));
    if (setns(ns, CLONE_NEWNET) != 0)
        die("setns into the network namespace of pid %lld: %s", (long long)pid, strerror(errno));
    close(ns);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    if (fd < 0)
        die("host of pid %lld: UDP socket: %s", (long long)pid, strerror(errno));
    int rcvbuf = RCVBUF_BYTES, on = 1;
    setsockopt_or_die(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf, "SO_RCVBUFFORCE (needs root)", pid);
    setsockopt_or_die(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on, "SO_TIMESTAMPNS", pid);
    setsockopt_or_die(fd, IPPROTO_IP, IP_RECVTOS, &on, sizeof on, "IP_RECVTOS", pid);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->udp_dst_port),
                               .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        die("host of pid %lld: bind 0.0.0.0:%lld: %s", (long long)pid, (long long)p->udp_dst_port, strerror(errno));
    return fd;
}

static uint32_t get_be32(const uint8_t *b)
{
    uint32_t v;
    memcpy(&v, b, 4);
    return ntohl(v);
}

static uint64_t get_be64(const uint8_t *b)
{
    return (uint64_t)get_be32(b) << 32 | get_be32(b + 4);
}

/* ---------------------------------------------------------------- receiving */

struct record {
    const struct plan *p;
    int64_t *rx_ns;
    int16_t *copies, *path;
    int64_t unknown;
};

/* Read everything queued on fd; return the number of datagrams read. */
static int64_t drain(int fd, struct record *r)
{
    static struct mmsghdr msgs[RECV_BATCH];
    static struct iovec iov[RECV_BATCH];
    static uint8_t data[RECV_BATCH][32];
    static char control[RECV_BATCH][128];
    const struct plan *p = r->p;
    int64_t total = 0;
    for (;;) {
        for (int i = 0; i < RECV_BATCH; i++) {
            memset(&msgs[i], 0, sizeof msgs[i]);
            iov[i].iov_base = data[i];
            iov[i].iov_len = PROBE_HEADER_BYTES;
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_control = control[i];
            msgs[i].msg_hdr.msg_controllen = sizeof control[i];
        }
        int n = recvmmsg(fd, msgs, RECV_BATCH, MSG_DONTWAIT | MSG_TRUNC, NULL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return total;
            die("receiving: %s", strerror(errno));
        }
        total += n;
        for (int i = 0; i < n; i++) {
            const uint8_t *b = data[i];
            if (msgs[i].msg_len < PROBE_HEADER_BYTES || get_be32(b) != (uint32_t)p->probe_magic) {
                r->unknown++;
                continue;
            }
            uint64_t m = get_be64(b + 4);
            uint32_t seq = get_be32(b + 12);
            if (m >= (uint64_t)p->n_msgs || seq >= (uint64_t)p->packets[m]) {
                r->unknown++;
                continue;
            }
            int64_t stamp = -1;
            int tos = 0;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(c), sizeof ts);
                    stamp = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
                } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) {
                    tos = *(const uint8_t *)CMSG_DATA(c);
                }
            }
            int64_t idx = p->offset[m] + seq;
            if (r->copies[idx] == 0) {
                r->rx_ns[idx] = stamp;
                r->path[idx] = (int16_t)((tos >> 2) - 1);
            }
            if (r->copies[idx] < INT16_MAX)
                r->copies[idx]++;
        }
        if (n < RECV_BATCH)
            return total;
    }
}

/* ---------------------------------------------------------------- main */

static void write_out(const char *path, const struct record *r)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        die("cannot create %s: %s", path, strerror(errno));
    size_t n = (size_t)r->p->total_packets;
    if (fwrite(r->rx_ns, 8, n, f) != n || fwrite(r->copies, 2, n, f) != n || fwrite(r->path, 2, n, f) != n ||
        fwrite(&r->unknown, 8, 1, f) != 1 || fclose(f) != 0)
        die("cannot write %s: %s", path, strerror(errno));
}

int main(int argc, char **argv)
{
    if (argc != 5)
        die("usage: %s PLAN_FILE OUT_FILE STOP_FD READY_FD", argv[0]);
    /* SIGTERM / SIGINT: stop as the stop fd would, after a last drain (no SA_RESTART: epoll_wait returns). */
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct plan p;
    load_plan(argv[1], &p);
    int stop_fd = parse_fd(argv[3], "STOP_FD"), ready_fd = parse_fd(argv[4], "READY_FD");
    setpriority(PRIO_PROCESS, 0, RECEIVER_NICE);

    size_t n_pk = (size_t)(p.total_packets ? p.total_packets : 1);
    struct record r = {.p = &p, .rx_ns = malloc(8 * n_pk), .copies = calloc(n_pk, 2), .path = malloc(2 * n_pk)};
    int *fds = malloc(sizeof(int) * (size_t)(p.n_hosts ? p.n_hosts : 1));
    if (!r.rx_ns || !r.copies || !r.path || !fds)
        die("out of memory for %lld packets", (long long)p.total_packets);
    for (int64_t i = 0; i < p.total_packets; i++)
        r.rx_ns[i] = -1, r.path[i] = -1;

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1: %s", strerror(errno));
    int own_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (own_ns < 0)
        die("cannot open /proc/self/ns/net: %s", strerror(errno));
    for (int64_t i = 0; i < p.n_hosts; i++) {
        fds[i] = open_host_socket(&p, p.host_pid[i]);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) != 0)
            die("epoll_ctl: %s", strerror(errno));
    }
    if (setns(own_ns, CLONE_NEWNET) != 0)
        die("setns back into our own network namespace: %s", strerror(errno));
    close(own_ns);
    struct epoll_event stop_ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, stop_fd, &stop_ev) != 0)
        die("epoll_ctl on STOP_FD=%d: %s", stop_fd, strerror(errno));

    if (write(ready_fd, "r", 1) != 1)
        die("writing to READY_FD=%d: %s", ready_fd, strerror(errno));
    close(ready_fd);

    struct epoll_event events[64];
    int stopping = 0;
    while (!stopping && !stop_signal) {
        int n = epoll_wait(ep, events, 64, POLL_TIMEOUT_MS);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        int64_t got = 0;
        for (int i = 0; i < n; i++) {
            if (events[i].data.u64 == UINT64_MAX)
                stopping = 1;  /* readable or hung up: either way the run is over */
            else
                got += drain(fds[events[i].data.u64], &r);
        }
        if (got && !stopping && !stop_signal) {
            struct timespec pause = {.tv_sec = 0, .tv_nsec = COALESCE_NS};
            nanosleep(&pause, NULL);
        }
    }
    /* The final drain: whatever arrived before the stop. */
    for (int64_t i = 0; i < p.n_hosts; i++)
        drain(fds[i], &r);
    write_out(argv[2], &r);
    return 0;
}
