#!/bin/bash
# postern_VERSION_ARCH.deb from the tree `make deb` staged with PREFIX=/usr: DEBIAN/control (Depends:
# the Debian package of every shared library the binaries and the private Swift runtime load, found
# with dpkg -S, like dpkg-shlibdeps; procps for the unit's ExecReload=/bin/kill), conffiles (the
# configuration: dpkg never overwrites an edited one), md5sums and the maintainer scripts; then
# dpkg-deb with root as owner of every file.
# Usage: build-deb.sh STAGE VERSION ARCH OUTDIR   (DEB_COMPRESS: xz, gzip, zstd or none; default xz)
set -euo pipefail
stage=$(cd "$1" && pwd) version=$2 arch=$3 out=$4
here=$(cd "$(dirname "$0")" && pwd)
install -d -m 0755 "$stage/DEBIAN"
# Every library from outside the package, by its Debian package (a library no package owns stops the build).
libs=$(find "$stage/usr/libexec/postern" "$stage/usr/sbin" "$stage/usr/lib/postern" -type f -exec ldd {} + 2>/dev/null |
  awk '$2 == "=>" && $3 ~ /^\// {print $3}' | grep -v "^$stage" | sort -u)
depends=$(for l in $libs; do
  real=$(readlink -f "$l")
  pkg=$(dpkg -S "$l" 2>/dev/null || dpkg -S "$real" 2>/dev/null || dpkg -S "${l#/usr}" 2>/dev/null || dpkg -S "/usr$l" 2>/dev/null) ||
    { echo "build-deb: no Debian package owns $l" >&2; exit 1; }
  echo "${pkg%%:*}"
done | sort -u | paste -sd, | sed 's/,/, /g')
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: postern
Version: $version
Architecture: $arch
Maintainer: Postern developers <postmaster@localhost>
Installed-Size: $size
Depends: $depends, procps, adduser | systemd
Recommends: systemd
Section: mail
Priority: optional
Description: privilege-separated mail server: SMTP, LMTP, IMAP and POP3 in Swift
 A root master binds the listeners (or takes them from systemd's socket units)
 and spawns one store process (postern-store, the only one with access to the
 mail) and protocol workers (postern) that drop every privilege before they
 read a byte. Ships a hardened systemd unit, socket units, sysusers.d and
 tmpfiles.d files, and the Swift runtime it needs in /usr/lib/postern.
CONTROL
echo /etc/postern/postern.toml > "$stage/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$here/$s" "$stage/DEBIAN/$s"; done
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-xz}" --build "$stage" "$out/postern_${version}_${arch}.deb"
