#!/usr/bin/env bash
# Smoke test of cluster mode on a real, disposable Linux VM: `llmos install` with a real k3s,
# the node and the llmos-server Deployment come up, the join handshake answers, an admin logs
# in and creates a ModelService, and `llmos uninstall` leaves nothing behind.
#
# It cannot run in this project's CI (no systemd, no k3s download); see docs/cluster.md for
# what was and was not exercised. Run it as root on a VM you can throw away:
#
#   sudo LLMOS_IMAGE=registry.example.com/llmos:dev scripts/k3s-smoke.sh
#
# Environment:
#   LLMOS          the llmos command (default: llmos on PATH)
#   LLMOS_IMAGE    the LLMOS server image to deploy (this project does not publish one yet;
#                  without it the Deployment uses ghcr.io/llmos-ai/llmos:v<version>)
#   AIRGAP_DIR     install k3s from this folder (k3s binary, image tarballs, install.sh)
#   SKIP_PREFLIGHT=1  install even if preflight fails (small VMs have < 4 cores or 16 GB)
#   KEEP=1         do not uninstall at the end (to look around)
#   TIMEOUT        seconds to wait for each thing (default 600)
#   MODEL_READY=1  also wait for the ModelService to become Ready (needs a GPU node and
#                  the Kubernetes runtime; by default it only checks the object is stored)
set -euo pipefail

LLMOS=${LLMOS:-llmos}
TIMEOUT=${TIMEOUT:-600}
TOKEN=${TOKEN:-$(head -c 32 /dev/urandom | sha256sum | cut -c1-40)}
NEW_PASSWORD=${NEW_PASSWORD:-smoke-$(head -c 16 /dev/urandom | sha256sum | cut -c1-20)}
NODE=$(hostname | tr '[:upper:]' '[:lower:]')
KUBECTL=(k3s kubectl --kubeconfig /etc/llmos/kubeconfig.yaml)
WORK=$(mktemp -d /tmp/llmos-smoke.XXXXXX)
# ServiceLB answers on the node's addresses (hostPort), which the certificate names.
NODE_IP=${NODE_IP:-$(hostname -I | awk '{print $1}')}
URL=https://$NODE_IP:8443

step() { printf '\n== %s\n' "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
wait_for() { # wait_for WHAT COMMAND...
  local what=$1 deadline=$((SECONDS + TIMEOUT)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${TIMEOUT}s waiting for $what"
    sleep 3
  done
  echo "ok: $what"
}

[ "$(id -u)" = 0 ] || die "run as root, on a VM you can throw away"
command -v "$LLMOS" >/dev/null || die "$LLMOS is not on PATH (set LLMOS=/path/to/llmos)"
command -v systemctl >/dev/null || die "this needs systemd"

install_args=(--cluster-init --token "$TOKEN")
[ -n "${LLMOS_IMAGE:-}" ] && install_args+=(--image "$LLMOS_IMAGE")
[ -n "${AIRGAP_DIR:-}" ] && install_args+=(--airgap-dir "$AIRGAP_DIR")
[ "${SKIP_PREFLIGHT:-0}" = 1 ] && install_args+=(--skip-preflight)

uninstall() {
  step "uninstall"
  "$LLMOS" uninstall --dry-run >"$WORK/uninstall-dry-run.txt"
  "$LLMOS" uninstall
  ! systemctl is-active --quiet k3s || die "k3s still runs after uninstall"
  [ ! -e /etc/llmos ] || die "/etc/llmos is still there"
  [ ! -e /etc/systemd/system/k3s.service ] || die "the k3s unit is still there"
  [ ! -e /usr/local/bin/k3s ] || die "the k3s binary is still there"
  ! ip link show flannel.1 >/dev/null 2>&1 || die "the flannel interface is still there"
  echo "ok: nothing left"
}
finish() {
  local code=$?
  if [ "${KEEP:-0}" = 1 ]; then
    echo "KEEP=1: left installed; \`$LLMOS uninstall\` removes it"
  elif [ -e /etc/llmos ] || [ -e /usr/local/bin/k3s ]; then
    uninstall || code=1
  fi
  [ $code = 0 ] && echo "PASS: k3s smoke test" || echo "FAIL: k3s smoke test (logs in $WORK)"
  exit $code
}
trap finish EXIT

step "preflight (server role)"
"$LLMOS" preflight --role server --quick || echo "(preflight failures: install uses SKIP_PREFLIGHT=${SKIP_PREFLIGHT:-0})"

step "dry run changes nothing"
"$LLMOS" install "${install_args[@]}" --dry-run >"$WORK/dry-run.txt"
grep -q "systemctl enable --now k3s" "$WORK/dry-run.txt" || die "the dry run lacks the start command"
[ ! -e /etc/rancher/k3s/config.yaml ] || die "the dry run wrote the k3s config"

step "install the first server"
"$LLMOS" install "${install_args[@]}" | tee "$WORK/install.txt"
for file in /etc/rancher/k3s/config.yaml /etc/llmos/join-token /etc/llmos/bootstrap-password; do
  [ "$(stat -c %a "$file")" = 600 ] || die "$file is not mode 0600"
done
JOIN_TOKEN=$(cat /etc/llmos/join-token)
PASSWORD=$(cat /etc/llmos/bootstrap-password)

step "the node is Ready"
wait_for "the kubeconfig" test -s /etc/llmos/kubeconfig.yaml
wait_for "node $NODE Ready" "${KUBECTL[@]}" wait --for=condition=Ready "node/$NODE" --timeout=5s
"${KUBECTL[@]}" version

step "the LLMOS CRDs and Deployment"
wait_for "the ModelService CRD" "${KUBECTL[@]}" wait --for=condition=Established \
  crd/modelservices.ml.llmos.ai --timeout=5s
wait_for "the llmos-server Deployment" "${KUBECTL[@]}" -n llmos-system get deployment/llmos-server
"${KUBECTL[@]}" -n llmos-system rollout status deployment/llmos-server --timeout="${TIMEOUT}s" || {
  "${KUBECTL[@]}" -n llmos-system describe pods -l app.kubernetes.io/name=llmos-server >"$WORK/pods.txt"
  die "llmos-server did not roll out (pod details in $WORK/pods.txt)"
}
wait_for "$URL/readyz" curl -skf "$URL/readyz"

step "the join handshake"
curl -skf "$URL/v1-public/cacerts" >"$WORK/ca.crt"
PIN=$(sha256sum "$WORK/ca.crt" | cut -d' ' -f1)
[ "$JOIN_TOKEN" = "K10$PIN::$TOKEN" ] || die "the served CA is not the one the join token pins"
curl -sf --cacert "$WORK/ca.crt" -H "Authorization: Bearer $TOKEN" \
  "$URL/v1-cluster/cluster-info" | tee "$WORK/cluster-info.json"
echo
grep -q "\"$NODE\"" "$WORK/cluster-info.json" || die "cluster-info does not list $NODE"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/ca.crt" \
  -H "Authorization: Bearer wrong-token-wrong-token" "$URL/v1-cluster/cluster-info")
[ "$code" = 401 ] || die "cluster-info answered $code to a wrong token"
# k3s' own join is pinned by the hash cluster-info names: it must be that of k3s' /cacerts.
K3S_PIN=$(curl -skf https://127.0.0.1:6443/cacerts | sha256sum | cut -d' ' -f1)
grep -q "\"kubernetesCAFingerprint\":\"$K3S_PIN\"" "$WORK/cluster-info.json" ||
  die "cluster-info's kubernetesCAFingerprint is not the SHA-256 of k3s' /cacerts ($K3S_PIN)"
echo "ok: cluster-info names k3s' server CA"
# A dry run of a join shows k3s' secure token pinned to it, and no secret.
"$LLMOS" install --server "https://$NODE_IP:6443" --token "$JOIN_TOKEN" --role agent \
  --node-name smoke-other-node --skip-preflight --dry-run >"$WORK/join-dry.txt" 2>&1 ||
  die "a dry-run join failed: $(cat "$WORK/join-dry.txt")"
grep -q "token: K10$K3S_PIN::server:<hidden-cluster-token>" "$WORK/join-dry.txt" ||
  die "the dry-run join does not give k3s its secure token"
if grep -qF "$TOKEN" "$WORK/join-dry.txt"; then die "the dry-run join printed the secret"; fi
echo "ok: a dry-run join pins k3s' CA and prints no secret"
# This host's name is taken (by itself): a join from here must be refused, changing nothing.
if "$LLMOS" install --server "https://$NODE_IP:6443" --token "$JOIN_TOKEN" --role agent \
  --skip-preflight --dry-run >"$WORK/join.txt" 2>&1; then
  die "a join with a taken node name was not refused"
fi
grep -q "already in the cluster" "$WORK/join.txt" || die "unexpected join error: $(cat "$WORK/join.txt")"
echo "ok: a duplicate node name is refused"

step "log in as admin"
export XDG_CONFIG_HOME=$WORK/config
printf '%s\n' "$PASSWORD" | "$LLMOS" login "$URL" --ca-cert "$WORK/ca.crt" --password-stdin \
  --new-password "$NEW_PASSWORD"
"$LLMOS" whoami

step "create a ModelService"
cat >"$WORK/model.yaml" <<'EOF'
apiVersion: ml.llmos.ai/v1
kind: ModelService
metadata: {name: smoke, namespace: default}
spec:
  model: bundled:smollm2
  engine: llama-cpp
EOF
"$LLMOS" apply -f "$WORK/model.yaml"
wait_for "the ModelService as a custom resource" "${KUBECTL[@]}" -n default get modelservices.ml.llmos.ai smoke
"${KUBECTL[@]}" get modelservices -A
if [ "${MODEL_READY:-0}" = 1 ]; then
  wait_for "ModelService smoke Ready" "${KUBECTL[@]}" -n default wait --for=condition=Ready \
    modelservices.ml.llmos.ai/smoke --timeout=5s
fi
"$LLMOS" describe modelservice smoke -n default || true
"$LLMOS" delete modelservice smoke -n default
# Uninstall (and its checks) run in the EXIT trap, unless KEEP=1.
