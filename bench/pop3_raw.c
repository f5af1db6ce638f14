/* POP3 bench helpers for pop3_bench.py: a raw-socket client that is not the bound (the same
 * conversation as poplib: USER, PASS, LIST, then RETR n one at a time, each reply awaited,
 * no pipelining; large recv()s, the end found by CRLF "." CRLF), and a trivial in-memory
 * server that answers it from one precomputed reply, to show the client's ceiling.
 *
 *   pop3_raw client HOST PORT USER PASS     -> "messages bytes seconds" on stdout
 *   pop3_raw serve PORT MESSAGE-FILE COUNT  -> serves COUNT copies of the (dot-stuffed) file
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { RECV_SIZE = 1 << 20, LINE_MAX_ = 512 };

static void die(const char *what) { perror(what); exit(2); }

static void send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = send(fd, p, n, 0);
        if (k <= 0) die("send");
        p += k; n -= (size_t)k;
    }
}

/* Reads one reply into buf (grown as needed): a status line, or with `multi` a status line
 * and, after "+OK", everything up to CRLF "." CRLF. Returns its length. */
static size_t reply(int fd, char **buf, size_t *cap, int multi) {
    size_t len = 0;
    for (;;) {
        if (*cap - len < RECV_SIZE) {
            *cap = *cap * 2 + RECV_SIZE;
            if (!(*buf = realloc(*buf, *cap))) die("realloc");
        }
        ssize_t k = recv(fd, *buf + len, *cap - len, 0);
        if (k <= 0) { fprintf(stderr, "connection closed after %zu bytes\n", len); exit(2); }
        size_t from = len >= 4 ? len - 4 : 0;
        len += (size_t)k;
        char *b = *buf;
        if (len >= 4 && b[0] == '-') { if (memchr(b, '\n', len)) { fprintf(stderr, "%.*s", (int)len, b); exit(3); } continue; }
        if (!multi) { if (memchr(b + from, '\n', len - from)) return len; continue; }
        /* The status line's CRLF and a final ".\r\n" make the terminator even for an empty body;
         * inside a dot-stuffed body CRLF "." CRLF never occurs. */
        for (size_t i = from; i + 5 <= len; i++)
            if (b[i] == '\r' && !memcmp(b + i, "\r\n.\r\n", 5)) {
                if (i + 5 != len) { fprintf(stderr, "bytes after the terminator\n"); exit(3); }
                return len;
            }
    }
}

static double now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int client(const char *host, int port, const char *user, const char *pass) {
    size_t cap = 0; char *buf = NULL, cmd[LINE_MAX_];
    double t0 = now();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (fd < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1) die("socket");
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    reply(fd, &buf, &cap, 0);
    snprintf(cmd, sizeof cmd, "USER %s\r\n", user); send_all(fd, cmd, strlen(cmd)); reply(fd, &buf, &cap, 0);
    snprintf(cmd, sizeof cmd, "PASS %s\r\n", pass); send_all(fd, cmd, strlen(cmd)); reply(fd, &buf, &cap, 0);
    send_all(fd, "LIST\r\n", 6);
    size_t n = reply(fd, &buf, &cap, 1);
    /* Message numbers from the listing, as poplib's caller takes them. */
    int count = 0, *nums = malloc(sizeof(int) * (n / 4 + 1));
    char *p = memchr(buf, '\n', n) + 1, *end = buf + n - 3;
    while (p < end) {
        nums[count++] = atoi(p);
        p = memchr(p, '\n', (size_t)(end - p)) + 1;
    }
    unsigned long long bytes = 0;
    for (int i = 0; i < count; i++) {
        int k = snprintf(cmd, sizeof cmd, "RETR %d\r\n", nums[i]);
        send_all(fd, cmd, (size_t)k);
        bytes += reply(fd, &buf, &cap, 1);
    }
    send_all(fd, "QUIT\r\n", 6); reply(fd, &buf, &cap, 0);
    close(fd);
    printf("%d %llu %.6f\n", count, bytes, now() - t0);
    return 0;
}

/* One connection at a time; every RETR gets the same precomputed reply. */
static int serve(int port, const char *file, int count) {
    FILE *f = fopen(file, "rb");
    if (!f) die(file);
    static char msg[1 << 20];
    size_t m = fread(msg, 1, sizeof msg, f); fclose(f);
    char *retr = malloc(2 * m + 64);
    size_t r = (size_t)sprintf(retr, "+OK %zu octets\r\n", m);
    for (size_t i = 0; i < m; i++) {
        if (msg[i] == '.' && (i == 0 || msg[i - 1] == '\n')) retr[r++] = '.';
        retr[r++] = msg[i];
    }
    if (m > 0 && msg[m - 1] != '\n') { memcpy(retr + r, "\r\n", 2); r += 2; }
    memcpy(retr + r, ".\r\n", 3); r += 3;
    char *list = malloc((size_t)count * 24 + 64);
    size_t l = (size_t)sprintf(list, "+OK %d messages\r\n", count);
    for (int i = 1; i <= count; i++) l += (size_t)sprintf(list + l, "%d %zu\r\n", i, m);
    memcpy(list + l, ".\r\n", 3); l += 3;

    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0) die("bind");
    printf("ready\n"); fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        send_all(c, "+OK ready\r\n", 11);
        char in[4096]; size_t have = 0; int open_ = 1;
        while (open_) {
            ssize_t k = recv(c, in + have, sizeof in - have, 0);
            if (k <= 0) break;
            have += (size_t)k;
            char *nl;
            while (open_ && (nl = memchr(in, '\n', have))) {
                if (!strncmp(in, "RETR", 4)) send_all(c, retr, r);
                else if (!strncmp(in, "LIST", 4)) send_all(c, list, l);
                else if (!strncmp(in, "QUIT", 4)) { send_all(c, "+OK bye\r\n", 9); open_ = 0; }
                else send_all(c, "+OK\r\n", 5);
                size_t used = (size_t)(nl + 1 - in);
                memmove(in, nl + 1, have - used); have -= used;
            }
        }
        close(c);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 6 && !strcmp(argv[1], "client")) return client(argv[2], atoi(argv[3]), argv[4], argv[5]);
    if (argc == 5 && !strcmp(argv[1], "serve")) return serve(atoi(argv[2]), argv[3], atoi(argv[4]));
    fprintf(stderr, "usage: %s client HOST PORT USER PASS | serve PORT MESSAGE-FILE COUNT\n", argv[0]);
    return 1;
}
