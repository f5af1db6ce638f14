#!/bin/bash
# LMTP benchmark against Dovecot (see bench/lmtp_bench.py). Options pass through.
exec python3 "$(dirname "$0")/lmtp_bench.py" "$@"
