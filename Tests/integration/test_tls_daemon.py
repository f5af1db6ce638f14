"""TLS in the daemon set (issue 3), driven by openssl s_client and Python ssl against smtpd:
first-start self-signed certificate, implicit TLS and STARTTLS, old protocol versions refused,
SNI, SIGHUP certificate replacement without dropping sessions, a bad new certificate kept out,
key permissions, handshake timeout, garbage, and 200 concurrent handshakes."""
import concurrent.futures, hashlib, os, re, signal, smtplib, socket, ssl, subprocess, threading, time

import pytest

from conftest import BIN, HOSTNAME, Postern, assert_all_unprivileged, free_port, populate, render_config, wait_for, _teardown


def make_instance(name, smtp_extra="", tls_section=""):
    p = Postern(name=name)
    p.smtps_port, p.sub_port, p.mta_port = free_port(), free_port(), free_port()
    smtp = (f'[smtp]\nmta = ["127.0.0.1:{p.mta_port}"]\nsubmission = ["127.0.0.1:{p.sub_port}"]\n'
            f'smtps = ["127.0.0.1:{p.smtps_port}"]\nmax_connections_per_client = 1000\n{smtp_extra}\n{tls_section}\n')
    p.config_text = render_config(p.data_dir, p.run_dir, p.lmtp_port, smtp_section=smtp)
    with open(p.conf, "w") as f:
        f.write(p.config_text)
    return p


@pytest.fixture
def instance():
    made = []
    def make(name="tls", start=True, **kw):
        p = make_instance(name, **kw)
        made.append(p)
        if start:
            p.start(); populate(p)
        return p
    yield make
    for p in made:
        _teardown(p)


def client_ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def peer_fingerprint(port, server_name=None):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with client_ctx().wrap_socket(raw, server_hostname=server_name) as s:
            der = s.getpeercert(binary_form=True)
            assert s.recv(1024).startswith(b"220 ")
            return hashlib.sha256(der).hexdigest(), s.version()


def make_cert(directory, cn):
    cert, key = os.path.join(directory, f"{cn}.pem"), os.path.join(directory, f"{cn}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "30", "-subj", f"/CN={cn}", "-addext", f"subjectAltName=DNS:{cn}",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    os.chmod(key, 0o600)
    der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], check=True, capture_output=True).stdout
    return cert, key, hashlib.sha256(der).hexdigest()


def s_client(args, stdin=b"", timeout=20):
    return subprocess.run(["openssl", "s_client", "-connect"] + args, input=stdin, capture_output=True, timeout=timeout)


def test_first_start_makes_a_self_signed_certificate(instance):
    p = instance("selfsigned")
    cert, key = os.path.join(p.root, "tls", "cert.pem"), os.path.join(p.root, "tls", "key.pem")
    assert os.path.exists(cert) and oct(os.stat(key).st_mode & 0o777) == "0o600"
    assert "self-signed" in p.log()
    shown = p.cli("cert", "show").stdout
    assert "SAN:      " + HOSTNAME in shown and "(self-signed)" in shown and "valid:" in shown
    out = s_client([f"127.0.0.1:{p.smtps_port}", "-quiet"], b"EHLO x\r\nQUIT\r\n").stdout
    assert b"220 " in out and b"250" in out


def test_openssl_starttls_and_capabilities(instance):
    p = instance("starttls", smtp_extra="plaintext_auth_on_loopback = false")
    r = s_client([f"127.0.0.1:{p.sub_port}", "-starttls", "smtp", "-crlf", "-quiet"], b"EHLO client.test\nQUIT\n")
    out = r.stdout.decode()
    assert "250-AUTH PLAIN LOGIN" in out or "250 AUTH PLAIN LOGIN" in out, out
    assert "STARTTLS" not in out, "STARTTLS must not be offered again inside TLS"
    # before TLS the same listener offers STARTTLS and not AUTH
    s = smtplib.SMTP("127.0.0.1", p.sub_port, timeout=10)
    code, caps = s.ehlo()
    assert b"STARTTLS" in caps and b"AUTH" not in caps
    s.quit()
    # Python ssl client: version and cipher land in the Received header of delivered mail
    s = smtplib.SMTP("127.0.0.1", p.mta_port, timeout=10)
    s.starttls(context=client_ctx()); s.ehlo()
    s.sendmail("sender@example.org", ["alice@example.test"], b"Subject: tls\r\n\r\nover tls\r\n")
    s.quit()
    msg = p.export("alice@example.test")[-1]
    assert re.search(rb"using TLSv1\.[23] with cipher \S+", msg), msg[:400]


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_old_tls_versions_are_refused(instance, flag):
    p = instance("oldtls")
    r = s_client([f"127.0.0.1:{p.smtps_port}", flag, "-cipher", "DEFAULT@SECLEVEL=0"], b"QUIT\n")
    assert r.returncode != 0
    assert b"no peer certificate available" in r.stdout, "no handshake may complete"
    assert b"protocol version" in r.stderr or b"unsupported protocol" in r.stderr, r.stderr
    # and the listener keeps serving
    assert peer_fingerprint(p.smtps_port)[1] in ("TLSv1.2", "TLSv1.3")


def test_sni_picks_the_certificate(instance):
    p = instance("sni", start=False)
    cert, key, fp_other = make_cert(p.root, "other.test")
    p.config_text = p.config_text.replace("[lmtp]", f'[tls.sni]\n"other.test" = ["{cert}", "{key}"]\n\n[lmtp]')
    with open(p.conf, "w") as f:
        f.write(p.config_text)
    p.start(); populate(p)
    assert peer_fingerprint(p.smtps_port, "other.test")[0] == fp_other
    assert peer_fingerprint(p.smtps_port, "OTHER.test")[0] == fp_other
    assert peer_fingerprint(p.smtps_port, "mx.postern.test")[0] != fp_other
    assert peer_fingerprint(p.smtps_port)[0] != fp_other
    out = s_client([f"127.0.0.1:{p.smtps_port}", "-servername", "other.test"], b"QUIT\n").stdout.decode()
    assert "CN = other.test" in out or "CN=other.test" in out


def test_sighup_replaces_the_certificate_and_keeps_sessions(instance):
    p = instance("reload", start=False)
    p.config_text = p.config_text.replace("[master]", "[master]\nshutdown_grace = 20\n", 1).replace("shutdown_grace = 3\n", "")
    with open(p.conf, "w") as f:
        f.write(p.config_text)
    p.start(); populate(p)
    cert, key = os.path.join(p.root, "tls", "cert.pem"), os.path.join(p.root, "tls", "key.pem")
    old_fp, _ = peer_fingerprint(p.smtps_port)
    # a session that stays open across the reload
    held = smtplib.SMTP_SSL("127.0.0.1", p.smtps_port, context=client_ctx(), timeout=10)
    held.ehlo()
    new_cert, new_key, new_fp = make_cert(p.root, HOSTNAME)
    os.replace(new_cert, cert); os.replace(new_key, key)
    p.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: peer_fingerprint(p.smtps_port)[0] == new_fp, 15, what="new certificate served")
    assert held.noop()[0] == 250, "an existing session continues after the reload"
    held.login("alice@example.test", "correct horse battery staple")
    held.sendmail("alice@example.test", ["bob@example.test"], b"Subject: across reload\r\n\r\nstill here\r\n")
    held.quit()
    assert any(b"across reload" in m for m in p.export("bob@example.test"))
    # A bad new certificate: refused, the running one stays.
    with open(cert, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    p.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in p.log(), 10, what="reload refused in the log")
    assert peer_fingerprint(p.smtps_port)[0] == new_fp
    assert old_fp != new_fp


def test_a_key_readable_by_others_stops_the_start(instance):
    p = instance("keymode", start=False)
    cert, key, _ = make_cert(p.root, HOSTNAME)
    os.chmod(key, 0o644)
    p.config_text = p.config_text.replace("[lmtp]", f'[tls]\ncertificate = "{cert}"\nkey = "{key}"\n\n[lmtp]')
    with open(p.conf, "w") as f:
        f.write(p.config_text)
    r = subprocess.run([os.path.join(BIN, "master"), "-c", p.conf], capture_output=True, timeout=30)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert key in err and ("644" in err or "group" in err or "other" in err), err


def test_handshake_timeout_garbage_and_resets_end_only_that_connection(instance):
    p = instance("hostile")
    # a healthy session that must survive everything below
    held = smtplib.SMTP_SSL("127.0.0.1", p.smtps_port, context=client_ctx(), timeout=10)
    held.ehlo()
    pid = p.pids("smtp")[0]
    # garbage instead of a ClientHello
    with socket.create_connection(("127.0.0.1", p.smtps_port), timeout=10) as s:
        s.sendall(b"EHLO this is not TLS\r\n" * 10)
        s.settimeout(10)
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        assert b"250" not in data
    # a reset in the middle of a session
    s = socket.create_connection(("127.0.0.1", p.smtps_port), timeout=10)
    t = client_ctx().wrap_socket(s)
    t.recv(100)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    t.close()                                # linger 0: the kernel sends RST
    assert held.noop()[0] == 250
    assert p.pids("smtp")[0] == pid, "smtpd must not have restarted"


def test_a_client_that_stops_mid_handshake_is_timed_out(instance):
    p = instance("hstimeout", tls_section="[tls]\nhandshake_timeout = 1.0\n")
    s = socket.create_connection(("127.0.0.1", p.smtps_port), timeout=15)
    t0 = time.monotonic()
    s.sendall(b"\x16\x03\x01\x00\x10")   # the start of a TLS record, then nothing
    while s.recv(100):                     # perhaps an alert, then the close
        pass
    elapsed = time.monotonic() - t0
    assert 0.5 <= elapsed < 8, elapsed
    s.close()


def test_200_concurrent_handshakes(instance):
    p = instance("many")
    def one(_):
        fp, version = peer_fingerprint(p.smtps_port)
        return version
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as ex:
        versions = list(ex.map(one, range(200)))
    assert len(versions) == 200 and all(v in ("TLSv1.2", "TLSv1.3") for v in versions)


def test_smtpd_runs_without_privileges(instance):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    p = instance("smtpdpriv")
    rows = assert_all_unprivileged(p)
    assert sorted(int(r["PID"]) for r in rows if r["SERVICE"] == "smtp") == sorted(p.pids("smtp"))
    assert p.pids("smtp"), "smtpd is running"


def test_a_refusal_on_the_implicit_tls_port_sends_no_plaintext(instance):
    """RFC 8314 §3: 465 speaks TLS from the first byte, so a connection over max_connections is
    closed without the plaintext 421 (the submission port still gets its 421)."""
    p = instance(name="tlsfull", smtp_extra="max_connections = 1")
    held = smtplib.SMTP_SSL("127.0.0.1", p.smtps_port, context=client_ctx(), timeout=10)
    try:
        with socket.create_connection(("127.0.0.1", p.smtps_port), timeout=10) as s:
            try:
                got = s.recv(1024)
            except ConnectionResetError:
                got = b""
            assert got == b"", got
        with socket.create_connection(("127.0.0.1", p.sub_port), timeout=10) as s:
            assert s.recv(1024).startswith(b"421 4.7.0")
    finally:
        held.close()
