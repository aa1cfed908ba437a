/*
 * fabric-sender: replays the load of a set of emulated hosts, with no interpreter in the per-packet path.
 *
 * Usage: fabric-sender PLAN_FILE OUT_FILE
 *
 * Built and started by fabric/emu/native.py and fabric/emu/runner.py (two processes per run, one per
 * vCPU, each with its own host subset). It does what the former Python sender did:
 *
 * - one raw IPPROTO_UDP socket per host, created inside the host's network namespace (setns into
 *   /proc/<pid>/ns/net, then back): we write the UDP header ourselves so every message gets its own
 *   source port, as RoCE gives every queue pair its own (that is what ECMP hashes on);
 * - pacing by a model of each host NIC queue, tracked with the link's configured rate (the shaped host
 *   link, an HTB class, drains at exactly that rate; the shaper itself does the exact pacing). The queue
 *   is kept up to slack_packets deep, so a sender stalled for a few ms (the other process, the kernel's
 *   forwarding, the credit scheduler on its vCPU) does not leave the NIC idle; but it is let drain to
 *   queue_packets before the host's next message starts, so that message waits behind no more than
 *   queue_packets packets of the others (a NIC takes turns between its queue pairs, not FIFO);
 * - concurrent messages of one host share its NIC packet by packet (round-robin); hosts take turns
 *   too. The packets a host may queue at once (up to SEND_BATCH) leave in one sendmmsg() call, so hosts
 *   take turns by batch;
 * - a user-space CLOCK_REALTIME stamp just before each send (tx_user_ns, also written in the header)
 *   and the kernel's software TX timestamp as the packet leaves the host NIC (tx_ns, from the error
 *   queue: SO_TIMESTAMPING with OPT_ID | TSONLY, drained in batches with recvmmsg);
 * - a send the host queue refuses (EAGAIN / ENOBUFS) is counted in refused[host] and retried.
 *
 * OPT_ID keys: the kernel numbers the sends of a socket 0, 1, 2, ... and gives a key back only for
 * sends that succeeded (since 2024 the error path returns the key; kernel commit 488b6d91b071), so
 * keys are mapped to packet indices in the order of successful sends.
 *
 * Plan file (written by fabric/emu/native.py:write_plan; all fields little-endian):
 *
 *   offset  type          field
 *   0       char[8]       "FABPLAN2"
 *   8       int64         n_msgs         messages in the run (wire ids 0..n_msgs-1)
 *   16      int64         n_hosts        hosts in the run (host indices 0..n_hosts-1)
 *   24      int64         n_subset       hosts this process sends for
 *   32      int64         queue_packets  packets queued in a host NIC when its next message starts (>= 1)
 *   40      int64         slack_packets  packets the sender keeps queued in a host NIC (>= queue_packets)
 *   48      int64         udp_dst_port   UDP destination port of the probes
 *   56      int64         probe_magic    magic of the probe header
 *   64      int64[n_msgs] src            host index
 *           int64[n_msgs] dst            host index
 *           int64[n_msgs] t_start_ns     absolute CLOCK_REALTIME
 *           int64[n_msgs] packets        packets in the message (>= 1)
 *           int64[n_msgs] payload        UDP payload bytes of every full packet (probe header included)
 *           int64[n_msgs] last_payload   UDP payload bytes of the last packet
 *           int64[n_hosts] host_pid      a process in the host's network namespace
 *           int64[n_hosts] host_ipv4     IPv4 address as an integer (10.0.0.1 = 0x0A000001)
 *           float64[n_hosts] rate_bps    emulated NIC (host link) rate
 *           int64[n_subset] subset       host indices this process sends for
 *
 * Out file (raw little-endian, no header; P = total packets = sum of packets, H = n_hosts):
 *   int64[P] tx_ns, int64[P] tx_user_ns (-1: not sent by this process / no timestamp),
 *   int64[H] refused. Packet index = (sum of packets of messages before it) + seq.
 *
 * Probe header (fabric/probe.py, network byte order) after our 8-byte UDP header:
 *   u32 magic, u64 msg_id, u32 seq, u32 count, u64 tx_ns.
 *
 * Exits 0 on success; non-zero with one line on stderr on any error. SIGTERM/SIGINT end it at once
 * (default action): it holds nothing that needs cleaning up.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/errqueue.h>
#include <linux/filter.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AGENT_NAME "fabric-sender"
#include "agent_common.h"

#define PLAN_MAGIC "FABPLAN2"
#define PLAN_HEADER_FIELDS 7
#define UDP_HEADER_BYTES 8
#define MAX_UDP_PAYLOAD_BYTES 65507
/* PROBE_HEADER_BYTES and WIRE_OVERHEAD_BYTES (Ethernet + IPv4 + UDP: what HTB counts beyond our
 * payload) come from fabric/probe.py, passed by the build (agent_common.h checks). */
#define SRC_PORT_BASE 49152
#define SEND_BATCH 16               /* packets of one host per sendmmsg() at most */
#define DRAIN_BATCH 64              /* error-queue messages per recvmmsg() */
#define SNDBUF_BYTES (4 * 1024 * 1024)
#define RCVBUF_BYTES (8 * 1024 * 1024)  /* holds the TX timestamps until we drain them */
#define SENDER_NICE (-10)           /* senders and the credit scheduler wake up first */
#define FINAL_WAIT_NS 50000000LL    /* after the last NIC queue drains, wait this long for stamps */
#define LONG_SLEEP_NS 5000000LL     /* a sleep longer than this ends SPIN_GUARD_NS early, then spins */
#define SPIN_GUARD_NS 2000000LL

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until_ns(int64_t t_ns)
{
    /* After a long sleep a vCPU comes back late: measured on the 2-vCPU VM, sleeps of 20 ms to 1 s ended
     * 0.1 ms late at the median and 1-3 ms late in 40% of cases under load (2-5 ms sleeps: p90 0.06 ms),
     * which made the first packets after an idle spell (a run's first message, each new burst) leave
     * 1.4-3 ms after their start time. So wake up SPIN_GUARD_NS early from such a sleep and spin the rest
     * on the clock: at most SPIN_GUARD_NS of CPU per idle spell; short (per-packet) sleeps are unchanged. */
    int64_t target = t_ns - now_ns() > LONG_SLEEP_NS ? t_ns - SPIN_GUARD_NS : t_ns;
    struct timespec ts = {.tv_sec = target / 1000000000LL, .tv_nsec = target % 1000000000LL};
    /* Absolute CLOCK_REALTIME: the schedule is in that clock; EINTR just returns to the loop. */
    clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL);
    if (target != t_ns && now_ns() >= target)
        while (now_ns() < t_ns)
            ;
}

/* ---------------------------------------------------------------- plan */

struct plan {
    int64_t n_msgs, n_hosts, n_subset, queue_packets, slack_packets, udp_dst_port, probe_magic;
    int64_t *src, *dst, *t_start_ns, *packets, *payload, *last_payload;
    int64_t *host_pid, *host_ipv4;
    double *rate_bps;
    int64_t *subset;
    int64_t *offset;          /* first packet index of each message */
    int64_t total_packets;
};

static void load_plan(const char *path, struct plan *p)
{
    size_t size;
    char *buf = read_whole_file(path, &size);
    size_t header_bytes = 8 + 8 * PLAN_HEADER_FIELDS;
    if (size < header_bytes || memcmp(buf, PLAN_MAGIC, 8) != 0)
        die("%s: not a sender plan file (expected it to start with \"%s\" and a %zu-byte header, got %zu bytes)",
            path, PLAN_MAGIC, header_bytes, size);
    int64_t h[PLAN_HEADER_FIELDS];
    memcpy(h, buf + 8, sizeof h);
    p->n_msgs = h[0], p->n_hosts = h[1], p->n_subset = h[2], p->queue_packets = h[3], p->slack_packets = h[4];
    p->udp_dst_port = h[5], p->probe_magic = h[6];
    if (p->n_msgs < 0 || p->n_hosts < 0 || p->n_subset < 0 || p->n_msgs > (INT64_MAX / 64) ||
        p->n_hosts > 65535 || p->n_subset > p->n_hosts)
        die("%s: bad counts in header (n_msgs=%lld n_hosts=%lld n_subset=%lld)", path,
            (long long)p->n_msgs, (long long)p->n_hosts, (long long)p->n_subset);
    if (p->queue_packets < 1 || p->queue_packets > 1 << 20)
        die("%s: queue_packets=%lld, expected >= 1", path, (long long)p->queue_packets);
    if (p->slack_packets < p->queue_packets || p->slack_packets > 1 << 20)
        die("%s: slack_packets=%lld, expected >= queue_packets (%lld)", path, (long long)p->slack_packets,
            (long long)p->queue_packets);
    if (p->udp_dst_port < 1 || p->udp_dst_port > 65535)
        die("%s: udp_dst_port=%lld is not a port", path, (long long)p->udp_dst_port);
    size_t expected = header_bytes + 8 * (6 * (size_t)p->n_msgs + 3 * (size_t)p->n_hosts + (size_t)p->n_subset);
    if (size != expected)
        die("%s: %zu bytes, expected %zu for %lld messages, %lld hosts and %lld subset hosts (truncated or "
            "written by another version?)", path, size, expected, (long long)p->n_msgs, (long long)p->n_hosts,
            (long long)p->n_subset);
    /* Every array is 8-byte wide and starts at a multiple of 8 from malloc's aligned buffer. */
    int64_t *a = (int64_t *)(buf + header_bytes);
    p->src = a, a += p->n_msgs;
    p->dst = a, a += p->n_msgs;
    p->t_start_ns = a, a += p->n_msgs;
    p->packets = a, a += p->n_msgs;
    p->payload = a, a += p->n_msgs;
    p->last_payload = a, a += p->n_msgs;
    p->host_pid = a, a += p->n_hosts;
    p->host_ipv4 = a, a += p->n_hosts;
    p->rate_bps = (double *)a, a += p->n_hosts;
    p->subset = a;

    p->offset = malloc(sizeof(int64_t) * (size_t)(p->n_msgs ? p->n_msgs : 1));
    if (!p->offset)
        die("out of memory");
    p->total_packets = 0;
    for (int64_t m = 0; m < p->n_msgs; m++) {
        if (p->src[m] < 0 || p->src[m] >= p->n_hosts || p->dst[m] < 0 || p->dst[m] >= p->n_hosts)
            die("%s: message %lld: src=%lld dst=%lld, expected host indices 0..%lld", path, (long long)m,
                (long long)p->src[m], (long long)p->dst[m], (long long)p->n_hosts - 1);
        if (p->packets[m] < 1 || p->packets[m] > UINT32_MAX)
            die("%s: message %lld: packets=%lld, expected >= 1", path, (long long)m, (long long)p->packets[m]);
        if (p->payload[m] < PROBE_HEADER_BYTES || p->payload[m] > MAX_UDP_PAYLOAD_BYTES ||
            p->last_payload[m] < PROBE_HEADER_BYTES || p->last_payload[m] > p->payload[m])
            die("%s: message %lld: payload=%lld last_payload=%lld, expected %d <= last_payload <= payload <= %d",
                path, (long long)m, (long long)p->payload[m], (long long)p->last_payload[m], PROBE_HEADER_BYTES,
                MAX_UDP_PAYLOAD_BYTES);
        p->offset[m] = p->total_packets;
        if (p->total_packets > INT64_MAX / 32 - p->packets[m])
            die("%s: too many packets", path);
        p->total_packets += p->packets[m];
    }
    for (int64_t i = 0; i < p->n_hosts; i++) {
        if (p->host_pid[i] < 0 || p->host_pid[i] > INT_MAX || p->host_ipv4[i] < 0 || p->host_ipv4[i] > UINT32_MAX)
            die("%s: host %lld: pid=%lld ipv4=%lld out of range", path, (long long)i, (long long)p->host_pid[i],
                (long long)p->host_ipv4[i]);
        if (!(p->rate_bps[i] > 0))
            die("%s: host %lld: rate_bps=%g, expected > 0", path, (long long)i, p->rate_bps[i]);
    }
    for (int64_t i = 0; i < p->n_subset; i++)
        if (p->subset[i] < 0 || p->subset[i] >= p->n_hosts)
            die("%s: subset[%lld]=%lld is not a host index", path, (long long)i, (long long)p->subset[i]);
}

/* ---------------------------------------------------------------- hosts */

struct host {
    int index;
    int fd;
    struct sockaddr_in *dst_addr;  /* shared table, by host index */
    int64_t *queue;               /* its messages in start order */
    int64_t n_queue, cursor;      /* next message not yet started */
    int64_t *ring;                /* started, unfinished messages: round-robin */
    int64_t ring_head, ring_len;
    int64_t remaining;            /* messages not fully sent */
    int64_t *key_to_packet;       /* OPT_ID key -> packet index */
    int64_t n_keys;
    int64_t free_at_ns;           /* when the modelled NIC queue will be empty */
    double ns_per_byte;
    int64_t slack_ns;             /* queue at most this much ahead of now when the next message starts */
    int64_t deep_slack_ns;        /* ... and at most this much otherwise */
    int sent_this_pass;
};

static const struct plan *sort_plan;

static int by_start_then_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    int64_t tx = sort_plan->t_start_ns[x], ty = sort_plan->t_start_ns[y];
    if (tx != ty)
        return tx < ty ? -1 : 1;
    return x < y ? -1 : (x > y);
}

static int cmp_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : (x > y);
}

static void setsockopt_or_die(int fd, int level, int name, const void *val, socklen_t len, const char *what, int host)
{
    if (setsockopt(fd, level, name, val, len) != 0)
        die("host %d: setsockopt %s: %s", host, what, strerror(errno));
}

/* Open host h's raw socket inside its network namespace; the caller returns to its own. */
static int open_host_socket(const struct plan *p, int h)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%lld/ns/net", (long long)p->host_pid[h]);
    int ns = open(path, O_RDONLY | O_CLOEXEC);
    if (ns < 0)
        die("host %d: cannot open %s: %s (is the emulated fabric still up?)", h, path, strerror(errno));
    if (setns(ns, CLONE_NEWNET) != 0)
        die("host %d: setns into the network namespace of pid %lld: %s", h, (long long)p->host_pid[h],
            strerror(errno));
    close(ns);
    int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    if (fd < 0)
        die("host %d: raw socket: %s (needs root)", h, strerror(errno));
    int sndbuf = SNDBUF_BYTES, rcvbuf = RCVBUF_BYTES;
    setsockopt_or_die(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf, "SO_SNDBUFFORCE", h);
    setsockopt_or_die(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf, "SO_RCVBUFFORCE", h);
    /* A raw socket also receives a copy of every incoming UDP packet; discard them in-kernel. */
    struct sock_filter drop_all = BPF_STMT(BPF_RET | BPF_K, 0);
    struct sock_fprog prog = {.len = 1, .filter = &drop_all};
    setsockopt_or_die(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog, "SO_ATTACH_FILTER", h);
    int ts = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID |
             SOF_TIMESTAMPING_OPT_TSONLY;
    setsockopt_or_die(fd, SOL_SOCKET, SO_TIMESTAMPING, &ts, sizeof ts, "SO_TIMESTAMPING", h);
    return fd;
}

static inline int64_t packet_payload(const struct plan *p, int64_t m, int64_t seq)
{
    return seq == p->packets[m] - 1 ? p->last_payload[m] : p->payload[m];
}

static inline int64_t packet_ns(const struct host *hs, int64_t payload)
{
    return (int64_t)((double)(payload + WIRE_OVERHEAD_BYTES) * hs->ns_per_byte);
}

/* May the host queue one more packet, its NIC queue then draining at free_at? Up to the deep slack,
 * unless that would leave more than the shallow slack queued when its next message starts. */
static inline int may_queue(const struct host *hs, int64_t free_at, int64_t now, int64_t next_start)
{
    if (free_at - now <= hs->slack_ns)
        return 1;
    return free_at - now <= hs->deep_slack_ns && (next_start == INT64_MAX || free_at <= next_start + hs->slack_ns);
}

static inline uint16_t src_port(int64_t wire_id)
{
    /* A per-message source port spread over 16k values (Knuth multiplicative hash). */
    return (uint16_t)(SRC_PORT_BASE + ((uint32_t)wire_id * 2654435761u) % 16384u);
}

static void put_be32(uint8_t *b, uint32_t v)
{
    v = htonl(v);
    memcpy(b, &v, 4);
}

static void put_be64(uint8_t *b, uint64_t v)
{
    put_be32(b, (uint32_t)(v >> 32));
    put_be32(b + 4, (uint32_t)v);
}

/* ---------------------------------------------------------------- TX timestamps */

static int64_t stamped;  /* packets of this process with a kernel TX timestamp */

static void drain_tx_timestamps(struct host *hs, int64_t *tx_ns)
{
    static struct mmsghdr msgs[DRAIN_BATCH];
    static char control[DRAIN_BATCH][256];
    for (;;) {
        for (int i = 0; i < DRAIN_BATCH; i++) {
            memset(&msgs[i], 0, sizeof msgs[i]);
            msgs[i].msg_hdr.msg_control = control[i];
            msgs[i].msg_hdr.msg_controllen = sizeof control[i];
        }
        int n = recvmmsg(hs->fd, msgs, DRAIN_BATCH, MSG_ERRQUEUE | MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            die("host %d: reading TX timestamps: %s", hs->index, strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            int64_t stamp = -1, key = -1;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPING) {
                    struct scm_timestamping tss;
                    memcpy(&tss, CMSG_DATA(c), sizeof tss);
                    stamp = (int64_t)tss.ts[0].tv_sec * 1000000000LL + tss.ts[0].tv_nsec;
                } else if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) {
                    struct sock_extended_err err;
                    memcpy(&err, CMSG_DATA(c), sizeof err);
                    if (err.ee_origin == SO_EE_ORIGIN_TIMESTAMPING)
                        key = err.ee_data;
                }
            }
            if (key >= 0 && key < hs->n_keys && stamp > 0) {
                int64_t idx = hs->key_to_packet[key];
                if (tx_ns[idx] < 0)
                    stamped++;
                tx_ns[idx] = stamp;
            }
        }
        if (n < DRAIN_BATCH)
            return;
    }
}

/* ---------------------------------------------------------------- main */

static void write_out(const char *path, const struct plan *p, const int64_t *tx_ns, const int64_t *tx_user_ns,
                      const int64_t *refused)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        die("cannot create %s: %s", path, strerror(errno));
    size_t n = (size_t)p->total_packets, h = (size_t)p->n_hosts;
    if (fwrite(tx_ns, 8, n, f) != n || fwrite(tx_user_ns, 8, n, f) != n || fwrite(refused, 8, h, f) != h ||
        fclose(f) != 0)
        die("cannot write %s: %s", path, strerror(errno));
}

int main(int argc, char **argv)
{
    if (argc != 3)
        die("usage: %s PLAN_FILE OUT_FILE", argv[0]);
    /* The parent may have ignored these; we want Ctrl-C / SIGTERM to end us at once. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    struct plan p;
    load_plan(argv[1], &p);
    /* Senders keep the schedule: run them ahead of the sampler and bookkeeping (root may do so). */
    setpriority(PRIO_PROCESS, 0, SENDER_NICE);
    /* Wake up within about a microsecond of the schedule, not the default 50 us timer slack. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

    size_t n_pk = (size_t)(p.total_packets ? p.total_packets : 1);
    int64_t *tx_ns = malloc(8 * n_pk), *tx_user_ns = malloc(8 * n_pk);
    int64_t *refused = calloc((size_t)(p.n_hosts ? p.n_hosts : 1), 8);
    struct sockaddr_in *addr = calloc((size_t)(p.n_hosts ? p.n_hosts : 1), sizeof *addr);
    if (!tx_ns || !tx_user_ns || !refused || !addr)
        die("out of memory for %lld packets", (long long)p.total_packets);
    for (int64_t i = 0; i < p.total_packets; i++)
        tx_ns[i] = tx_user_ns[i] = -1;
    for (int64_t i = 0; i < p.n_hosts; i++) {
        addr[i].sin_family = AF_INET;
        addr[i].sin_addr.s_addr = htonl((uint32_t)p.host_ipv4[i]);
    }
    int64_t max_payload = PROBE_HEADER_BYTES;
    for (int64_t m = 0; m < p.n_msgs; m++)
        if (p.payload[m] > max_payload)
            max_payload = p.payload[m];

    /* Hosts of the subset that send anything, in index order; their messages by (start, id). */
    int64_t *subset = malloc(8 * (size_t)(p.n_subset ? p.n_subset : 1));
    int64_t *msgs_of = calloc((size_t)(p.n_hosts ? p.n_hosts : 1), 8);
    int64_t *packets_of = calloc((size_t)(p.n_hosts ? p.n_hosts : 1), 8);
    if (!subset || !msgs_of || !packets_of)
        die("out of memory");
    memcpy(subset, p.subset, 8 * (size_t)p.n_subset);
    qsort(subset, (size_t)p.n_subset, 8, cmp_int64);
    for (int64_t m = 0; m < p.n_msgs; m++) {
        msgs_of[p.src[m]]++;
        packets_of[p.src[m]] += p.packets[m];
    }
    struct host *hosts = calloc((size_t)(p.n_subset ? p.n_subset : 1), sizeof *hosts);
    if (!hosts)
        die("out of memory");
    int n_active_hosts = 0;
    int own_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (own_ns < 0)
        die("cannot open /proc/self/ns/net: %s", strerror(errno));
    for (int64_t i = 0; i < p.n_subset; i++) {
        int h = (int)subset[i];
        if (!msgs_of[h] || (n_active_hosts && hosts[n_active_hosts - 1].index == h))
            continue;
        struct host *hs = &hosts[n_active_hosts++];
        hs->index = h;
        hs->fd = open_host_socket(&p, h);
        hs->dst_addr = addr;
        hs->queue = malloc(8 * (size_t)msgs_of[h]);
        hs->ring = malloc(8 * (size_t)msgs_of[h]);
        hs->key_to_packet = malloc(8 * (size_t)packets_of[h]);
        if (!hs->queue || !hs->ring || !hs->key_to_packet)
            die("out of memory");
        for (int64_t m = 0; m < p.n_msgs; m++)
            if (p.src[m] == h)
                hs->queue[hs->n_queue++] = m;
        sort_plan = &p;
        qsort(hs->queue, (size_t)hs->n_queue, 8, by_start_then_id);
        hs->remaining = hs->n_queue;
        hs->ns_per_byte = 8e9 / p.rate_bps[h];
        hs->slack_ns = (int64_t)((double)(p.queue_packets - 1) * (double)(max_payload + WIRE_OVERHEAD_BYTES) *
                                 hs->ns_per_byte);
        hs->deep_slack_ns = (int64_t)((double)(p.slack_packets - 1) * (double)(max_payload + WIRE_OVERHEAD_BYTES) *
                                      hs->ns_per_byte);
    }
    if (setns(own_ns, CLONE_NEWNET) != 0)
        die("setns back into our own network namespace: %s", strerror(errno));
    close(own_ns);

    int64_t *next_seq = calloc((size_t)(p.n_msgs ? p.n_msgs : 1), 8);
    /* Packet templates: one zero-padded buffer per batch slot; only the 36 header bytes change. */
    static uint8_t *slot_buf[SEND_BATCH];
    for (int i = 0; i < SEND_BATCH; i++)
        if (!(slot_buf[i] = calloc(1, UDP_HEADER_BYTES + (size_t)max_payload)))
            die("out of memory");
    if (!next_seq)
        die("out of memory");
    struct mmsghdr batch[SEND_BATCH];
    struct iovec iov[SEND_BATCH];
    int64_t batch_msg[SEND_BATCH], batch_seq[SEND_BATCH];

    int64_t remaining_msgs = 0;
    for (int i = 0; i < n_active_hosts; i++)
        remaining_msgs += hosts[i].remaining;

    while (remaining_msgs > 0) {
        int64_t now = now_ns(), wake = INT64_MAX;
        for (int i = 0; i < n_active_hosts; i++) {
            struct host *hs = &hosts[i];
            while (hs->cursor < hs->n_queue && p.t_start_ns[hs->queue[hs->cursor]] <= now) {
                hs->ring[(hs->ring_head + hs->ring_len) % hs->n_queue] = hs->queue[hs->cursor++];
                hs->ring_len++;
            }
            if (hs->cursor < hs->n_queue && p.t_start_ns[hs->queue[hs->cursor]] < wake)
                wake = p.t_start_ns[hs->queue[hs->cursor]];
            hs->sent_this_pass = 0;
        }
        /* One batch per host per pass: when many hosts start together (an all-to-all) every host's
         * first packets leave before any host's later ones, as parallel NICs would do it. */
        for (int pass_active = 1; pass_active;) {
            pass_active = 0;
            for (int i = 0; i < n_active_hosts; i++) {
                struct host *hs = &hosts[i];
                if (!hs->ring_len)
                    continue;
                now = now_ns();
                int64_t next_start = hs->cursor < hs->n_queue ? p.t_start_ns[hs->queue[hs->cursor]] : INT64_MAX;
                if (!may_queue(hs, hs->free_at_ns, now, next_start)) {
                    /* Room comes as the queue drains: to the deep slack, or (when the next message is
                     * due first) to the shallow one; that message's start wakes the loop anyway. */
                    int next_binds = next_start != INT64_MAX && hs->free_at_ns > next_start + hs->slack_ns;
                    int64_t ready = hs->free_at_ns - (next_binds ? hs->slack_ns : hs->deep_slack_ns);
                    if (ready < wake)
                        wake = ready;
                    continue;
                }
                /* Choose the packets the NIC queue takes now, round-robin over this host's messages,
                 * on a copy of the ring (the real one advances by what the kernel accepted). */
                int64_t sim_ring[SEND_BATCH], sim_seq[SEND_BATCH];
                int sim_len = hs->ring_len < SEND_BATCH ? (int)hs->ring_len : SEND_BATCH, sim_head = 0;
                for (int j = 0; j < sim_len; j++) {
                    sim_ring[j] = hs->ring[(hs->ring_head + j) % hs->n_queue];
                    sim_seq[j] = next_seq[sim_ring[j]];
                }
                int64_t free_at = hs->free_at_ns > now ? hs->free_at_ns : now;
                int k = 0;
                while (k < SEND_BATCH && sim_len > 0 && (k == 0 || may_queue(hs, free_at, now, next_start))) {
                    int64_t m = sim_ring[sim_head], seq = sim_seq[sim_head];
                    int64_t payload = packet_payload(&p, m, seq);
                    uint8_t *b = slot_buf[k];
                    uint16_t udp[4] = {htons(src_port(m)), htons((uint16_t)p.udp_dst_port),
                                       htons((uint16_t)(UDP_HEADER_BYTES + payload)), 0};
                    memcpy(b, udp, sizeof udp);
                    put_be32(b + 8, (uint32_t)p.probe_magic);
                    put_be64(b + 12, (uint64_t)m);
                    put_be32(b + 20, (uint32_t)seq);
                    put_be32(b + 24, (uint32_t)p.packets[m]);
                    /* tx_ns (b + 28) is written below, once the stamp is taken */
                    iov[k].iov_base = b;
                    iov[k].iov_len = (size_t)(UDP_HEADER_BYTES + payload);
                    memset(&batch[k], 0, sizeof batch[k]);
                    batch[k].msg_hdr.msg_name = &hs->dst_addr[p.dst[m]];
                    batch[k].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
                    batch[k].msg_hdr.msg_iov = &iov[k];
                    batch[k].msg_hdr.msg_iovlen = 1;
                    batch_msg[k] = m, batch_seq[k] = seq;
                    free_at += packet_ns(hs, payload);
                    k++;
                    /* advance the copy: rotate, or drop a finished message */
                    if (seq + 1 < p.packets[m]) {
                        sim_seq[sim_head] = seq + 1;
                        sim_head = (sim_head + 1) % sim_len;
                    } else {
                        memmove(&sim_ring[sim_head], &sim_ring[sim_head + 1], 8 * (size_t)(sim_len - sim_head - 1));
                        memmove(&sim_seq[sim_head], &sim_seq[sim_head + 1], 8 * (size_t)(sim_len - sim_head - 1));
                        sim_len--;
                        if (sim_head >= sim_len)
                            sim_head = 0;
                    }
                    /* With more messages than the copy holds, the real ring continues beyond it. */
                    if (hs->ring_len > SEND_BATCH && sim_head == 0)
                        break;
                }
                now = now_ns();
                for (int j = 0; j < k; j++)
                    put_be64(slot_buf[j] + 28, (uint64_t)now);
                int sent = sendmmsg(hs->fd, batch, (unsigned)k, 0);
                if (sent < 0) {
                    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS && errno != EINTR)
                        die("host %d: send to host %lld: %s", hs->index, (long long)p.dst[batch_msg[0]],
                            strerror(errno));
                    sent = 0;
                }
                /* Commit what the kernel took: the same round-robin steps on the real ring. */
                for (int j = 0; j < sent; j++) {
                    int64_t m = hs->ring[hs->ring_head], seq = next_seq[m];
                    if (m != batch_msg[j] || seq != batch_seq[j])
                        die("internal error: round-robin replay diverged (host %d)", hs->index);
                    int64_t idx = p.offset[m] + seq;
                    hs->key_to_packet[hs->n_keys++] = idx;
                    tx_user_ns[idx] = now;
                    hs->free_at_ns = (hs->free_at_ns > now ? hs->free_at_ns : now) +
                                     packet_ns(hs, packet_payload(&p, m, seq));
                    hs->ring_head = (hs->ring_head + 1) % hs->n_queue;
                    hs->ring_len--;
                    if (seq + 1 < p.packets[m]) {
                        next_seq[m] = seq + 1;
                        hs->ring[(hs->ring_head + hs->ring_len) % hs->n_queue] = m;  /* round-robin */
                        hs->ring_len++;
                    } else {
                        hs->remaining--;
                        remaining_msgs--;
                    }
                }
                if (sent)
                    hs->sent_this_pass = 1;
                if (sent < k) {
                    /* The NIC queue was full after all: the model ran ahead of the shaper. Retry later. */
                    int64_t m = batch_msg[sent];
                    refused[hs->index]++;
                    hs->free_at_ns = now + hs->slack_ns + packet_ns(hs, packet_payload(&p, m, batch_seq[sent]));
                    continue;
                }
                if (hs->ring_len)
                    pass_active = 1;
            }
        }
        for (int i = 0; i < n_active_hosts; i++)
            if (hosts[i].sent_this_pass)
                drain_tx_timestamps(&hosts[i], tx_ns);
        if (wake == INT64_MAX)
            continue;
        if (wake > now_ns())
            sleep_until_ns(wake);
    }

    /* The last packets leave the NIC queues within one queue's drain time; collect their stamps. */
    int64_t sent_total = 0, last_free_ns = 0;
    for (int i = 0; i < n_active_hosts; i++) {
        sent_total += hosts[i].n_keys;
        if (hosts[i].free_at_ns > last_free_ns)
            last_free_ns = hosts[i].free_at_ns;
    }
    int64_t deadline = last_free_ns + FINAL_WAIT_NS;
    while (stamped < sent_total && now_ns() < deadline) {
        sleep_until_ns(now_ns() + 5000000);
        for (int i = 0; i < n_active_hosts; i++)
            drain_tx_timestamps(&hosts[i], tx_ns);
    }
    write_out(argv[2], &p, tx_ns, tx_user_ns, refused);
    return 0;
}
