#!/usr/bin/env bash
# Install the system packages that LLMOS's tests and tools need (Debian/Ubuntu).
#
#   fio       disk measurement of `llmos preflight`; tests compare it with the built-in one
#   iptables  the reachability test blocks a port inside its own network namespace
#   iproute2  `ip netns` / veth for the reachability test; `ip link` in the offline
#             serving test (its namespace comes from util-linux's unshare, always there)
#   chromium  the dashboard tests drive Debian's Chromium with Playwright (browsers
#             cannot be downloaded from Playwright's CDN here)
#   bubblewrap  the notebooks' sandbox (scripts/setup installs it too); tests check it hides
#             the server's data from a kernel
#   ripgrep   VS Code notebooks' search: scripts/setup-vscode.sh links Debian's rg into
#             code-server (its own installer downloads rg from GitHub, which fails here)
#
# Idempotent: installs only what is missing. CI runs it as root before the tests.
set -euo pipefail
source "$(dirname "$0")/registries.sh"

packages=(fio iptables iproute2 chromium ripgrep bubblewrap)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "setup-system-deps: all present (${packages[*]})"
    exit 0
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
    sudo=(sudo)
fi
echo "setup-system-deps: installing ${missing[*]}"
retry "${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive retry "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
