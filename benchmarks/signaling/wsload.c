/*
 * wsload: a WebSocket signaling load generator for rtchub and PeerJS (loopback only).
 *
 * Built by benchmarks/signaling/run.py with gcc into benchmarks/out/. One parent forks
 * --procs children; child k binds its sockets to 127.0.0.(src_base + k) (one process holds
 * at most ~20,000 fds here) and owns an even share of the --conns clients, paired into rooms
 * of two inside the child. Each child runs one epoll loop over non-blocking sockets.
 *
 * Protocols:
 *   rtchub: GET /ws; {"type":"join","room":R,"from":ID} then {"type":"ping"}: the pong is
 *           the barrier that says the join was handled. Messages are offers:
 *           {"type":"offer","to":PEER,"sdp":{"type":"offer","sdp":"v=0 T<ns> xxx..."}}
 *   peerjs: GET /peerjs?key=peerjs&id=ID&token=T; ready on {"type":"OPEN"}. Messages are
 *           {"type":"OFFER","dst":PEER,"payload":{"sdp":{"type":"offer","sdp":"v=0 T<ns> .."},
 *           "type":"media","connectionId":"mc_1"}}; HEARTBEAT every 20 s per client.
 * The send time (CLOCK_MONOTONIC ns) rides inside the SDP text; the receiver computes the
 * relay latency from it.
 *
 * Several nodes (rtchub with REDIS_URL): --port P1,P2,P3 spreads the rooms over the nodes;
 * --mix same|cross|half puts both members of a room on one node, on two different nodes, or
 * alternates (even rooms same-node, odd rooms cross-node). Latencies of same-node and
 * cross-node pairs are kept apart (same_* and cross_* in the result).
 *
 * stdin commands (one per line), each answered by one "result {json}" line on stdout:
 *   closed SIZE WARMUP_MS DURATION_MS WINDOW   closed loop: WINDOW messages bounce in each
 *                                              pair (a client sends only after receiving)
 *   open SIZE WARMUP_MS DURATION_MS RATE       open loop: RATE messages/s in total, spread
 *                                              evenly over all clients
 *   quit
 * After connecting it prints "ready {json}". Progress goes to stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 16
#define RBUF 16384
#define OBUF_MAX (1 << 20)
#define HIST_US 200000 /* 1 us buckets up to 200 ms, then one overflow bucket */
#define MAX_SIZE 65536
#define HANDSHAKES_IN_FLIGHT 64
#define CONNECT_TIMEOUT_NS (180LL * 1000000000LL)
#define DRAIN_NS (300LL * 1000000LL)
#define PHASE_MAX_MS (600LL * 1000LL)
#define CMD_IDX 0xffffffffu

enum { P_RTCHUB, P_PEERJS };
enum { S_NEW, S_CONNECTING, S_HANDSHAKE, S_JOINING, S_READY, S_DEAD };
enum { C_NONE, C_CLOSED, C_OPEN, C_QUIT };

typedef struct {
    int fd;
    int state;
    int peer;     /* index of the other member of the room, in this child */
    int rlen;
    char *rbuf;
    char *obuf;   /* unsent bytes while the socket is full */
    int olen, ocap;
    int port;     /* the node this client talks to */
    int cross;    /* its room's members are on two different nodes */
} conn_t;

typedef struct {
    long long recv, sent, errors, dropped, closed_conns, behind;
    long long cpu_ns;       /* this child's utime+stime in the measuring window */
    long long window_ns;
    long long recv_cross;
    unsigned int hist[HIST_US + 1];
    unsigned int hist_cross[HIST_US + 1];   /* the cross-node pairs' share of hist */
} result_t;

typedef struct {
    int cmd, size, window;
    long long warmup_ms, duration_ms;
    double rate;
    int ready_conns, failed_conns;
    result_t res[MAX_PROCS];
} shared_t;

#define MAX_PORTS 16
enum { MIX_SAME, MIX_CROSS, MIX_HALF };
static int proto = P_RTCHUB, nconns = 1000, nprocs = 2, port = 0, src_base = 2;
static int ports[MAX_PORTS], nports = 0, mix = MIX_HALF;
static const char *host = "127.0.0.1";
static const char *tag = "b";
static shared_t *sh;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((long long)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           ((long long)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

/* ---- one child ------------------------------------------------------------------------ */

static conn_t *conns;
static int nmine, first_id, epfd, child_k;
static result_t *res;
static char scratch[MAX_SIZE + 16];

static void set_events(conn_t *c, int idx, uint32_t ev) {
    struct epoll_event e = {.events = ev, .data.u64 = (uint64_t)idx};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
}

static void kill_conn(conn_t *c) {
    if (c->state == S_DEAD) return;
    if (c->state == S_READY) res->closed_conns++;
    c->state = S_DEAD;
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
}

/* Write now; whatever the socket does not take waits in obuf until EPOLLOUT. */
static void out(conn_t *c, int idx, const char *data, int len) {
    if (c->state == S_DEAD) return;
    if (c->olen == 0) {
        ssize_t n = write(c->fd, data, (size_t)len);
        if (n == len) return;
        if (n < 0) {
            if (errno != EAGAIN) { kill_conn(c); return; }
            n = 0;
        }
        data += n;
        len -= (int)n;
        set_events(c, idx, EPOLLIN | EPOLLOUT);
    }
    if (c->olen + len > OBUF_MAX) { res->dropped++; return; }
    if (c->olen + len > c->ocap) {
        c->ocap = c->olen + len + 4096;
        c->obuf = realloc(c->obuf, (size_t)c->ocap);
    }
    memcpy(c->obuf + c->olen, data, (size_t)len);
    c->olen += len;
}

static void flush_out(conn_t *c, int idx) {
    ssize_t n = write(c->fd, c->obuf, (size_t)c->olen);
    if (n < 0) {
        if (errno != EAGAIN) kill_conn(c);
        return;
    }
    memmove(c->obuf, c->obuf + n, (size_t)(c->olen - n));
    c->olen -= (int)n;
    if (c->olen == 0) set_events(c, idx, EPOLLIN);
}

/* A masked client frame of opcode op around payload (masked in place in a copy). */
static void send_frame(conn_t *c, int idx, int op, const char *payload, int len) {
    static char frame[MAX_SIZE + 32];
    static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    int h = 0;
    frame[h++] = (char)(0x80 | op);
    if (len < 126) {
        frame[h++] = (char)(0x80 | len);
    } else {
        frame[h++] = (char)(0x80 | 126);
        frame[h++] = (char)((len >> 8) & 0xff);
        frame[h++] = (char)(len & 0xff);
    }
    memcpy(frame + h, key, 4);
    h += 4;
    for (int i = 0; i < len; i++) frame[h + i] = (char)(payload[i] ^ key[i & 3]);
    out(c, idx, frame, h + len);
}

static void send_text(conn_t *c, int idx, const char *text) {
    send_frame(c, idx, 1, text, (int)strlen(text));
}

static void client_id(char *buf, size_t cap, int idx) {
    snprintf(buf, cap, "%s%d", tag, first_id + idx);
}

/* One signaling message of exactly `size` payload bytes from c to its peer. */
static void send_msg(int idx, int size) {
    conn_t *c = &conns[idx];
    char to[64];
    client_id(to, sizeof to, c->peer);
    long long ts = now_ns();
    int n;
    if (proto == P_RTCHUB)
        n = snprintf(scratch, sizeof scratch,
                     "{\"type\":\"offer\",\"to\":\"%s\",\"sdp\":{\"type\":\"offer\",\"sdp\":"
                     "\"v=0 T%019lld ", to, ts);
    else
        n = snprintf(scratch, sizeof scratch,
                     "{\"type\":\"OFFER\",\"dst\":\"%s\",\"payload\":{\"type\":\"media\","
                     "\"connectionId\":\"mc_1\",\"sdp\":{\"type\":\"offer\",\"sdp\":"
                     "\"v=0 T%019lld ", to, ts);
    int tl = proto == P_RTCHUB ? 3 : 4;
    int pad = size - n - tl;
    if (pad < 0) pad = 0;
    memset(scratch + n, 'x', (size_t)pad);
    memcpy(scratch + n + pad, proto == P_RTCHUB ? "\"}}" : "\"}}}", (size_t)tl);
    send_frame(c, idx, 1, scratch, n + pad + tl);
    res->sent++;
}

/* phase state */
static int ph_cmd, ph_size, ph_window;
static long long ph_start, ph_meas, ph_end, ph_cpu0, ph_sent_total;
static double ph_rate;
static int ph_measuring, rr;

static void on_relayed(int idx, const char *p, int len) {
    const char *m = memmem(p, (size_t)len, "v=0 T", 5);
    if (!m || m + 5 + 19 > p + len) { res->errors++; return; }
    long long ts = 0;
    for (int i = 0; i < 19; i++) ts = ts * 10 + (m[5 + i] - '0');
    long long t = now_ns();
    if (ph_cmd == C_NONE) return;
    if (t >= ph_meas && t < ph_end) {
        long long us = (t - ts) / 1000;
        res->recv++;
        res->hist[us < HIST_US ? us : HIST_US]++;
        if (conns[idx].cross) {
            res->recv_cross++;
            res->hist_cross[us < HIST_US ? us : HIST_US]++;
        }
    }
    if (ph_cmd == C_CLOSED && t < ph_end) send_msg(idx, ph_size);
}

static void on_text(int idx, const char *p, int len) {
    conn_t *c = &conns[idx];
    if (memmem(p, (size_t)len, "v=0 T", 5)) { on_relayed(idx, p, len); return; }
    if (proto == P_RTCHUB) {
        if (memmem(p, (size_t)len, "\"type\":\"pong\"", 13)) {
            if (c->state == S_JOINING) c->state = S_READY;
        } else if (memmem(p, (size_t)len, "\"type\":\"error\"", 14)) {
            res->errors++;
            if (res->errors < 5) fprintf(stderr, "wsload: error frame: %.*s\n", len, p);
        }
    } else {
        if (memmem(p, (size_t)len, "\"type\":\"OPEN\"", 13)) {
            if (c->state == S_JOINING) c->state = S_READY;
        } else if (!memmem(p, (size_t)len, "HEARTBEAT", 9)) {
            res->errors++;
            if (res->errors < 5) fprintf(stderr, "wsload: unexpected: %.*s\n", len, p);
        }
    }
}

static void start_session(conn_t *c, int idx) {
    char me[64], msg[256];
    client_id(me, sizeof me, idx);
    c->state = S_JOINING;
    if (proto == P_RTCHUB) {
        snprintf(msg, sizeof msg, "{\"type\":\"join\",\"room\":\"%sr%d\",\"from\":\"%s\"}", tag,
                 (first_id + idx) / 2, me);
        send_text(c, idx, msg);
        send_text(c, idx, "{\"type\":\"ping\"}");
    }
}

/* Parse whole frames out of rbuf. */
static void parse_frames(conn_t *c, int idx) {
    int off = 0;
    while (c->state != S_DEAD) {
        int avail = c->rlen - off;
        if (avail < 2) break;
        unsigned char *b = (unsigned char *)c->rbuf + off;
        int op = b[0] & 0x0f;
        long long plen = b[1] & 0x7f;
        int h = 2;
        if (plen == 126) {
            if (avail < 4) break;
            plen = (b[2] << 8) | b[3];
            h = 4;
        } else if (plen == 127) {
            if (avail < 10) break;
            plen = 0;
            for (int i = 0; i < 8; i++) plen = (plen << 8) | b[2 + i];
            h = 10;
        }
        if (plen > RBUF - 16) { res->errors++; kill_conn(c); return; }
        if (avail < h + plen) break;
        char *p = (char *)b + h;
        if (op == 1 || op == 0) on_text(idx, p, (int)plen);
        else if (op == 9) send_frame(c, idx, 10, p, (int)plen);
        else if (op == 8) { kill_conn(c); return; }
        off += h + (int)plen;
    }
    if (off > 0 && c->state != S_DEAD) {
        memmove(c->rbuf, c->rbuf + off, (size_t)(c->rlen - off));
        c->rlen -= off;
    }
}

static void on_readable(conn_t *c, int idx) {
    for (int rounds = 0; rounds < 4 && c->state != S_DEAD; rounds++) {
        ssize_t n = read(c->fd, c->rbuf + c->rlen, (size_t)(RBUF - c->rlen));
        if (n == 0) { res->errors++; kill_conn(c); return; }
        if (n < 0) {
            if (errno != EAGAIN) { res->errors++; kill_conn(c); }
            return;
        }
        c->rlen += (int)n;
        if (c->state == S_HANDSHAKE) {
            char *end = memmem(c->rbuf, (size_t)c->rlen, "\r\n\r\n", 4);
            if (!end) {
                if (c->rlen >= RBUF) { kill_conn(c); return; }
                continue;
            }
            if (strncmp(c->rbuf, "HTTP/1.1 101", 12) != 0) {
                fprintf(stderr, "wsload: upgrade refused: %.*s\n", (int)(end - c->rbuf),
                        c->rbuf);
                res->errors++;
                kill_conn(c);
                return;
            }
            int used = (int)(end + 4 - c->rbuf);
            memmove(c->rbuf, c->rbuf + used, (size_t)(c->rlen - used));
            c->rlen -= used;
            start_session(c, idx);
        }
        parse_frames(c, idx);
        if (n < RBUF / 2) return;
    }
}

static void start_connect(conn_t *c, int idx) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { perror("socket"); c->state = S_DEAD; res->errors++; return; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000000u | (unsigned)(src_base + child_k));
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) perror("bind");
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    inet_pton(AF_INET, host, &dst.sin_addr);
    c->fd = fd;
    c->state = S_CONNECTING;
    struct epoll_event e = {.events = EPOLLOUT, .data.u64 = (uint64_t)idx};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) {
        perror("connect");
        res->errors++;
        kill_conn(c);
    }
}

static void on_connected(conn_t *c, int idx) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        fprintf(stderr, "wsload: connect: %s\n", strerror(err));
        res->errors++;
        kill_conn(c);
        return;
    }
    char me[64], req[512];
    client_id(me, sizeof me, idx);
    if (proto == P_RTCHUB)
        snprintf(req, sizeof req, "GET /ws HTTP/1.1\r\nHost: %s:%d\r\n", host, c->port);
    else
        snprintf(req, sizeof req,
                 "GET /peerjs?key=peerjs&id=%s&token=t%s HTTP/1.1\r\nHost: %s:%d\r\n", me, me,
                 host, c->port);
    size_t l = strlen(req);
    snprintf(req + l, sizeof req - l,
             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    c->state = S_HANDSHAKE;
    set_events(c, idx, EPOLLIN);
    out(c, idx, req, (int)strlen(req));
}

static void begin_phase(void) {
    ph_cmd = sh->cmd;
    ph_size = sh->size;
    ph_window = sh->window;
    ph_rate = sh->rate / nprocs;
    memset(res, 0, sizeof *res);
    ph_start = now_ns();
    ph_meas = ph_start + sh->warmup_ms * 1000000LL;
    ph_end = ph_meas + sh->duration_ms * 1000000LL;
    ph_measuring = 0;
    ph_sent_total = 0;
    if (ph_cmd == C_CLOSED)
        for (int i = 0; i < nmine; i += 2)
            for (int w = 0; w < ph_window; w++)
                if (conns[i].state == S_READY && conns[i + 1].state == S_READY) send_msg(i, ph_size);
}

static void open_loop_tick(long long t) {
    long long due = (long long)(ph_rate * (double)(t - ph_start) / 1e9);
    if (due - ph_sent_total > 100000) { res->behind += due - ph_sent_total; ph_sent_total = due; }
    /* everything due up to now, at most one round over the clients per call */
    for (int guard = 0; ph_sent_total < due && guard < nmine * 2; guard++) {
        int i = rr;
        rr = (rr + 1) % nmine;
        if (conns[i].state != S_READY || conns[conns[i].peer].state != S_READY) continue;
        send_msg(i, ph_size);
        ph_sent_total++;
    }
}

static void heartbeat_tick(long long t) {
    static long long last_sec = -1;
    long long sec = t / 1000000000LL;
    if (sec == last_sec || proto != P_PEERJS) return;
    last_sec = sec;
    for (int i = (int)(sec % 20); i < nmine; i += 20)
        if (conns[i].state == S_READY) send_text(&conns[i], i, "{\"type\":\"HEARTBEAT\"}");
}

static void child_main(int k, int cmd_fd, int done_fd) {
    child_k = k;
    res = &sh->res[k];
    int per = (nconns / nprocs) & ~1;
    first_id = per * k;
    nmine = k == nprocs - 1 ? nconns - first_id : per;
    conns = calloc((size_t)nmine, sizeof *conns);
    for (int i = 0; i < nmine; i++) {
        conns[i].fd = -1;
        conns[i].peer = i ^ 1;
        conns[i].rbuf = malloc(RBUF);
        /* room r's first member talks to node r % nports; the second to the next node
           when the room is a cross-node one */
        int room = (first_id + i) / 2;
        int cross = nports > 1 && (mix == MIX_CROSS || (mix == MIX_HALF && (room & 1)));
        int node = (room + (cross && (i & 1))) % nports;
        conns[i].cross = cross;
        conns[i].port = ports[node];
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ce = {.events = EPOLLIN, .data.u64 = CMD_IDX};
    epoll_ctl(epfd, EPOLL_CTL_ADD, cmd_fd, &ce);
    struct epoll_event evs[512];
    int next = 0, reported = 0;
    long long t0 = now_ns();
    for (;;) {
        long long t = now_ns();
        /* connecting: keep a bounded number of handshakes in flight */
        if (next < nmine) {
            int inflight = 0;
            for (int i = (next > 256 ? next - 256 : 0); i < next; i++)
                if (conns[i].state < S_READY && conns[i].state != S_NEW) inflight++;
            while (next < nmine && inflight < HANDSHAKES_IN_FLIGHT) {
                start_connect(&conns[next], next);
                next++;
                inflight++;
            }
        }
        if (!reported) {
            int done = 0, ok = 0;
            for (int i = 0; i < nmine; i++) {
                if (conns[i].state == S_READY) ok++;
                if (conns[i].state == S_READY || conns[i].state == S_DEAD) done++;
            }
            if ((next == nmine && done == nmine) || t - t0 > CONNECT_TIMEOUT_NS) {
                __atomic_add_fetch(&sh->ready_conns, ok, __ATOMIC_SEQ_CST);
                __atomic_add_fetch(&sh->failed_conns, nmine - ok, __ATOMIC_SEQ_CST);
                reported = 1;
                char b = 'r';
                if (write(done_fd, &b, 1) != 1) _exit(1);
            }
        }
        if (ph_cmd != C_NONE) {
            if (!ph_measuring && t >= ph_meas) {
                ph_measuring = 1;
                ph_cpu0 = cpu_ns();
                res->sent = 0;
            }
            if (ph_measuring == 1 && t >= ph_end) {
                ph_measuring = 2;
                res->cpu_ns = cpu_ns() - ph_cpu0;
                res->window_ns = t - ph_meas;
            }
            if (ph_cmd == C_OPEN && t < ph_end) open_loop_tick(t);
            if (t >= ph_end + DRAIN_NS) {
                ph_cmd = C_NONE;
                char b = 'd';
                if (write(done_fd, &b, 1) != 1) _exit(1);
            }
        }
        heartbeat_tick(t);
        /* sleep until the next open-loop send is due (ns precision: sends are spread
           evenly, not in bursts per millisecond tick), else up to 1 ms / 200 ms */
        long long wait_ns = (ph_cmd == C_NONE && reported) ? 200000000LL : 1000000LL;
        if (ph_cmd == C_OPEN && t < ph_end && ph_rate > 0) {
            long long due = ph_start + (long long)((double)(ph_sent_total + 1) * 1e9 / ph_rate);
            long long until = due - now_ns();
            /* at least 100 us: one wakeup per message would cost the generator more CPU
               than the server spends relaying it, on the same 2 cores */
            wait_ns = until < 100000 ? 100000 : until < wait_ns ? until : wait_ns;
        }
        struct timespec ts = {.tv_sec = wait_ns / 1000000000LL, .tv_nsec = wait_ns % 1000000000LL};
        int n = epoll_pwait2(epfd, evs, 512, &ts, NULL);
        for (int j = 0; j < n; j++) {
            uint32_t idx32 = (uint32_t)evs[j].data.u64;
            if (idx32 == CMD_IDX) {
                char b;
                if (read(cmd_fd, &b, 1) != 1 || sh->cmd == C_QUIT) {
                    for (int i = 0; i < nmine; i++) kill_conn(&conns[i]);
                    _exit(0);
                }
                begin_phase();
                continue;
            }
            int idx = (int)idx32;
            conn_t *c = &conns[idx];
            if (c->state == S_DEAD) continue;
            if (c->state == S_CONNECTING) {
                on_connected(c, idx);
                continue;
            }
            if (evs[j].events & (EPOLLERR | EPOLLHUP) && !(evs[j].events & EPOLLIN)) {
                res->errors++;
                kill_conn(c);
                continue;
            }
            if (evs[j].events & EPOLLOUT && c->olen > 0) flush_out(c, idx);
            if (evs[j].events & EPOLLIN) on_readable(c, idx);
        }
    }
}

/* ---- parent --------------------------------------------------------------------------- */

static long long pct(const unsigned long long *hist, unsigned long long total, double q) {
    if (total == 0) return -1;
    unsigned long long want = (unsigned long long)(q * (double)total), acc = 0;
    if (want >= total) want = total - 1;
    for (long long i = 0; i <= HIST_US; i++) {
        acc += hist[i];
        if (acc > want) return i;
    }
    return HIST_US;
}

static void usage(void) {
    fprintf(stderr, "usage: wsload --port P[,P2,...] [--mix same|cross|half] "
                    "[--host 127.0.0.1] [--proto rtchub|peerjs] "
                    "[--conns N] [--procs K] [--src-base 2] [--tag b]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(a, "--port")) {
            char *copy = strdup(v), *save = NULL;
            for (char *p = strtok_r(copy, ",", &save); p && nports < MAX_PORTS;
                 p = strtok_r(NULL, ",", &save))
                ports[nports++] = atoi(p);
            port = nports > 0 ? ports[0] : 0;
            for (int j = 0; j < nports; j++) if (ports[j] <= 0) port = 0;
        } else if (!strcmp(a, "--mix"))
            mix = !strcmp(v, "same") ? MIX_SAME : !strcmp(v, "cross") ? MIX_CROSS : MIX_HALF;
        else if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--proto")) proto = !strcmp(v, "peerjs") ? P_PEERJS : P_RTCHUB;
        else if (!strcmp(a, "--conns")) nconns = atoi(v);
        else if (!strcmp(a, "--procs")) nprocs = atoi(v);
        else if (!strcmp(a, "--src-base")) src_base = atoi(v);
        else if (!strcmp(a, "--tag")) tag = v;
        else usage();
        i++;
    }
    if (port <= 0 || nconns < 2 || nprocs < 1 || nprocs > MAX_PROCS || nconns / nprocs < 2 ||
        strncmp(host, "127.", 4) != 0 || src_base + nprocs > 255)
        usage();
    signal(SIGPIPE, SIG_IGN);
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) { perror("mmap"); return 1; }
    int done_pipe[2], cmd_pipes[MAX_PROCS][2];
    if (pipe(done_pipe) < 0) return 1;
    pid_t pids[MAX_PROCS];
    long long t0 = now_ns();
    for (int k = 0; k < nprocs; k++) {
        if (pipe(cmd_pipes[k]) < 0) return 1;
        pids[k] = fork();
        if (pids[k] == 0) {
            close(cmd_pipes[k][1]);
            child_main(k, cmd_pipes[k][0], done_pipe[1]);
        }
        close(cmd_pipes[k][0]);
    }
    char b;
    for (int k = 0; k < nprocs; k++)
        if (read(done_pipe[0], &b, 1) != 1) return 1;
    printf("ready {\"conns\": %d, \"failed\": %d, \"secs\": %.2f}\n", sh->ready_conns,
           sh->failed_conns, (double)(now_ns() - t0) / 1e9);
    fflush(stdout);
    static unsigned long long hist[HIST_US + 1], hist_x[HIST_US + 1], hist_s[HIST_US + 1];
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        char kind[16] = "";
        int size = 0;
        long long warm = 0, dur = 0;
        double arg = 0;
        if (sscanf(line, "%15s %d %lld %lld %lf", kind, &size, &warm, &dur, &arg) < 1) continue;
        if (!strcmp(kind, "quit")) break;
        int cmd = !strcmp(kind, "closed") ? C_CLOSED : !strcmp(kind, "open") ? C_OPEN : C_NONE;
        if (cmd == C_NONE || size < 64 || size > MAX_SIZE - 64 || dur <= 0 ||
            warm + dur > PHASE_MAX_MS || arg <= 0) {
            printf("result {\"error\": \"bad command\"}\n");
            fflush(stdout);
            continue;
        }
        sh->cmd = cmd;
        sh->size = size;
        sh->warmup_ms = warm;
        sh->duration_ms = dur;
        sh->window = cmd == C_CLOSED ? (int)arg : 0;
        sh->rate = cmd == C_OPEN ? arg : 0;
        __sync_synchronize();
        for (int k = 0; k < nprocs; k++)
            if (write(cmd_pipes[k][1], "c", 1) != 1) return 1;
        for (int k = 0; k < nprocs; k++)
            if (read(done_pipe[0], &b, 1) != 1) return 1;
        __sync_synchronize();
        memset(hist, 0, sizeof hist);
        memset(hist_x, 0, sizeof hist_x);
        long long recv_x = 0;
        long long recv = 0, sent = 0, errors = 0, dropped = 0, closed = 0, behind = 0, cpu = 0;
        double window = 0;
        for (int k = 0; k < nprocs; k++) {
            result_t *r = &sh->res[k];
            recv += r->recv; sent += r->sent; errors += r->errors; dropped += r->dropped;
            closed += r->closed_conns; behind += r->behind; cpu += r->cpu_ns;
            if ((double)r->window_ns / 1e9 > window) window = (double)r->window_ns / 1e9;
            recv_x += r->recv_cross;
            for (int i = 0; i <= HIST_US; i++) hist[i] += r->hist[i];
            for (int i = 0; i <= HIST_US; i++) hist_x[i] += r->hist_cross[i];
        }
        for (int i = 0; i <= HIST_US; i++) hist_s[i] = hist[i] - hist_x[i];
        unsigned long long total_x = (unsigned long long)recv_x;
        unsigned long long total_s = (unsigned long long)(recv - recv_x);
        if (window <= 0) window = (double)dur / 1e3;
        unsigned long long total = (unsigned long long)recv;
        printf("result {\"kind\": \"%s\", \"size\": %d, \"recv\": %lld, \"sent\": %lld, "
               "\"secs\": %.3f, \"rate\": %.1f, \"p50_us\": %lld, \"p90_us\": %lld, "
               "\"p99_us\": %lld, \"p999_us\": %lld, \"errors\": %lld, \"dropped\": %lld, "
               "\"closed\": %lld, \"behind\": %lld, \"gen_cpu_s\": %.4f, "
               "\"recv_same\": %llu, \"same_p50_us\": %lld, \"same_p99_us\": %lld, "
               "\"recv_cross\": %llu, \"cross_p50_us\": %lld, \"cross_p99_us\": %lld}\n",
               kind, size, recv, sent, window, (double)recv / window, pct(hist, total, 0.5),
               pct(hist, total, 0.9), pct(hist, total, 0.99), pct(hist, total, 0.999), errors,
               dropped, closed, behind, (double)cpu / 1e9,
               total_s, pct(hist_s, total_s, 0.5), pct(hist_s, total_s, 0.99),
               total_x, pct(hist_x, total_x, 0.5), pct(hist_x, total_x, 0.99));
        fflush(stdout);
    }
    sh->cmd = C_QUIT;
    for (int k = 0; k < nprocs; k++) close(cmd_pipes[k][1]);
    for (int k = 0; k < nprocs; k++) waitpid(pids[k], NULL, 0);
    return 0;
}
