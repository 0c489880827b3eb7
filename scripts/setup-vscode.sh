#!/usr/bin/env bash
# Install code-server (VS Code in the browser) for `type: vscode` notebooks, from the npm
# registry, into ~/.cache/llmos/code-server: outside the repo, where LLMOS looks for it
# (llmos.controllers.notebook_launch.code_server_path). scripts/setup runs this with --vscode or --dev.
#
# code-server is pinned to the newest release whose engines.node accepts the Node.js these
# machines have (20): 4.101 and later want Node 22, 4.133 and later Node 24.
#
# Its own install scripts cannot run here: code-server's postinstall runs `npm install` for the
# bundled VS Code, where @vscode/ripgrep's postinstall downloads rg from GitHub, and the native
# modules' installers look for prebuilt binaries on GitHub too. So every npm step runs with
# --ignore-scripts, and this script does the rest itself:
#   - builds the native modules from source with node-gyp against the local Node's headers:
#     argon2 (code-server), @vscode/spdlog, native-watchdog and node-pty (VS Code's server);
#   - links Debian's ripgrep (apt package `ripgrep`, in scripts/setup-system-deps.sh) where
#     @vscode/ripgrep's binary would be, so VS Code's search works;
#   - makes the links code-server's postinstall.sh makes, and trims the extensions' TypeScript.
# Not built: kerberos (needs libkrb5-dev; loaded only for proxies that ask for Negotiate auth),
# the Windows-only modules, and @parcel/watcher (its Linux binary is an npm package of its own).
#
# Idempotent and fast when done: a stamp names the version and the Node ABI it was built for,
# so a second run only checks the ripgrep link. Tarballs are cached by npm in ~/.npm. A run
# builds in a staging folder and swaps it in at the end, so an interrupted one leaves nothing
# half-installed behind.
set -euo pipefail
source "$(dirname "$0")/registries.sh"

VERSION=4.100.3
NODE_MAJOR=20 # code-server 4.100.3's engines.node

prefix="${XDG_CACHE_HOME:-$HOME/.cache}/llmos/code-server"
vscode_dir=node_modules/code-server/lib/vscode
rg_link="$vscode_dir/node_modules/@vscode/ripgrep/bin/rg"

fail() {
    echo "setup-vscode: $*" >&2
    exit 1
}

link_ripgrep() {
    local rg
    rg=$(command -v rg || true)
    if [[ -z "$rg" ]]; then
        # Linked anyway where Debian puts it: the link works once the package is there.
        rg=/usr/bin/rg
        echo "setup-vscode: ripgrep is missing, so VS Code's search will not work until it is" \
            "installed (scripts/setup-system-deps.sh, or apt-get install ripgrep)" >&2
    fi
    if [[ "$(readlink "$1/$rg_link" 2>/dev/null)" != "$rg" ]]; then
        mkdir -p "$(dirname "$1/$rg_link")"
        ln -sfn "$rg" "$1/$rg_link"
    fi
}

command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
    fail "VS Code notebooks need Node.js $NODE_MAJOR and npm: install them, then run this again"
major=$(node -p 'process.versions.node.split(".")[0]')
[[ "$major" == "$NODE_MAJOR" ]] ||
    fail "code-server $VERSION needs Node.js $NODE_MAJOR (engines.node), this is $(node --version)"

stamp="code-server@$VERSION node-abi-$(node -p process.versions.modules)"
if [[ "$(cat "$prefix/.llmos-stamp" 2>/dev/null)" == "$stamp" ]]; then
    link_ripgrep "$prefix"
    exit 0
fi

echo "setup-vscode: installing code-server $VERSION into $prefix"
# Native modules from source (their prebuilt binaries are on GitHub), against the headers
# that came with this Node when it has them (else node-gyp downloads them from nodejs.org).
export npm_config_build_from_source=true
node_home=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
if [[ -f "$node_home/include/node/node_api.h" ]]; then
    export npm_config_nodedir="$node_home"
fi
node_gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
[[ -f "$node_gyp" ]] || fail "npm's node-gyp is missing (looked for $node_gyp)"
npm_quiet=(--ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error)

stage="$prefix.staging"
rm -rf "$stage"
mkdir -p "$stage"
retry npm install --prefix "$stage" "${npm_quiet[@]}" --save-exact "code-server@$VERSION" >/dev/null
(cd "$stage" && npm rebuild --loglevel=error argon2 >/dev/null)

vscode="$stage/$vscode_dir"
(cd "$vscode" && retry npm install --omit=dev "${npm_quiet[@]}" >/dev/null)
for module in @vscode/spdlog native-watchdog node-pty; do
    (cd "$vscode/node_modules/$module" && node "$node_gyp" rebuild --loglevel=error >/dev/null)
done
# What code-server's postinstall.sh does besides `npm install`.
ln -sfn node_modules "$vscode/node_modules.asar"
ln -sfn code-linux.sh "$vscode/bin/remote-cli/code-server"
ln -sfn browser-linux.sh "$vscode/bin/helpers/browser.sh"
(cd "$vscode/extensions" && retry npm install --omit=dev "${npm_quiet[@]}" >/dev/null &&
    node postinstall.mjs >/dev/null)
link_ripgrep "$stage"

(cd "$vscode" && node -e 'for (const m of ["@vscode/spdlog", "native-watchdog", "node-pty"]) require(m)') &&
    "$stage/node_modules/.bin/code-server" --version >/dev/null ||
    fail "the installed code-server does not load (left in $stage to look at)"
echo "$stamp" >"$stage/.llmos-stamp"
rm -rf "$prefix"
mv "$stage" "$prefix"
echo "setup-vscode: code-server $VERSION is ready ($prefix/node_modules/.bin/code-server)"
