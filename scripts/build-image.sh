#!/usr/bin/env bash
# Build the LLMOS server image (deploy/Containerfile) with docker, podman or buildah.
#
#   scripts/build-image.sh [IMAGE]    # default ghcr.io/llmos-ai/llmos:v<version in pyproject.toml>
#
# Then push it where your cluster pulls from, and install with it:
#   llmos install --cluster-init --token T --image IMAGE
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(awk -F'"' '/^version = / {print $2; exit}' pyproject.toml)
image=${1:-ghcr.io/llmos-ai/llmos:v$version}
for tool in docker podman buildah; do
  if command -v "$tool" >/dev/null; then
    case $tool in
      buildah) exec buildah bud -f deploy/Containerfile -t "$image" . ;;
      *) exec "$tool" build -f deploy/Containerfile -t "$image" . ;;
    esac
  fi
done
echo "build-image: none of docker, podman or buildah is installed; install one, then run this again" >&2
exit 1
