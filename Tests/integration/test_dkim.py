# `postern dkim generate|show`: the key file (0600, root, never replaced) and the printed TXT
# record agree with what OpenSSL reads from the key, and a message signed with the key by dkimpy
# verifies against the printed record (signing by the agent itself is tested in DKIMTests).
import base64
import os
import re
import stat
import subprocess
import time

import pytest

from conftest import IS_ROOT, Postern


@pytest.fixture
def inst():
    p = Postern(name="dkim")
    yield p
    p.cleanup()


def parse(out):
    fields = dict(re.findall(r"^(key|name|value|zone):\s+(.*)$", out, re.M))
    fields["path"] = fields["key"].split(" (")[0]
    return fields


def public_der(path):
    return subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"], capture_output=True,
                          check=True).stdout


def test_generate_ed25519_and_rsa_keys_and_records(inst):
    r = inst.cli("dkim", "generate", "Example.ORG", "--selector", "mail2026", "--algorithm", "ed25519")
    f = parse(r.stdout)
    assert f["path"] == os.path.join(inst.root, "dkim", "example.org", "mail2026.pem")
    assert f["name"] == "mail2026._domainkey.example.org"
    st = os.stat(f["path"])
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(f["path"])).st_mode) == 0o700
    if IS_ROOT:
        assert (st.st_uid, st.st_gid) == (0, 0)
    m = re.fullmatch(r"v=DKIM1; k=ed25519; p=([A-Za-z0-9+/=]+)", f["value"])
    assert m, f["value"]
    # RFC 8463 §4.2: p= is the raw 32-byte key, the tail of the SubjectPublicKeyInfo.
    assert base64.b64decode(m.group(1)) == public_der(f["path"])[-32:]

    # Never replaced: a second key under the same selector fails and leaves the first.
    before = open(f["path"], "rb").read()
    again = inst.cli("dkim", "generate", "example.org", "--selector", "mail2026", check=False)
    assert again.returncode != 0 and "exists" in again.stderr.lower()
    assert open(f["path"], "rb").read() == before

    rsa = parse(inst.cli("dkim", "generate", "example.org").stdout)
    assert rsa["name"] == time.strftime("s%Y%m._domainkey.example.org", time.gmtime())
    m = re.fullmatch(r"v=DKIM1; k=rsa; p=([A-Za-z0-9+/=]+)", rsa["value"])
    assert m and base64.b64decode(m.group(1)) == public_der(rsa["path"])
    # The zone-file line splits the long RSA record into strings of at most 255 octets.
    strings = re.findall(r'"([^"]*)"', rsa["zone"])
    assert len(strings) > 1 and all(len(s) <= 255 for s in strings) and "".join(strings) == rsa["value"]

    shown = inst.cli("dkim", "show").stdout
    assert f["value"] in shown and rsa["value"] in shown


# dkimpy as Debian installs it (python3-dkim): the system interpreter, whatever runs pytest.
SIGN_AND_VERIFY = r"""
import sys, dkim
key, record = open(sys.argv[1], "rb").read(), sys.argv[2].encode()
msg = b"From: a@example.net\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
sig = dkim.sign(msg, b"s1", b"example.net", key, include_headers=[b"from", b"to", b"subject"])
ok = dkim.verify(sig + msg, dnsfunc=lambda name, timeout=5: record if name.rstrip(b".") == b"s1._domainkey.example.net" else None)
print("PASS" if ok else "FAIL")
"""


def test_message_signed_with_the_key_verifies_against_the_printed_record(inst):
    if subprocess.run(["/usr/bin/python3", "-c", "import dkim"], capture_output=True).returncode != 0:
        pytest.skip("python3-dkim is not installed (make test installs it)")
    f = parse(inst.cli("dkim", "generate", "example.net", "--selector", "s1", "--algorithm", "rsa").stdout)
    r = subprocess.run(["/usr/bin/python3", "-c", SIGN_AND_VERIFY, f["path"], f["value"]], capture_output=True, text=True)
    assert r.stdout.strip() == "PASS", r.stdout + r.stderr


def test_invalid_names_are_refused(inst):
    for args in (["../etc"], ["example.org", "--selector", "a/b"], ["example.org", "--algorithm", "dsa"]):
        r = inst.cli("dkim", "generate", *args, check=False)
        assert r.returncode != 0, args
    assert not os.path.exists(os.path.join(inst.root, "etc"))
