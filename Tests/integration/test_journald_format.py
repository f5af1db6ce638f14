# Logs under journald (issue 15): when JOURNAL_STREAM names the stderr the daemon set writes to,
# every line of the master, the store and the workers starts with its sd-daemon(3) priority
# ("<6>") and carries no time of its own, even with POSTERN_LOG_TIME=1; when it names another
# stream, lines stay plain.
import os
import re
import subprocess

from conftest import BIN, Postern, _teardown

LINE = re.compile(r"^<([2-7])>(master|store|lmtpd)\[\d+\] (critical|error|warning|notice|info|debug|trace): ")
PRIORITY = {"critical": "2", "error": "3", "warning": "4", "notice": "5", "info": "6", "debug": "7", "trace": "7"}


def start(p, journal_stream):
    log = open(p.log_path, "ab")
    st = os.fstat(log.fileno())
    stream = f"{st.st_dev}:{st.st_ino}" if journal_stream == "ours" else f"{st.st_dev}:{st.st_ino + 1}"
    env = dict(os.environ, JOURNAL_STREAM=stream, POSTERN_LOG_TIME="1")
    p.proc = subprocess.Popen([os.path.join(BIN, "master"), "-c", p.conf], stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    log.close()
    p.wait_ready(30)


def test_priority_prefixes_and_no_time_when_journal_stream_is_stderr():
    p = Postern(name="journald")
    try:
        start(p, "ours")
        p.cli("domain", "add", "example.test")
        _, data = p.deliver(["nobody@example.test"], b"Subject: x\r\n\r\nx\r\n")
        p.stop()
        lines = [l for l in p.log().splitlines() if l.strip()]
        processes = set()
        for l in lines:
            m = LINE.match(l)
            assert m, l
            assert m.group(1) == PRIORITY[m.group(3)], l
            processes.add(m.group(2))
        assert processes == {"master", "store", "lmtpd"}, processes
        assert any(l.startswith("<6>master[") for l in lines)
    finally:
        _teardown(p)


def test_plain_lines_when_journal_stream_names_another_stream():
    p = Postern(name="nojournald")
    try:
        start(p, "other")
        p.stop()
        lines = [l for l in p.log().splitlines() if l.strip()]
        assert lines and not any(l.startswith("<") for l in lines), lines[:3]
        # POSTERN_LOG_TIME=1 applies again: an ISO 8601 time first
        assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", l) for l in lines), lines[:3]
    finally:
        _teardown(p)
