#!/bin/sh
# mmdebstrap --customize-hook for localhost/portal-light. Runs on the build host (root) with the
# rootfs directory as $1, after the Debian packages (nginx, python3…) are installed. Called by
# scripts/engine/build-image.sh --image light; not meant to be run by hand.
set -eu
ROOT=$1
HERE=$(dirname "$(readlink -f "$0")")

. "$HERE/../customize-common.sh"

# 1. Python environment for the WebSocket echo.
python_venv

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
add_user 'Benchmark user'

# 4. Leave nothing from the build host behind.
finish_rootfs portal-light
