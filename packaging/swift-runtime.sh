#!/bin/bash
# The Swift runtime, shipped privately (make install-files): the toolchain libraries the installed
# binaries load are copied to PREFIX/lib/postern, and every binary's RUNPATH points there
# ($ORIGIN-relative, so any PREFIX works), so nothing of the toolchain is needed where it runs.
# Debug sections are stripped. System libraries (libssl3, ...) stay outside: they are the package's Depends (build-deb.sh).
# Usage: swift-runtime.sh DESTDIR PREFIX
set -euo pipefail
destdir=$1 prefix=$2
root=$destdir$prefix
libdir=$root/lib/postern
toolchain=$(readlink -f "$(dirname "$(readlink -f "$(command -v swift)")")/../lib/swift/linux")
install -d -m 0755 "$libdir"
bins=("$root"/libexec/postern/* "$root/sbin/postern")
# ldd lists the whole closure; copy what resolves into the toolchain, under the name asked for.
for b in "${bins[@]}"; do ldd "$b"; done | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
while read -r name path; do
  case "$(readlink -f "$path")" in "$toolchain"/*) install -m 0644 "$(readlink -f "$path")" "$libdir/$name";; esac
done
# Debug sections out (the Swift metadata and symbols stay: backtraces still name functions).
strip --strip-debug "${bins[@]}"
for b in "$root"/libexec/postern/*; do patchelf --set-rpath '$ORIGIN/../../lib/postern' "$b"; done
patchelf --set-rpath '$ORIGIN/../lib/postern' "$root/sbin/postern"
for l in "$libdir"/*.so*; do patchelf --set-rpath '$ORIGIN' "$l"; done
