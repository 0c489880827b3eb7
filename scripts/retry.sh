# Sourced by the setup scripts: `retry CMD...` runs CMD up to three times, 10 s and then
# 30 s apart. Registries (or a TLS proxy in front of them) refuse a request now and then,
# and npm gives up on one after retrying it within a few seconds.
retry() {
    local delay
    for delay in 10 30; do
        "$@" && return 0
        echo "setup: '$*' failed; trying again in ${delay}s" >&2
        sleep "$delay"
    done
    "$@"
}
