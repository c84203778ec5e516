#!/bin/sh
# mmdebstrap --customize-hook for localhost/portal-light. Runs on the build host (root) with the
# rootfs directory as $1, after the Debian packages (nginx, python3…) are installed. Called by
# scripts/engine/build-image.sh --image light; not meant to be run by hand.
#
# As for portal-jupyter, the host's CA bundle is copied in only for the pip step (outbound TLS may
# go through a proxy whose CA only the host trusts) and removed right after.
set -eu
ROOT=$1
HERE=$(dirname "$(readlink -f "$0")")

in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 HOME=/root PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 "$@"; }

cleanup() {
    rm -f "$ROOT/tmp/host-ca.crt" "$ROOT/tmp/requirements.txt"
}
trap cleanup EXIT

# 1. Python environment for the WebSocket echo.
cp "$HERE/requirements.txt" "$ROOT/tmp/requirements.txt"
if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$ROOT/tmp/host-ca.crt"
else
    cp "$ROOT/etc/ssl/certs/ca-certificates.crt" "$ROOT/tmp/host-ca.crt"
fi
in_root python3 -m venv /opt/venv
in_root /opt/venv/bin/pip install -q --no-cache-dir --cert /tmp/host-ca.crt -r /tmp/requirements.txt
in_root /opt/venv/bin/pip freeze > "$ROOT/opt/venv/portal-freeze.txt"
cleanup
trap - EXIT

# 2. The server: start script, echo server, static files (1mb.bin: 1 MiB of seeded pseudo-random
#    bytes, the same in every build, so nothing on the way can compress it).
install -m 0755 "$HERE/portal-light" "$ROOT/usr/local/bin/portal-light"
mkdir -p "$ROOT/usr/local/lib/portal-light" "$ROOT/srv/portal-light"
install -m 0644 "$HERE/echo.py" "$ROOT/usr/local/lib/portal-light/echo.py"
install -m 0644 "$HERE/index.html" "$ROOT/srv/portal-light/index.html"
in_root python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random(20240601).randbytes(1 << 20))' > "$ROOT/srv/portal-light/1mb.bin"
chmod 0644 "$ROOT/srv/portal-light/1mb.bin"
# Debian's own site would listen on port 80 if someone ran plain `nginx`; it is never used.
rm -f "$ROOT/etc/nginx/sites-enabled/default"

# 3. The same user as portal-jupyter: uid/gid 1000, home /home/jovyan (the portal mounts it).
in_root groupadd -g 1000 jovyan
in_root useradd -u 1000 -g 1000 -m -d /home/jovyan -s /bin/bash -c 'Benchmark user' jovyan

# 4. Leave nothing from the build host behind, and keep the image small.
rm -f "$ROOT/etc/resolv.conf" "$ROOT/etc/hostname"
: > "$ROOT/etc/resolv.conf"
echo portal-light > "$ROOT/etc/hostname"
rm -rf "$ROOT/root/.cache" "$ROOT/tmp/"* "$ROOT/var/cache/apt/"*.bin "$ROOT/var/lib/apt/lists/"*
