#!/bin/bash
# Create the two system users Postern runs as (DESIGN §1), if missing. Root only.
set -euo pipefail
[ "$(id -u)" = 0 ] || exit 0
for u in "${1:-postern}" "${2:-postern-store}"; do
  id "$u" >/dev/null 2>&1 || useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$u"
done
