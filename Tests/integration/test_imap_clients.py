"""imapd driven by two mail clients nobody here wrote: mbsync (isync) syncing a Maildir both
ways over IMAPS, and mutt (through a pty) reading a message and saving it to another folder.
Every assertion is checked on the server with imaplib; the clients' own output is kept in the
failure message.

    POSTERN_BIN=$(swift build --show-bin-path) python3 -m pytest -q Tests/integration/test_imap_clients.py
"""
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import uuid

import pytest

from conftest import DEFAULT_PASSWORD, free_port, running_instance, wait_for
from test_imapd import login, message, ok   # the imaplib helpers of the imapd suite

MBSYNC_USER = "erin@example.test"
MUTT_USER = "frank@example.test"
MBSYNC_UTF8_USER = "gina@example.test"
# A client run that takes longer than this is hung (a prompt nobody answers, a lost reply).
CLIENT_TIMEOUT = 90

MBSYNC = shutil.which("mbsync")
MUTT = shutil.which("mutt")


@pytest.fixture(scope="module")
def imap():
    ports = {"imap": free_port(), "imaps": free_port()}
    section = f'[imap]\nlisten = ["imap@127.0.0.1:{ports["imap"]}", "imaps@127.0.0.1:{ports["imaps"]}"]\n'
    with running_instance("imapclients", users=[MBSYNC_USER, MUTT_USER, MBSYNC_UTF8_USER], imap_section=section) as p:
        wait_for(lambda: "imapd ready" in p.log(), 20, what="imapd ready")
        p.ports = ports
        p.cert = os.path.join(p.root, "tls", "cert.pem")
        yield p


def server_messages(p, user, mailbox):
    """{Subject: (flags, whole message bytes)} of `mailbox`, read with imaplib."""
    m = login(p, user, tls=True)
    try:
        ok(m.select(f'"{mailbox}"', readonly=True))
        typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[])")
        out = {}
        if typ != "OK" or data == [None]:
            return out
        for item in data:
            if not isinstance(item, tuple):
                continue
            flags = item[0].split(b"FLAGS (", 1)[1].split(b")", 1)[0].decode().split()
            out[subject_of(item[1])] = (set(flags), item[1])
        return out
    finally:
        m.logout()


def server_mailboxes(p, user):
    m = login(p, user, tls=True)
    try:
        return b"\n".join(ok(m.list()))
    finally:
        m.logout()


def subject_of(msg):
    for line in msg.replace(b"\r\n", b"\n").split(b"\n"):
        if not line:
            break
        if line.lower().startswith(b"subject: "):
            return line[9:].decode()
    return None


# ---------------------------------------------------------------------------------------------
# mbsync

class Mbsync:
    """A local Maildir tree and an mbsync configuration for one user of `p`."""

    def __init__(self, p, user):
        self.root = tempfile.mkdtemp(prefix="postern-mbsync-")
        self.mail = os.path.join(self.root, "mail")
        os.makedirs(self.mail)
        self.rc = os.path.join(self.root, "mbsyncrc")
        with open(self.rc, "w") as f:
            f.write(
                "IMAPAccount postern\n"
                "Host 127.0.0.1\n"
                f"Port {p.ports['imaps']}\n"
                f"User {user}\n"
                f'Pass "{DEFAULT_PASSWORD}"\n'
                "SSLType IMAPS\n"
                f"CertificateFile {p.cert}\n"
                "\n"
                "IMAPStore remote\n"
                "Account postern\n"
                "\n"
                "MaildirStore local\n"
                f"Path {self.mail}/\n"
                f"Inbox {self.mail}/INBOX\n"
                "SubFolders Verbatim\n"
                "\n"
                "Channel postern\n"
                "Far :remote:\n"
                "Near :local:\n"
                "Patterns *\n"
                "Create Both\n"
                "Expunge Both\n"
                "SyncState *\n")
        self.transcripts = []

    def run(self, *flags, status=0):
        r = subprocess.run([MBSYNC, "-c", self.rc, *flags, "-a"], capture_output=True, text=True,
                           errors="replace", timeout=CLIENT_TIMEOUT)
        self.transcripts.append(f"$ mbsync {' '.join(flags)} -a  (exit {r.returncode})\n{r.stdout}{r.stderr}")
        assert r.returncode == status, self.transcript()
        return r

    def transcript(self):
        return "\n".join(self.transcripts)[-20000:]

    def files(self, folder):
        """{Subject: (path, maildir flags, bytes)} of the local folder's new/ and cur/."""
        out = {}
        base = os.path.join(self.mail, folder)
        for sub in ("new", "cur"):
            d = os.path.join(base, sub)
            if not os.path.isdir(d):
                continue
            for name in os.listdir(d):
                path = os.path.join(d, name)
                with open(path, "rb") as f:
                    data = f.read()
                flags = name.rsplit(":2,", 1)[1] if ":2," in name else ""
                out[subject_of(data)] = (path, flags, data)
        return out

    def set_flags(self, path, flags):
        """Renames a Maildir file into cur/ with `flags` (the way a local MUA marks it)."""
        d = os.path.dirname(os.path.dirname(path))
        base = os.path.basename(path).split(":2,", 1)[0]
        new = os.path.join(d, "cur", f"{base}:2,{''.join(sorted(flags))}")
        os.rename(path, new)
        return new

    def cleanup(self):
        if not os.environ.get("POSTERN_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)


def crlf_to_lf(b):
    return b.replace(b"\r\n", b"\n")


def without_tuid(local):
    """A Maildir file as mbsync wrote it, less the one `X-TUID:` line it adds to the header of
    every message it copies (its own bookkeeping, so an interrupted copy can be found again)."""
    head, sep, body = local.partition(b"\n\n")
    lines = [l for l in head.split(b"\n") if not l.startswith(b"X-TUID: ")]
    assert len(lines) == head.count(b"\n"), f"expected one X-TUID line: {head!r}"
    return b"\n".join(lines) + sep + body


@pytest.mark.skipif(MBSYNC is None, reason="mbsync (isync) not installed; make test installs it")
def test_mbsync_syncs_a_maildir_both_ways(imap):
    user = MBSYNC_USER
    delivered = {s: message(s, body=f"Body of {s}.\r\nSecond line.\r\n") for s in ("one", "two", "three", "four")}
    for body in delivered.values():
        imap.deliver([user], body)
    sync = Mbsync(imap, user)
    try:
        # Round 1 (verbose once): what LMTP delivered appears locally, byte for byte (Maildir
        # keeps LF line ends; mbsync converts).
        sync.run("-V")
        why = sync.transcript()
        local = sync.files("INBOX")
        assert set(local) == set(delivered), (sorted(local), why)
        on_server = server_messages(imap, user, "INBOX")
        for s, body in delivered.items():
            data = without_tuid(local[s][2])
            assert data == crlf_to_lf(on_server[s][1]), (s, data, why)
            assert data.endswith(crlf_to_lf(body.encode())), (s, data, why)
        for folder in ("Drafts", "Sent", "Trash", "Archive", "Junk"):
            assert os.path.isdir(os.path.join(sync.mail, folder, "cur")), (folder, why)

        # Local changes: seen and passed ($Forwarded), flagged, deleted; a new folder with a message.
        sync.set_flags(local["one"][0], "PS")
        sync.set_flags(local["two"][0], "F")
        sync.set_flags(local["three"][0], "T")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(sync.mail, "Projects", sub))
        made_locally = message("made locally", body="Written in the Maildir.\r\n").replace("\r\n", "\n")
        with open(os.path.join(sync.mail, "Projects", "new", f"1700000000.{uuid.uuid4().hex}.local"), "w") as f:
            f.write(made_locally)

        # Round 2: the changes reach the server.
        sync.run()
        why = sync.transcript()
        inbox = server_messages(imap, user, "INBOX")
        assert set(inbox) == {"one", "two", "four"}, (sorted(inbox), why)
        assert inbox["one"][0] == {"\\Seen", "$Forwarded"}, (inbox["one"][0], why)
        assert inbox["two"][0] == {"\\Flagged"}, (inbox["two"][0], why)
        assert b"Projects" in server_mailboxes(imap, user), why
        projects = server_messages(imap, user, "Projects")
        assert list(projects) == ["made locally"], (projects, why)
        assert without_tuid(crlf_to_lf(projects["made locally"][1])) == made_locally.encode(), (projects, why)
        assert set(sync.files("INBOX")) == {"one", "two", "four"}, why

        # Round 3: new mail, a flag change and an expunge on the server come down.
        five = message("five")
        imap.deliver([user], five)
        m = login(imap, user, tls=True)
        try:
            ok(m.select("INBOX"))
            uid = ok(m.uid("SEARCH", "SUBJECT", "four"))[0].decode()
            ok(m.uid("STORE", uid, "+FLAGS", "(\\Flagged \\Answered)"))
            uid = ok(m.uid("SEARCH", "SUBJECT", "two"))[0].decode()
            ok(m.uid("STORE", uid, "+FLAGS", "(\\Deleted)"))
            ok(m.expunge())
        finally:
            m.logout()
        sync.run()
        why = sync.transcript()
        local = sync.files("INBOX")
        assert set(local) == {"one", "four", "five"}, (sorted(local), why)
        assert local["four"][1] == "FR", (local["four"], why)
        assert without_tuid(local["five"][2]).endswith(crlf_to_lf(five.encode())), why
        assert local["one"][1] == "PS", why

        # A fourth run with nothing to do changes nothing on either side.
        sync.run()
        assert set(sync.files("INBOX")) == set(local), sync.transcript()
        assert set(server_messages(imap, user, "INBOX")) == set(local), sync.transcript()
    finally:
        sync.cleanup()


@pytest.mark.skipif(MBSYNC is None, reason="mbsync (isync) not installed; make test installs it")
def test_mbsync_skips_only_the_folder_whose_name_it_cannot_send(imap):
    """mbsync 1.4 has no modified UTF-7: a local "Bücher" goes out as raw UTF-8. imapd answers
    that CREATE NO [CANNOT] (a BAD made mbsync cancel the whole store); every other folder
    still syncs, and mbsync says which one it could not create."""
    user = MBSYNC_UTF8_USER
    imap.deliver([user], message("inbound"))
    sync = Mbsync(imap, user)
    try:
        for folder, subject in (("B\u00fccher", "umlaut"), ("Zeta", "zeta")):
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(sync.mail, folder, sub))
            with open(os.path.join(sync.mail, folder, "new", f"1700000000.{uuid.uuid4().hex}.local"), "w") as f:
                f.write(message(subject).replace("\r\n", "\n"))
        r = sync.run("-V", status=1)
        why = sync.transcript()
        assert "NO [CANNOT]" in r.stdout + r.stderr, why
        assert set(sync.files("INBOX")) == {"inbound"}, why
        assert list(server_messages(imap, user, "Zeta")) == ["zeta"], why
        assert b"B&APw-cher" not in server_mailboxes(imap, user), why
    finally:
        sync.cleanup()


# ---------------------------------------------------------------------------------------------
# mutt

class Mutt:
    """mutt driven through a pty (it needs a terminal even with every key pushed), with a
    header cache and CONDSTORE/QRESYNC on, so a second run resynchronizes from the cache."""

    def __init__(self, p, user):
        self.root = tempfile.mkdtemp(prefix="postern-mutt-")
        self.rc = os.path.join(self.root, "muttrc")
        with open(self.rc, "w") as f:
            f.write(
                f'set folder="imaps://127.0.0.1:{p.ports["imaps"]}/"\n'
                f'set imap_user="{user}"\n'
                f'set imap_pass="{DEFAULT_PASSWORD}"\n'
                "set spoolfile=+INBOX\n"
                f'set ssl_ca_certificates_file="{p.cert}"\n'
                f'set certificate_file="{p.cert}"\n'
                "set ssl_verify_host=no\n"
                "set ssl_starttls=no\n"
                "set imap_check_subscribed=no\n"
                "set move=no\n"
                "set confirmappend=no\n"
                "set confirmcreate=no\n"
                "set delete=yes\n"
                "set quit=yes\n"
                "set wait_key=no\n"
                "set sort=mailbox-order\n"
                f'set header_cache="{self.root}/hcache"\n'
                "set imap_condstore=yes\n"
                "set imap_qresync=yes\n"
                f'set tmpdir="{self.root}"\n')
        self.transcripts = []

    def run(self, keys):
        import pexpect
        env = dict(os.environ, HOME=self.root, TERM="xterm", LANG="C.UTF-8")
        for old in ("debug", ".muttdebug0"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(self.root, old))
        child = pexpect.spawn(MUTT, ["-n", "-F", self.rc, "-d", "2", "-e", f"push '{keys}'"], env=env,
                              cwd=self.root, dimensions=(40, 132), timeout=CLIENT_TIMEOUT)
        screen = []
        hung = False
        try:
            while True:
                screen.append(child.read_nonblocking(65536, timeout=CLIENT_TIMEOUT))
        except pexpect.EOF:
            pass
        except pexpect.TIMEOUT:
            hung = True
            child.terminate(force=True)
        child.close()
        log = ""
        with contextlib.suppress(FileNotFoundError):
            with open(os.path.join(self.root, ".muttdebug0"), errors="replace") as f:
                log = f.read()[-12000:]
        self.transcripts.append(f"$ mutt -e push '{keys}'  (exit {child.exitstatus}{', hung' if hung else ''})\n"
                                f"--- screen ---\n{ANSI.sub(' ', b''.join(screen).decode('utf-8', 'replace'))[-6000:]}\n"
                                f"--- mutt -d 2 ---\n{log}")
        assert not hung and child.exitstatus == 0, self.transcript()

    def transcript(self):
        return "\n".join(self.transcripts)[-30000:]

    def cleanup(self):
        if not os.environ.get("POSTERN_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)


ANSI = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|[()][0-9A-B]|[=>])")


@pytest.mark.skipif(MUTT is None, reason="mutt not installed; make test installs it")
def test_mutt_reads_and_saves_to_another_folder(imap):
    pytest.importorskip("pexpect")
    user = MUTT_USER
    imap.deliver([user], message("for mutt", body="Read me, then file me.\r\n"))
    for n in range(1, 5):
        imap.deliver([user], message(f"m{n}"))
    mutt = Mutt(imap, user)
    try:
        # Run 1: read the first message, save it to Archive (a server-side UID COPY after its
        # \Seen is stored), expunge it from INBOX.
        mutt.run("<display-message><exit><save-message>=Archive<enter><sync-mailbox><quit>")
        why = mutt.transcript()
        inbox = server_messages(imap, user, "INBOX")
        assert set(inbox) == {"m1", "m2", "m3", "m4"}, (sorted(inbox), why)
        archive = server_messages(imap, user, "Archive")
        assert "for mutt" in archive, (archive, why)
        flags, body = archive["for mutt"]
        assert "\\Seen" in flags and "\\Deleted" not in flags, (flags, why)
        assert body.endswith(b"Read me, then file me.\r\n"), why

        # Meanwhile, another client: flags on two messages, one expunged, one new.
        m = login(imap, user, tls=True)
        try:
            ok(m.select("INBOX"))
            uids = {s: ok(m.uid("SEARCH", "SUBJECT", s))[0].decode() for s in ("m1", "m2", "m3")}
            ok(m.uid("STORE", uids["m1"], "+FLAGS", "(\\Flagged)"))
            ok(m.uid("STORE", uids["m2"], "+FLAGS", "(\\Answered)"))
            ok(m.uid("STORE", uids["m3"], "+FLAGS", "(\\Deleted)"))
            ok(m.expunge())
        finally:
            m.logout()
        imap.deliver([user], message("arrived later"))

        # Run 2 resynchronizes from its header cache (UID FETCH ... (CHANGEDSINCE m VANISHED)):
        # the last entry must be the new message, and it goes to Archive.
        mutt.run("<last-entry><save-message>=Archive<enter><sync-mailbox><quit>")
        why = mutt.transcript()
        assert "mismatch" not in why, why
        inbox = server_messages(imap, user, "INBOX")
        assert set(inbox) == {"m1", "m2", "m4"}, (sorted(inbox), why)
        assert "\\Flagged" in inbox["m1"][0] and "\\Answered" in inbox["m2"][0], (inbox, why)
        assert set(server_messages(imap, user, "Archive")) == {"for mutt", "arrived later"}, why
    finally:
        mutt.cleanup()
