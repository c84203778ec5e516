#!/bin/sh
# mmdebstrap --customize-hook for localhost/portal-jupyter. Runs on the build host (root) with the
# rootfs directory as $1, after the Debian packages are installed. Called by
# scripts/engine/build-image.sh; not meant to be run by hand.
set -eu
ROOT=$1
HERE=$(dirname "$(readlink -f "$0")")

. "$HERE/../customize-common.sh"

# 1. Python environment.
python_venv

# 2. Jupyter defaults (the portal passes its own arguments anyway).
# (LabApp settings are only read from jupyter_server_config.json, not from a .d directory.)
mkdir -p "$ROOT/opt/venv/etc/jupyter/labconfig"
cp "$HERE/jupyter_server_config.json" "$ROOT/opt/venv/etc/jupyter/jupyter_server_config.json"
cp "$HERE/page_config.json" "$ROOT/opt/venv/etc/jupyter/labconfig/page_config.json"

# 3. The notebook user: uid/gid 1000, home /home/jovyan.
add_user 'Jupyter user'

# 4. Leave nothing from the build host behind.
finish_rootfs portal-jupyter
