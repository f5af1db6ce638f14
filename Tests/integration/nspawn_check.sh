#!/bin/sh
# Runs inside a booted Debian container (test_deploy_nspawn.py) with systemd as PID 1: installs
# the package, lets its postinst start postern.service (hardened unit, socket units, default
# configuration), then drives it. Writes its transcript to /results/log, one "ok NAME" or
# "FAIL NAME" line per check to /results/checks, and powers the container off.
exec > /results/log 2>&1
check() { name=$1; shift; if "$@"; then echo "ok $name" >> /results/checks; else echo "FAIL $name" >> /results/checks; fi; }
set -x
dpkg -i /postern.deb
check installed dpkg-query -W postern
check enabled systemctl is-enabled postern.service
for i in $(seq 1 240); do systemctl is-active -q postern.service && break; sleep 0.5; done
check active systemctl is-active postern.service
systemctl status --no-pager postern.service
for s in smtp submission smtps imap imaps pop3 pop3s lmtp; do check "socket-$s" systemctl is-active postern-$s.socket; done
check status sh -c 'postern status | tee /results/status'
systemd-analyze security --no-pager postern.service | tail -3
main=$(systemctl show -p MainPID --value postern.service)
grep -E '^(Uid|Groups|CapBnd|CapEff|NoNewPrivs|Seccomp):' /proc/$main/status | tee /results/master-status
check master-capbnd grep -q '^CapBnd:.*00000000000001e0' /proc/$main/status
check master-seccomp grep -q '^Seccomp:.*2' /proc/$main/status
check domain postern domain add example.test
check user sh -c 'echo "container password" | postern user add user@example.test --password-stdin'
check clients python3 - <<'PY'
import imaplib, poplib, smtplib, ssl, socket
c = smtplib.LMTP("/run/postern/lmtp"); c.ehlo("client.example.org")
assert c.sendmail("sender@example.org", ["user@example.test"], b"Subject: in the container\r\n\r\nbody\r\n") == {}
c.quit()
s = smtplib.SMTP("127.0.0.1", 25, timeout=30); assert s.ehlo("client.example.org")[0] == 250; s.quit()
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL("127.0.0.1", 993, ssl_context=ctx); m.login("user@example.test", "container password")
assert m.select("INBOX") == ("OK", [b"1"]), "imaps"; m.logout()
m = imaplib.IMAP4("::1", 143); m.starttls(ssl_context=ctx); m.login("user@example.test", "container password"); m.logout()
p = poplib.POP3_SSL("127.0.0.1", 995, context=ctx); p.user("user@example.test"); p.pass_("container password"); assert p.stat()[0] == 1; p.quit()
s = smtplib.SMTP_SSL("127.0.0.1", 465, context=ctx, timeout=30); assert s.ehlo("x")[0] == 250; s.quit()
s = smtplib.SMTP("127.0.0.1", 587, timeout=30); s.starttls(context=ctx); assert s.ehlo("x")[0] == 250; s.quit()
print("clients ok")
PY
check export sh -c 'postern export user@example.test | grep -q "Subject: in the container"'
# journald got the priorities (<6> info) and no second timestamp
check journald sh -c 'journalctl -u postern.service -o json --no-pager | grep -q "\"PRIORITY\":\"6\""'
journalctl -u postern.service --no-pager | tail -20
# the master did not bind the passed sockets: it says so per listener
check activation sh -c '[ "$(journalctl -u postern.service --no-pager | grep -c "listening (socket activation)")" -ge 15 ]'
# a restart under socket activation: connections made meanwhile wait in systemd's sockets
check restart python3 - <<'PY'
import smtplib, subprocess, threading, time
results = []
def loop():
    end = time.time() + 8
    while time.time() < end:
        try:
            s = smtplib.SMTP("127.0.0.1", 25, timeout=60); results.append(s.ehlo("x")[0]); s.quit()
        except Exception as e:
            results.append(repr(e))
        time.sleep(0.02)
t = threading.Thread(target=loop); t.start(); time.sleep(1)
subprocess.run(["systemctl", "restart", "postern.service"], check=True)
t.join()
bad = [r for r in results if r != 250]
print(len(results), "connections,", len(bad), "not greeted:", bad[:3])
assert results and not bad
PY
check reload systemctl reload postern.service
check stop systemctl stop postern.service
dpkg -r postern
check remove-keeps-mail test -e /var/lib/postern/postern.db
check remove-keeps-config test -e /etc/postern/postern.toml
dpkg -P postern
check purge-removes test ! -e /var/lib/postern -a ! -e /etc/postern
echo done >> /results/checks
systemctl poweroff
