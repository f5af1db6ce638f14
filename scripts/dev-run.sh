#!/bin/bash
# `make run`: a development instance under ./var (config, data, a demo domain and user),
# the daemon set in the foreground on unprivileged endpoints. Ctrl-C stops it gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$(swift build --show-bin-path)}
VAR=$PWD/var
mkdir -p "$VAR/etc" "$VAR/run"
CONF=$VAR/etc/postern.toml
if [ ! -f "$CONF" ]; then
  cat > "$CONF" <<EOT
# Development instance written by \`make run\`; see postern.toml.example for every key.
hostname = "localhost"
data_dir = "$VAR/data"
run_dir = "$VAR/run"

[master]
restart_delay = 0.5

[smtp]
mta = ["127.0.0.1:2525"]
submission = ["127.0.0.1:5870"]
smtps = ["127.0.0.1:4650"]

[imap]
listen = ["imap@127.0.0.1:10143", "imaps@127.0.0.1:10993"]

[lmtp]
listen = ["unix:lmtp", "127.0.0.1:2424"]

[lookup]
socketmap = ["127.0.0.1:10030"]

[lookup.tcp_table]
recipients = "127.0.0.1:10031"
aliases = "127.0.0.1:10032"
domains = "127.0.0.1:10033"
senders = "127.0.0.1:10034"
EOT
fi
# An instance written before imapd existed gets its dev listeners too (not the default 143/993).
grep -q '^\[imap\]' "$CONF" || printf '\n[imap]\nlisten = ["imap@127.0.0.1:10143", "imaps@127.0.0.1:10993"]\n' >> "$CONF"
"$BIN/postern" config check -c "$CONF"
# postmap(1) needs a Postfix config dir to run at all; a minimal one for the examples below.
mkdir -p "$VAR/postfix" && [ -f "$VAR/postfix/main.cf" ] || echo "compatibility_level = 3.6" > "$VAR/postfix/main.cf"
"$BIN/master" -c "$CONF" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
for _ in $(seq 100); do [ -S "$VAR/run/control" ] && "$BIN/postern" status -c "$CONF" >/dev/null 2>&1 && break; sleep 0.1; done
P="$BIN/postern"
"$P" domain list -c "$CONF" | grep -qx example.test || "$P" domain add example.test -c "$CONF"
"$P" user list example.test -c "$CONF" | grep -qx demo@example.test || echo demo | "$P" user add demo@example.test --password-stdin -c "$CONF"
cat <<EOT

Postern is running (master pid $pid). Demo user: demo@example.test, password "demo".
  Deliver over LMTP (unix socket):  python3 -c 'import smtplib; s=smtplib.LMTP("$VAR/run/lmtp"); print(s.sendmail("me@example.org", ["demo@example.test"], b"Subject: hi\r\n\r\nhello\r\n"))'
  ... or over TCP:                  swaks --protocol LMTP --server 127.0.0.1:2424 --to demo@example.test
  ... or with Postfix's tool:       smtp-source -L -m 1 -t demo@example.test unix:$VAR/run/lmtp
  SMTP (mta / submission / smtps):  swaks --server 127.0.0.1:2525 --to demo@example.test
                                    swaks --server 127.0.0.1:5870 --tls --auth-user demo@example.test --auth-password demo --from demo@example.test --to someone@example.org
                                    openssl s_client -connect 127.0.0.1:4650 -quiet
  IMAP (imap 10143 STARTTLS / imaps 10993 implicit TLS; plaintext LOGIN is allowed on loopback):
                                    openssl s_client -connect 127.0.0.1:10993 -quiet
                                    openssl s_client -connect 127.0.0.1:10143 -starttls imap -quiet
                                    python3 -c 'import imaplib; m=imaplib.IMAP4("127.0.0.1", 10143); m.starttls(); print(m.login("demo@example.test", "demo"))'
                                    mail client: server 127.0.0.1, port 10993, SSL/TLS, user demo@example.test (accept the self-signed certificate)
  Ask it like Postfix does:         postmap -c $VAR/postfix -q demo@example.test tcp:127.0.0.1:10031
                                    postmap -c $VAR/postfix -q demo@example.test socketmap:inet:127.0.0.1:10030:recipients
  Look at it (POSTERN_CONFIG=$CONF):  $P status; $P mailbox list demo@example.test; $P export demo@example.test
Ctrl-C stops the daemon set.
EOT
wait $pid
