"""RFC 3461 DSN parameters on submission and SRS for forwarded mail (issue 13, points 3 and 5),
on the real daemon set: smtplib gives RET/ENVID/NOTIFY/ORCPT on 587 and the queue rows
carry them; mail forwarded by an alias to a remote target through port 25 is queued with the
SRS0 rewrite of its sender (hash checked here with Python's hmac and the store's srs.key), and
the bounce to that SRS0 address comes back through port 25 to the original sender."""
import base64
import hashlib
import hmac
import os
import smtplib
import subprocess
import uuid

import pytest

from conftest import HOSTNAME, IS_ROOT, free_port, running_instance
from test_smtpd import Raw, expect, new_source, smtp_section, submission_login

SRS_DOMAIN = HOSTNAME          # [srs] domain defaults to the hostname


@pytest.fixture(scope="module")
def inst():
    ports = {"mta": free_port(), "submission": free_port()}
    with running_instance("dsn-srs", smtp_section=smtp_section(ports, "plaintext_auth_on_loopback = false\n")) as p:
        p.ports = ports
        p.cli("alias", "add", "fwd@example.test", "friend@remote.example")
        p.cli("alias", "add", "both@example.test", "bob@example.test")
        p.cli("alias", "add", "both@example.test", "buddy@remote.example")
        yield p


def queue_row(p, recipient):
    rows = p.db_query("SELECT sender, recipient, origin, dsn_notify, dsn_orcpt, dsn_ret, dsn_envid FROM queue "
                      f"WHERE recipient = '{recipient}' ORDER BY id")
    return rows


def message(tag):
    mid = f"<{tag}-{uuid.uuid4().hex}@client.example>"
    return mid, (f"From: x@example.test\r\nTo: y@example.test\r\nSubject: {tag}\r\nMessage-ID: {mid}\r\n\r\nbody\r\n").encode()


def mta_send(p, sender, rcpt, body):
    """One transaction on port 25; returns the replies to MAIL, RCPT and the end of DATA."""
    c = Raw(p.ports["mta"], src=new_source())
    try:
        expect(c.cmd("EHLO bounce.example"), 250)
        mail = c.cmd(f"MAIL FROM:<{sender}>")
        rcpt_reply = c.cmd(f"RCPT TO:<{rcpt}>")
        end = None
        if rcpt_reply[0] == 250:
            expect(c.cmd("DATA"), 354)
            c.send(body + b".\r\n")
            end = c.reply()
        c.cmd("QUIT")
        return mail, rcpt_reply, end
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# DSN (RFC 3461) on submission

def test_smtplib_dsn_parameters_reach_the_queue_rows(inst):
    remote = f"x-{uuid.uuid4().hex[:8]}@remote.example"
    _, body = message("dsn")
    s = submission_login(inst)
    try:
        assert "dsn" in s.esmtp_features
        refused = s.sendmail("alice@example.test", [remote, "bob@example.test"], body,
                             mail_options=["RET=HDRS", "ENVID=abc+2Bdef"],
                             rcpt_options=["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;{remote}"])
        assert refused == {}
    finally:
        s.quit()
    assert queue_row(inst, remote) == [("alice@example.test", remote, 0, 3, f"rfc822;{remote}", "HDRS", "abc+def")]


def test_dsn_never_and_an_alias_target(inst):
    """NOTIFY=NEVER is kept as 0; the remote target of a local alias takes its recipient's
    parameters, and a submission keeps its sender (origin submission). (swaks has no DSN
    options: smtplib again, over smtplib's own MAIL/RCPT option lists.)"""
    _, body = message("never")
    s = submission_login(inst)
    try:
        assert s.sendmail("alice@example.test", ["both@example.test"], body, mail_options=["RET=FULL", "ENVID=client-1"],
                          rcpt_options=["NOTIFY=NEVER", "ORCPT=rfc822;both@example.test"]) == {}
    finally:
        s.quit()
    rows = queue_row(inst, "buddy@remote.example")
    assert rows[-1] == ("alice@example.test", "buddy@remote.example", 0, 0, "rfc822;both@example.test", "FULL", "client-1"), rows


def test_malformed_dsn_parameters_are_refused_and_port_25_has_no_dsn(inst):
    s = submission_login(inst)
    try:
        assert s.docmd("MAIL FROM:<alice@example.test> RET=PARTIAL")[0] == 501
        assert s.docmd("MAIL FROM:<alice@example.test> ENVID=" + "a" * 101)[0] == 501
        assert s.docmd("MAIL FROM:<alice@example.test> RET=FULL ENVID=ok")[0] == 250
        code, text = s.docmd("RCPT TO:<x@remote.example> NOTIFY=NEVER,SUCCESS")
        assert (code, text[:5]) == (501, b"5.5.4"), (code, text)
        assert s.docmd("RCPT TO:<x@remote.example> NOTIFY=SUCCESS NOTIFY=DELAY")[0] == 501
        assert s.docmd("RCPT TO:<x@remote.example> ORCPT=rfc822;x+ZZ")[0] == 501
        assert s.docmd("RCPT TO:<x@remote.example> ORCPT=rfc822;" + "b" * 494)[0] == 501
        assert s.docmd("RCPT TO:<x@remote.example> ORCPT=rfc822;" + "b" * 493)[0] == 250   # 500 characters
    finally:
        s.quit()
    c = Raw(inst.ports["mta"], src=new_source())
    try:
        code, text = c.cmd("EHLO client.example")
        assert "DSN" not in text.split("\n")
        expect(c.cmd("MAIL FROM:<a@remote.example> RET=HDRS"), 555, "5.5.4")
        expect(c.cmd("MAIL FROM:<a@remote.example>"), 250)
        expect(c.cmd("RCPT TO:<alice@example.test> NOTIFY=SUCCESS"), 555, "5.5.4")
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# SRS for forwarded mail

def srs_key(p):
    with open(os.path.join(p.data_dir, "srs.key"), "rb") as f:
        return f.read()


@pytest.mark.skipif(not IS_ROOT, reason="reads the store's data dir")
def test_srs_key_is_made_once_by_the_store(inst):
    import pwd
    path = os.path.join(inst.data_dir, "srs.key")
    st = os.stat(path)
    assert st.st_mode & 0o777 == 0o600
    assert st.st_uid == pwd.getpwnam("postern-store").pw_uid
    assert len(srs_key(inst)) == 32


@pytest.mark.skipif(not IS_ROOT, reason="reads the store's data dir")
def test_forward_through_port_25_gets_an_srs0_sender_and_its_bounce_returns(inst):
    mid, body = message("forward")
    mail, rcpt, end = mta_send(inst, "Joe.User@Sender.example", "fwd@example.test", body)
    assert (mail[0], rcpt[0], end[0]) == (250, 250, 250), (mail, rcpt, end)
    rows = [r for r in queue_row(inst, "friend@remote.example")]
    assert rows, inst.db_query("SELECT sender, recipient FROM queue")
    sender, _, origin, notify, orcpt, ret, envid = rows[-1]
    assert origin == 1 and notify is None and (orcpt, ret, envid) == ("", "", "")
    # SRS0=HHHH=TT=domain=local@srs-domain, HHHH = base64(HMAC-SHA1(key, lower(TT+domain+local)))[:4] (postsrsd).
    local, domain = sender.rsplit("@", 1)
    assert domain == SRS_DOMAIN
    tag, hhhh, tt, orig_domain, orig_local = local.split("=", 4)
    assert (tag, orig_domain, orig_local) == ("SRS0", "Sender.example", "Joe.User"), sender
    mac = hmac.new(srs_key(inst), (tt + orig_domain + orig_local).lower().encode(), hashlib.sha1).digest()
    assert hhhh == base64.b64encode(mac).decode()[:4], sender

    # The bounce comes back to the SRS0 address with the null sender: queued to the original
    # sender, the null sender kept (never an SRS rewrite of <>), origin forward.
    _, bounce = message("bounce")
    mail, rcpt, end = mta_send(inst, "", sender, bounce)
    assert (mail[0], rcpt[0], end[0]) == (250, 250, 250), (mail, rcpt, end)
    assert queue_row(inst, "Joe.User@Sender.example") == [("", "Joe.User@Sender.example", 1, None, "", "", "")]

    # A forged hash, or an SRS address nobody made: unknown user at RCPT.
    forged = f"SRS0={'AAAA' if hhhh != 'AAAA' else 'BBBB'}={tt}={orig_domain}={orig_local}@{SRS_DOMAIN}"
    _, rcpt, _ = mta_send(inst, "", forged, bounce)
    assert rcpt[0] == 550 and rcpt[1].startswith("5.1.1"), rcpt
    _, rcpt, _ = mta_send(inst, "", f"SRS0=abcd=ZZ=x.example=y@{SRS_DOMAIN}", bounce)
    assert rcpt[0] == 550 and rcpt[1].startswith("5.1.1"), rcpt


@pytest.mark.skipif(not IS_ROOT, reason="reads the store's data dir")
def test_alias_with_local_and_remote_targets_null_sender_stays_null(inst):
    _, body = message("both")
    mail, rcpt, end = mta_send(inst, "", "both@example.test", body)
    assert (mail[0], rcpt[0], end[0]) == (250, 250, 250), (mail, rcpt, end)
    rows = queue_row(inst, "buddy@remote.example")
    assert rows[-1][:3] == ("", "buddy@remote.example", 1), rows
