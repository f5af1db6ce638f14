/* SMTP bench helpers for outbound_bench.py: a raw-socket submission client that is not the bound
 * (EHLO, optional AUTH PLAIN, then per message MAIL/RCPT/DATA in one write as RFC 2920 §3.1
 * allows, the three replies, the body and its reply: one message per transaction, one connection),
 * and a trivial in-memory server answering it, to show the client's ceiling.
 *
 *   smtp_raw client HOST PORT AUTH64|- FIRST COUNT SIZE RUN -> the CLOCK_MONOTONIC time of the last reply
 *   smtp_raw serve PORT                                     -> 250 to everything, a fork per connection
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { BUF_SIZE = 1 << 16, MSG_MAX = 1 << 22 };

static const char SENDER[] = "bench@example.test";
static const char LINE[] = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n";

static void die(const char *what) { perror(what); exit(2); }

static void send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = send(fd, p, n, 0);
        if (k <= 0) die("send");
        p += k; n -= (size_t)k;
    }
}

/* A buffered reader of CRLF lines. */
typedef struct { int fd; char buf[BUF_SIZE]; size_t start, end; } reader;

/* The next line (without CRLF, NUL-terminated in place), or NULL at end of stream. */
static char *next_line(reader *r) {
    for (;;) {
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl) {
            char *line = r->buf + r->start;
            r->start = (size_t)(nl - r->buf) + 1;
            if (nl > line && nl[-1] == '\r') nl[-1] = 0; else *nl = 0;
            return line;
        }
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start; r->start = 0;
        }
        if (r->end == sizeof r->buf) { fprintf(stderr, "line too long\n"); exit(2); }
        ssize_t k = recv(r->fd, r->buf + r->end, sizeof r->buf - r->end, 0);
        if (k < 0) die("recv");
        if (k == 0) return NULL;
        r->end += (size_t)k;
    }
}

/* One (possibly multi-line) reply; exits unless its code starts with `want`. */
static void expect(reader *r, char want, const char *what) {
    for (;;) {
        char *line = next_line(r);
        if (!line) { fprintf(stderr, "%s: connection closed\n", what); exit(2); }
        if (line[0] != want) { fprintf(stderr, "%s: %s\n", what, line); exit(1); }
        if (strlen(line) < 4 || line[3] != '-') return;
    }
}

/* outbound_bench.py's message(): the same headers, the line repeated up to `size` bytes. */
static size_t message(char *out, int i, int size, const char *run) {
    int n = snprintf(out, MSG_MAX,
        "From: <%s>\r\nTo: <user%d@remote.example>\r\nSubject: outbound bench %s %d\r\n"
        "Message-ID: <bench.%s.%d@client.example.test>\r\nDate: Sun, 6 Dec 2026 05:00:00 +0000\r\n\r\n",
        SENDER, i, run, i, run, i);
    size_t len = (size_t)n, body = size > n + 2 ? (size_t)(size - n - 2) : 0, l = strlen(LINE);
    for (size_t k = 0; k < body; k++) out[len++] = LINE[k % l];
    memcpy(out + len, "\r\n.\r\n", 5);
    return len + 5;
}

static int client(int argc, char **argv) {
    if (argc != 9) { fprintf(stderr, "usage: smtp_raw client HOST PORT AUTH64|- FIRST COUNT SIZE RUN\n"); return 2; }
    const char *auth = argv[4], *run = argv[8];
    int first = atoi(argv[5]), count = atoi(argv[6]), size = atoi(argv[7]);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[3])) };
    if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1) die("address");
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static reader r;
    r.fd = fd;
    char cmd[1024], *msg = malloc(MSG_MAX);
    if (!msg) die("malloc");
    expect(&r, '2', "greeting");
    send_all(fd, "EHLO client.example.test\r\n", 26);
    expect(&r, '2', "EHLO");
    if (strcmp(auth, "-") != 0) {
        int n = snprintf(cmd, sizeof cmd, "AUTH PLAIN %s\r\n", auth);
        send_all(fd, cmd, (size_t)n);
        expect(&r, '2', "AUTH");
    }
    for (int i = first; i < first + count; i++) {
        // RFC 2920 §3.1: MAIL, RCPT and DATA in one group, DATA last; then each reply in order.
        int n = snprintf(cmd, sizeof cmd, "MAIL FROM:<%s>\r\nRCPT TO:<user%d@remote.example>\r\nDATA\r\n", SENDER, i);
        send_all(fd, cmd, (size_t)n);
        expect(&r, '2', "MAIL");
        expect(&r, '2', "RCPT");
        expect(&r, '3', "DATA");
        size_t len = message(msg, i, size, run);
        send_all(fd, msg, len);
        expect(&r, '2', "end of data");
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    send_all(fd, "QUIT\r\n", 6);
    printf("%.6f\n", (double)ts.tv_sec + ts.tv_nsec / 1e9);
    close(fd);
    return 0;
}

/* One connection of the trivial server: every command answered from memory, DATA read to "." */
static void serve_one(int fd) {
    static reader r;
    r.fd = fd; r.start = r.end = 0;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    send_all(fd, "220 sink ESMTP\r\n", 16);
    char *line;
    while ((line = next_line(&r))) {
        const char *reply = "250 ok\r\n";
        if (!strncasecmp(line, "EHLO", 4)) reply = "250-sink\r\n250-PIPELINING\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n";
        else if (!strncasecmp(line, "AUTH", 4)) reply = "235 ok\r\n";
        else if (!strncasecmp(line, "QUIT", 4)) { send_all(fd, "221 bye\r\n", 9); break; }
        else if (!strncasecmp(line, "DATA", 4)) {
            send_all(fd, "354 go\r\n", 8);
            while ((line = next_line(&r)) && strcmp(line, ".") != 0) {}
            if (!line) break;
        }
        send_all(fd, reply, strlen(reply));
    }
    close(fd);
}

static int serve(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: smtp_raw serve PORT\n"); return 2; }
    signal(SIGCHLD, SIG_IGN);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2])),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0) die("listen");
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0) continue;
        if (fork() == 0) { close(fd); serve_one(c); _exit(0); }
        close(c);
    }
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "client")) return client(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "serve")) return serve(argc, argv);
    fprintf(stderr, "usage: smtp_raw client|serve ...\n");
    return 2;
}
