/*
 * floor_relay: the least a relay can do, to measure the latency floor on this machine.
 *
 * A single-threaded epoll WebSocket relay on 127.0.0.1:PORT speaking just enough of
 * rtchub's rooms protocol for wsload: {"type":"join","from":ID} registers a client,
 * {"type":"ping"} answers {"type":"pong"}, and any frame with "to":ID is forwarded as is
 * (unmasked) to that client. No validation, no JSON parsing, no rooms: its relay latency is
 * the two loopback hops plus one epoll wakeup, which is the floor any server's latency is
 * measured against. It answers every upgrade with 101 and a fixed Sec-WebSocket-Accept
 * (wsload does not check it): a benchmark fixture, never a server.
 *
 * usage: floor_relay PORT    (prints "listening PORT" once ready)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 20000
#define MAX_IDS 65536
#define RBUF 16384

typedef struct {
    int upgraded, rlen;
    char buf[RBUF];
} peer_t;

static peer_t *peers[MAX_FDS];
static int id_fd[MAX_IDS];

/* the number at the end of a client ID ("r123" -> 123), or -1 */
static int id_index(const char *p, const char *end, const char *key) {
    const char *m = memmem(p, (size_t)(end - p), key, strlen(key));
    if (!m) return -1;
    m += strlen(key);
    for (int skip = 0; m < end && skip < 16 && (*m < '0' || *m > '9'); skip++) m++;
    int v = 0, digits = 0;
    while (m < end && *m >= '0' && *m <= '9' && digits < 9) v = v * 10 + (*m++ - '0'), digits++;
    return digits && v < MAX_IDS ? v : -1;
}

static void send_all(int fd, const char *data, size_t len) {
    for (int tries = 0; len > 0 && tries < 1000; tries++) {
        ssize_t n = write(fd, data, len);
        if (n > 0) { data += n; len -= (size_t)n; }
        else if (n < 0 && errno != EAGAIN) return;
    }
}

static void send_text(int fd, const char *p, size_t len) {
    char head[4];
    int h = 0;
    head[h++] = (char)0x81;
    if (len < 126) head[h++] = (char)len;
    else { head[h++] = 126; head[h++] = (char)(len >> 8); head[h++] = (char)(len & 0xff); }
    struct iovec iov[2] = {{head, (size_t)h}, {(void *)p, len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n >= 0 && (size_t)n < (size_t)h + len) {
        if ((size_t)n < (size_t)h) { send_all(fd, head + n, (size_t)h - (size_t)n); n = h; }
        send_all(fd, p + (n - h), len - (size_t)(n - h));
    }
}

static void on_message(int fd, char *p, size_t len) {
    char *end = p + len;
    if (memmem(p, len, "\"to\"", 4)) {
        int to = id_index(p, end, "\"to\"");
        if (to >= 0 && id_fd[to] > 0) send_text(id_fd[to], p, len);
    } else if (memmem(p, len, "\"type\":\"join\"", 13)) {
        int me = id_index(p, end, "\"from\"");
        if (me >= 0) id_fd[me] = fd;
    } else if (memmem(p, len, "\"type\":\"ping\"", 13)) {
        send_text(fd, "{\"type\":\"pong\"}", 15);
    }
}

static void drop(int ep, int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(peers[fd]);
    peers[fd] = NULL;
}

static void on_readable(int ep, int fd) {
    peer_t *c = peers[fd];
    ssize_t n = read(fd, c->buf + c->rlen, (size_t)(RBUF - c->rlen));
    if (n <= 0) {
        if (n == 0 || errno != EAGAIN) drop(ep, fd);
        return;
    }
    c->rlen += (int)n;
    int off = 0;
    if (!c->upgraded) {
        char *e = memmem(c->buf, (size_t)c->rlen, "\r\n\r\n", 4);
        if (!e) return;
        static const char ok[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Accept: "
                                 "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        send_all(fd, ok, sizeof ok - 1);
        c->upgraded = 1;
        off = (int)(e + 4 - c->buf);
    }
    for (;;) {
        int avail = c->rlen - off;
        unsigned char *b = (unsigned char *)c->buf + off;
        if (avail < 6) break;
        int op = b[0] & 0x0f;
        size_t plen = b[1] & 0x7f;
        int h = 2;
        if (plen == 126) { if (avail < 8) break; plen = (size_t)(b[2] << 8 | b[3]); h = 4; }
        else if (plen == 127) { drop(ep, fd); return; }
        if ((size_t)avail < (size_t)h + 4 + plen) break;
        unsigned char *key = b + h, *p = b + h + 4;
        for (size_t i = 0; i < plen; i++) p[i] ^= key[i & 3];
        if (op == 1) on_message(fd, (char *)p, plen);
        else if (op == 8) { drop(ep, fd); return; }
        off += h + 4 + (int)plen;
    }
    memmove(c->buf, c->buf + off, (size_t)(c->rlen - off));
    c->rlen -= off;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: floor_relay PORT\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0) {
        perror("listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e);
    printf("listening %s\n", argv[1]);
    fflush(stdout);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                for (int k = 0; k < 64; k++) {
                    int c = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                    if (c < 0) break;
                    if (c >= MAX_FDS) { close(c); continue; }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    peers[c] = calloc(1, sizeof(peer_t));
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
            } else if (peers[fd]) {
                on_readable(ep, fd);
            }
        }
    }
}
