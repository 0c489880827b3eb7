# Sourced by the setup scripts: how they reach the package registries.
#
# Trust: uv and Node.js each carry their own root certificates, so behind a proxy that
# re-signs TLS with a root only the system trusts, they refuse the registries
# (UnknownIssuer, SELF_SIGNED_CERT_IN_CHAIN). uv is told to use the system's store; Node
# gets npm's `cafile` where it has one and nothing else is set (npm hands `cafile` to
# some of its requests only, NODE_EXTRA_CA_CERTS reaches them all).
export UV_SYSTEM_CERTS=${UV_SYSTEM_CERTS:-1}
if [[ -z "${NODE_EXTRA_CA_CERTS:-}" ]] && command -v npm >/dev/null 2>&1; then
    npm_cafile=$(npm config get cafile 2>/dev/null || true)
    if [[ -f "$npm_cafile" ]]; then
        export NODE_EXTRA_CA_CERTS=$npm_cafile
    fi
fi

# `retry CMD...` runs CMD up to three times, 10 s and then 30 s apart: a registry refuses
# a request now and then, and npm gives up on one after retrying it within seconds.
retry() {
    local delay
    for delay in 10 30; do
        "$@" && return 0
        echo "setup: '$*' failed; trying again in ${delay}s" >&2
        sleep "$delay"
    done
    "$@"
}
