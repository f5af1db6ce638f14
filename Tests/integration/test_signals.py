# Signals and configuration (DESIGN §1, §6): SIGHUP reloads without dropping the store,
# a bad configuration is refused with file, line and key, SIGTERM lets open sessions finish
# within shutdown_grace, then the master exits 0 and removes its sockets.
import os
import signal
import subprocess
import tempfile
import shutil
import time

import pytest

from conftest import BIN, free_port, header_value, lmtp_transaction, render_config, wait_for


def wait_log(p, start, needle, timeout=10):
    return wait_for(lambda: needle.lower() in p.log()[start:].lower(), timeout, what=f"log line with {needle!r}")


def all_running(p):
    return all(r["STATE"] == "running" and int(r["PID"]) > 0 for r in p.status())


def msg(tag):
    mid = f"<{tag}.{time.time_ns()}@test.example.org>"
    return mid, b"Subject: " + tag.encode() + b"\r\nMessage-ID: " + mid.encode() + b"\r\n\r\nbody\r\n"


def test_sighup_reloads_and_keeps_the_store(make_postern):
    p = make_postern("hup")
    store_pid = p.store_pid()
    # Lower max_recipients in the file: the reloaded workers must apply it.
    with open(p.conf, "a") as f:
        f.write("max_recipients = 2\n")          # the file ends inside [lmtp]
    assert p.cli("config", "check").returncode == 0
    os.kill(p.proc.pid, signal.SIGHUP)

    def new_limit_applies():
        c = p.lmtp(timeout=10)
        try:
            assert c.mail("sender@example.org")[0] == 250
            codes = [c.rcpt(r)[0] for r in ("alice@example.test", "bob@example.test", "postmaster@example.test")]
            c.rset()
            return codes == [250, 250, 452]
        finally:
            c.close()
    wait_for(new_limit_applies, 15, interval=0.1, what="max_recipients = 2 in effect after SIGHUP")
    wait_for(lambda: all_running(p), 15, what="all processes running")
    assert p.proc.poll() is None
    assert p.store_pid() == store_pid, "SIGHUP must not restart the store"
    mid, body = msg("after-hup")
    c = p.lmtp()
    try:
        _, rcpt, data = lmtp_transaction(c, "sender@example.org",
                                         ["alice@example.test", "bob@example.test", "postmaster@example.test"], body)
        assert [r[0] for r in rcpt] == [250, 250, 452], rcpt
        assert [d[0] for d in data] == [250, 250], data
    finally:
        c.quit()
    assert any(header_value(m, "Message-ID") == mid for m in p.export("bob@example.test"))
    assert p.store_pid() == store_pid


def test_sighup_with_bad_config_keeps_running(make_postern):
    p = make_postern("hupbad")
    store_pid = p.store_pid()
    with open(p.conf, "a") as f:
        f.write("no_such_key = true\n")
    start = len(p.log())
    os.kill(p.proc.pid, signal.SIGHUP)
    wait_log(p, start, "no_such_key")                 # the refusal names the key
    assert p.proc.poll() is None, "a bad configuration on SIGHUP must not stop the master"
    with open(p.conf, "w") as f:                       # the CLI reads the file too
        f.write(p.config_text)
    wait_for(lambda: all_running(p), 15, what="all processes running")
    assert p.proc.poll() is None, "a bad configuration on SIGHUP must not stop the master"
    assert p.store_pid() == store_pid
    _, data = p.deliver(["bob@example.test"], msg("after-bad-hup")[1])
    assert [d[0] for d in data] == [250]


BAD_CONFIGS = [
    # (description, text after the good config, key that must be named)
    ("unknown key in [lmtp]", "bogus_key = 1\n", "bogus_key"),
    ("unknown section key", "[store]\nfsync = true\ncolour = \"blue\"\n", "colour"),
    ("bad value", "max_recipients = \"lots\"\n", "max_recipients"),
]


@pytest.mark.parametrize("desc,extra,key", BAD_CONFIGS, ids=[b[0] for b in BAD_CONFIGS])
def test_bad_config_is_refused_with_file_line_key(desc, extra, key):
    root = tempfile.mkdtemp(prefix="postern-it-badconf-")
    try:
        os.chmod(root, 0o755)
        data_dir, run_dir = os.path.join(root, "data"), os.path.join(root, "run")
        good = render_config(data_dir, run_dir, free_port())
        bad = os.path.join(root, "bad.toml")
        with open(bad, "w") as f:
            f.write(good + extra)
        line = (good + extra).splitlines().index(next(l for l in extra.splitlines() if l.startswith(key))) + 1

        r = subprocess.run([os.path.join(BIN, "postern"), "config", "check", "-c", bad],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, r.stdout
        assert f"{bad}:{line}" in r.stderr and key in r.stderr, r.stderr

        proc = subprocess.Popen([os.path.join(BIN, "master"), "-c", bad], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise AssertionError(f"master started with a bad configuration ({desc})")
        assert proc.returncode != 0
        assert f"{bad}:{line}" in err and key in err, err
        assert not os.path.exists(data_dir)
        assert not os.path.exists(os.path.join(run_dir, "control"))

        # The same file without the bad part is fine.
        with open(bad, "w") as f:
            f.write(good)
        r = subprocess.run([os.path.join(BIN, "postern"), "config", "check", "-c", bad],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_sigterm_lets_open_session_finish(make_postern):
    p = make_postern("term")
    mid, body = msg("finished-during-shutdown")
    c = p.lmtp()
    assert c.mail("sender@example.org")[0] == 250
    assert c.rcpt("bob@example.test")[0] == 250
    assert c.docmd("DATA")[0] == 354
    c.send(body[:20])
    p.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: p.row("master")["STATE"] == "stopping", 5, what="master stopping")
    c.send(body[20:] + b".\r\n")
    code, text = c.getreply()
    assert code == 250, (code, text)
    assert c.quit()[0] == 221
    c.close()
    rc = p.proc.wait(timeout=3 + 10)
    assert rc == 0, f"master exit status {rc}"
    for sock in (p.lmtp_socket, p.control_socket):
        assert not os.path.exists(sock), f"{sock} left behind"
    # The acknowledged message is on disk: start again on the same data and look.
    p.start()
    assert any(header_value(m, "Message-ID") == mid for m in p.export("bob@example.test"))


def test_sigterm_with_idle_session_exits_after_grace(make_postern):
    p = make_postern("termidle")
    c = p.lmtp()                      # a session that never finishes
    pids = [p.store_pid()] + p.pids("lmtp")
    t0 = time.monotonic()
    p.proc.send_signal(signal.SIGTERM)
    rc = p.proc.wait(timeout=3 + 10)
    assert rc == 0
    assert time.monotonic() - t0 < 3 + 8
    for pid in pids:
        wait_for(lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z",
                 5, what=f"pid {pid} gone")
    c.close()
    assert not os.path.exists(p.lmtp_socket) and not os.path.exists(p.control_socket)


def test_idle_session_hears_421_when_the_grace_period_ends(make_postern):
    # RFC 5321 §3.8: a server that is shut down says 421 before it closes. A session that is
    # still open when the grace period ends gets "421 4.3.2" instead of a silent close.
    p = make_postern("term421")
    c = p.lmtp()
    assert c.docmd("LHLO", "client.example")[0] == 250
    p.proc.send_signal(signal.SIGTERM)
    code, text = c.getreply()
    assert code == 421 and text.startswith(b"4.3.2"), (code, text)
    assert p.proc.wait(timeout=3 + 10) == 0
    c.close()
