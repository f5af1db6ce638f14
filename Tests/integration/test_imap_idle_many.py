"""Many idle IMAPS clients (issue 11 point 5): a few hundred implicit-TLS connections over two
imapd processes, all in IDLE on one INBOX, each get `* n EXISTS` from one LMTP delivery — and
again from the next; IDLE connections on another user's INBOX hear nothing; every session
still answers after DONE. No timing is asserted (bench/imap_idle_bench.py measures).
"""
import asyncio
import re
import ssl
import uuid

import pytest

from conftest import DEFAULT_PASSWORD
from imap_support import imap_instance, tls_context

ALICE = "alice@example.test"
BOB = "bob@example.test"
WATCHERS = 300          # on alice's INBOX
BYSTANDERS = 40         # on bob's
OPENING = 50            # connections being set up at once
WAIT = 60               # seconds any one step may take on a loaded machine


@pytest.fixture(scope="module")
def imap():
    extra = f"processes = 2\nmax_connections = {WATCHERS + BYSTANDERS + 50}\nmax_connections_per_client = {WATCHERS + BYSTANDERS + 50}\n"
    # Logins in flight count against the per-address budget ([auth] failures_per_client).
    extra += "[auth]\nfailures_per_client = 1000\n"
    cm, ports = imap_instance("idle-many", extra=extra)
    with cm as p:
        p.ports = ports
        yield p


def message(subject):
    return (f"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4()}@example.test>\r\n\r\nHello.\r\n")


class Idler:
    """One IMAPS connection in IDLE on INBOX."""

    @classmethod
    async def open(cls, port, ctx, user):
        self = cls()
        self.r, self.w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        assert (await self.r.readline()).startswith(b"* OK")
        await self.command("a1", f'LOGIN "{user}" "{DEFAULT_PASSWORD}"')
        sel = await self.command("a2", "SELECT INBOX")
        self.exists = int(re.search(rb"\* (\d+) EXISTS", sel).group(1))
        self.w.write(b"a3 IDLE\r\n")
        line = await self.r.readline()
        assert line.startswith(b"+"), line
        return self

    async def command(self, tag, text):
        self.w.write(f"{tag} {text}\r\n".encode())
        got = b""
        while True:
            line = await asyncio.wait_for(self.r.readline(), WAIT)
            assert line, f"closed during {text}"
            got += line
            if line.startswith(tag.encode() + b" "):
                assert line.split()[1] == b"OK", line
                return got

    async def exists_at_least(self, n):
        while True:
            line = await self.r.readline()
            assert line, "closed while idle"
            m = re.match(rb"\* (\d+) EXISTS", line)
            if m and int(m.group(1)) >= n:
                self.exists = int(m.group(1))
                return self.exists

    async def done(self):
        """DONE, then NOOP: -> the untagged lines that came before IDLE's OK."""
        self.w.write(b"DONE\r\n")
        got = b""
        while True:
            line = await asyncio.wait_for(self.r.readline(), WAIT)
            assert line, "closed at DONE"
            if line.startswith(b"a3 "):
                assert line.split()[1] == b"OK", line
                break
            got += line
        await self.command("a4", "NOOP")
        return got

    def close(self):
        self.w.transport.abort()


async def open_all(port, ctx, users):
    sem = asyncio.Semaphore(OPENING)

    async def one(u):
        async with sem:
            return await Idler.open(port, ctx, u)
    return await asyncio.gather(*(one(u) for u in users))


def test_one_delivery_reaches_every_idle_tls_client(imap):
    imap.deliver([ALICE], message("before"))
    ctx = tls_context(imap)

    async def scenario():
        # First logins one by one: the store's credentials cache makes the rest cheap.
        for u in (ALICE, BOB):
            (await Idler.open(imap.ports["imaps"], ctx, u)).close()
        watchers = await open_all(imap.ports["imaps"], ctx, [ALICE] * WATCHERS)
        bystanders = await open_all(imap.ports["imaps"], ctx, [BOB] * BYSTANDERS)
        try:
            start = watchers[0].exists
            assert {w.exists for w in watchers} == {start}
            for k in (1, 2):
                waits = [asyncio.ensure_future(w.exists_at_least(start + k)) for w in watchers]
                await asyncio.get_running_loop().run_in_executor(None, imap.deliver, [ALICE], message(f"news {k}"))
                seen = await asyncio.wait_for(asyncio.gather(*waits), WAIT)
                assert seen == [start + k] * WATCHERS
            # Bob's INBOX did not change: his idlers heard nothing; everyone still answers.
            for b in bystanders:
                assert b"EXISTS" not in await b.done()
            for w in watchers[:20]:
                await w.done()
        finally:
            for c in watchers + bystanders:
                c.close()

    asyncio.run(scenario())
    assert imap.inbox_count(ALICE) >= 3
    pids = imap.pids("imap")
    assert len(pids) == 2
