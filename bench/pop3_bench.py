#!/usr/bin/env python3
"""POP3 benchmark: Postern's pop3d vs Dovecot's pop3 (from ../shared/anchors), same run.

The anchor's POP3 row (bench.py bench_pop3): poplib, login + LIST + RETR of every message of a
1,000-message maildrop (the anchor's 5 KB messages, make_msg) + QUIT, over plaintext on
loopback. The two servers' runs are interleaved so drift on the machine hits both alike; prints
the median of --runs runs of each, in messages per second, and the ratio (goal: >= 2x).
Run as root (the anchors need it): `python3 bench/pop3_bench.py` (a release build by default).
"""
import argparse, os, poplib, smtplib, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = os.environ.get("ANCHORS_DIR", os.path.join(ROOT, "..", "shared", "anchors"))
# The anchor's bench.py reads its settings from the environment common.sh exports.
_home = os.environ.setdefault("ANCHORS_HOME", "/tmp/mail-anchors")
for k, v in {"DOMAIN": "example.test", "PASSWORD": "pass", "IMAP_PORT": "20143", "POP3_PORT": "20110", "SMTP_PORT": "20025",
             "DOVECOT_RUN": f"{_home}/run/dovecot", "MAIL_DIR": f"{_home}/mail", "LMTP_SOCKET": f"{_home}/run/dovecot/lmtp",
             "POSTFIX_SPOOL": f"{_home}/spool/postfix", "MAILSTORE": "maildir",
             "DOVECOT_CONF": f"{_home}/etc/dovecot/dovecot-maildir.conf"}.items():
    os.environ.setdefault(k, v)
sys.path.insert(0, ANCHORS)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as anchor                      # noqa: E402  make_msg, topup, user, POP3_USER
from lmtp_bench import Postern, prepare     # noqa: E402


def free_port():
    import socket
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def pop3_run(port, user, password, expect):
    """The anchor's bench_pop3 loop, once -> messages per second."""
    t0 = time.perf_counter()
    p = poplib.POP3("127.0.0.1", port); p.user(user); p.pass_(password)
    _, listing, _ = p.list()
    for entry in listing:
        p.retr(int(entry.split()[0]))
    p.quit()
    assert len(listing) >= expect, f"{len(listing)} messages, {expect} expected"
    return len(listing) / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--processes", type=int, default=1, help="pop3d processes")
    ap.add_argument("--bin", default=None, help="Postern binaries (default: release build)")
    a = ap.parse_args()
    bindir = prepare(a.bin)
    rcpt = anchor.user(anchor.POP3_USER)
    port = free_port()
    pt = Postern(bindir, [rcpt], pop3=f'[pop3]\nprocesses = {a.processes}\nlisten = ["pop3@127.0.0.1:{port}"]\n')
    try:
        # The same messages into both: Dovecot's through the anchor's own top-up, Postern's
        # over its LMTP socket (ids from 500,000 as the anchor's).
        anchor.topup(anchor.POP3_USER, a.messages, 500_000)
        have = pt.count(rcpt)
        if have < a.messages:
            c = smtplib.LMTP(pt.socket)
            for i in range(500_000 + have, 500_000 + a.messages):
                c.sendmail(anchor.SENDER, [rcpt], anchor.make_msg(i, rcpt))
            c.quit()
        for _ in range(300):                     # pop3d up
            try:
                poplib.POP3("127.0.0.1", port, timeout=1).quit(); break
            except OSError:
                time.sleep(0.1)
        pop3_run(port, rcpt, "pass", a.messages); pop3_run(anchor.POP3_PORT, rcpt, anchor.PASSWORD, a.messages)   # warm-up
        ours, theirs = [], []
        for r in range(a.runs):
            ours.append(pop3_run(port, rcpt, "pass", a.messages))
            theirs.append(pop3_run(anchor.POP3_PORT, rcpt, anchor.PASSWORD, a.messages))
            print(f"  run {r + 1}: postern {ours[-1]:7.0f} msg/s  dovecot {theirs[-1]:7.0f} msg/s", flush=True)
    finally:
        pt.stop()
        subprocess.run(["bash", os.path.join(ANCHORS, "stop-anchors.sh")], stdout=subprocess.DEVNULL)
    mo, md = statistics.median(ours), statistics.median(theirs)
    print(f"\nPOP3: login + LIST + RETR all of {a.messages} x 5 KB msgs + QUIT (poplib, plaintext, loopback), median of {a.runs}")
    print("| | Postern pop3d | Dovecot pop3 | ratio |\n|---|---|---|---|")
    print(f"| msg/s | {mo:.0f} | {md:.0f} | {mo / md:.2f}x |")
    print(f"goal >= 2x: {'met' if mo >= 2 * md else 'NOT met'}")


if __name__ == "__main__":
    main()
