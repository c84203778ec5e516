#!/bin/sh
# mmdebstrap --customize-hook for localhost/portal-jupyter. Runs on the build host (root) with the
# rootfs directory as $1, after the Debian packages are installed. Called by
# scripts/engine/build-image.sh; not meant to be run by hand.
#
# Only the pip step needs the host's CA bundle (outbound TLS may go through an intercepting proxy
# whose CA is trusted by the host only). It is copied in under /tmp for that step and removed right
# after; the image keeps Debian's own /etc/ssl/certs bundle (from ca-certificates, Mozilla roots).
set -eu
ROOT=$1
HERE=$(dirname "$(readlink -f "$0")")

in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 HOME=/root PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 "$@"; }

cleanup() {
    rm -f "$ROOT/tmp/host-ca.crt" "$ROOT/tmp/requirements.txt"
}
trap cleanup EXIT

# 1. Python environment.
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

# 2. Jupyter defaults (the portal passes its own arguments anyway).
# (LabApp settings are only read from jupyter_server_config.json, not from a .d directory.)
mkdir -p "$ROOT/opt/venv/etc/jupyter/labconfig"
cp "$HERE/jupyter_server_config.json" "$ROOT/opt/venv/etc/jupyter/jupyter_server_config.json"
cp "$HERE/page_config.json" "$ROOT/opt/venv/etc/jupyter/labconfig/page_config.json"

# 3. The notebook user: uid/gid 1000, home /home/jovyan.
in_root groupadd -g 1000 jovyan
in_root useradd -u 1000 -g 1000 -m -d /home/jovyan -s /bin/bash -c 'Jupyter user' jovyan

# 4. Leave nothing from the build host behind, and keep the image small.
rm -f "$ROOT/etc/resolv.conf" "$ROOT/etc/hostname"
: > "$ROOT/etc/resolv.conf"
echo portal-jupyter > "$ROOT/etc/hostname"
rm -rf "$ROOT/root/.cache" "$ROOT/tmp/"* "$ROOT/var/cache/apt/"*.bin "$ROOT/var/lib/apt/lists/"*
