#!/bin/bash
# Install the Debian packages Postern builds against and the real peers its tests use.
# Idempotent; never starts a system mail service (policy-rc.d blocks it during install).
set -euo pipefail
pkgs="libcap-dev libssl-dev libsqlite3-dev libcrypt-dev libunbound-dev zlib1g-dev pkg-config postfix swaks libnet-ssleay-perl libio-socket-ssl-perl openssl python3 ${EXTRA_PKGS:-}"
missing=$(for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"; done)
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing packages: $missing (run as root, or: sudo apt-get install $missing)" >&2; exit 1
fi
made_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
fi
trap '[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -q || true
apt-get install -y -q --no-install-recommends $missing
systemctl disable postfix.service dovecot.service dovecot.socket >/dev/null 2>&1 || true
# unbound (a test peer: DNS zones on loopback) must not run as the system resolver.
systemctl disable unbound.service unbound-resolvconf.service >/dev/null 2>&1 || true
# rspamd and its redis are test peers started privately on loopback, never system services.
systemctl disable rspamd.service redis-server.service >/dev/null 2>&1 || true
