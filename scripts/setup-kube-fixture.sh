#!/usr/bin/env bash
# Build the Kubernetes control plane that the cluster-mode tests (tests/kube/) run:
# kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok and the KubeRay
# operator, compiled with `go` from the Go module proxy. Test tooling only; nothing
# built is committed.
#
# The pinned versions are the go.mod files under tools/kube/ (one module per tool,
# so their dependency graphs never meet). Binaries land in
#   ${LLMOS_KUBE_CACHE:-~/.cache/llmos/kube}/<tool>-<version>/<binary>
# and are linked from .../bin/<binary>, where the fixture looks. A second run with
# everything built only relinks (well under a second). Go's own caches (~/go/pkg/mod,
# ~/.cache/go-build) make a rebuild after a version bump cheaper.
#
# Usage: scripts/setup-kube-fixture.sh [--print-bin-dir]
set -euo pipefail
source "$(dirname "$0")/registries.sh"
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${LLMOS_KUBE_CACHE:-$HOME/.cache/llmos/kube}
BIN=$CACHE/bin
if [[ ${1:-} == --print-bin-dir ]]; then
  echo "$BIN"
  exit 0
fi

# Go's own installer puts it in /usr/local/go/bin, which a non-login shell may lack.
[[ -x /usr/local/go/bin/go ]] && ! command -v go >/dev/null && PATH=/usr/local/go/bin:$PATH
if ! command -v go >/dev/null; then
  echo "setup-kube-fixture: 'go' is not on PATH; install Go 1.26 or newer (the apt package golang-go is too old)" >&2
  exit 1
fi

# The version a tools module pins for MODULE (the require line of its go.mod).
pinned() {  # DIR MODULE
  awk -v m="$2" '$1 == m && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' \
    "$ROOT/tools/kube/$1/go.mod"
}

# Build tools module DIR into $CACHE/DIR-VERSION unless it is there; each further
# argument is NAME=PACKAGE (the binary's name and its main package).
build() {  # DIR VERSION LDFLAGS NAME=PACKAGE...
  local dir=$1 version=$2 ldflags=$3
  shift 3
  local out=$CACHE/$dir-$version
  if [[ ! -f $out/.complete ]]; then
    echo "setup-kube-fixture: building $dir $version; a first build takes many minutes" >&2
    local start=$SECONDS
    rm -rf "$out.partial"
    mkdir -p "$out.partial"
    for target in "$@"; do
      (cd "$ROOT/tools/kube/$dir" &&
        CGO_ENABLED=0 GOFLAGS=-mod=readonly retry go build -trimpath -buildvcs=false \
          -ldflags "-s -w $ldflags" -o "$out.partial/${target%%=*}" "${target#*=}")
    done
    touch "$out.partial/.complete"
    rm -rf "$out"
    mv "$out.partial" "$out"
    echo "setup-kube-fixture: built $dir $version in $((SECONDS - start)) s" >&2
  fi
  mkdir -p "$BIN"
  for target in "$@"; do
    ln -sfn "../$dir-$version/${target%%=*}" "$BIN/${target%%=*}"
  done
}

KUBE=$(pinned kubernetes k8s.io/kubernetes)
ETCD=$(pinned etcd go.etcd.io/etcd/server/v3)
KWOK=$(pinned kwok sigs.k8s.io/kwok)
KUBERAY=$(pinned kuberay github.com/ray-project/kuberay/ray-operator)
minor=${KUBE#v1.}
minor=${minor%%.*}
kube_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$KUBE -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  kube_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build kubernetes "$KUBE" "$kube_ldflags" \
  kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
  kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
  kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler
build etcd "$ETCD" "" etcd=go.etcd.io/etcd/server/v3
build kwok "$KWOK" "" kwok=sigs.k8s.io/kwok/cmd/kwok
build kuberay "$KUBERAY" "" kuberay-operator=github.com/ray-project/kuberay/ray-operator

# kwok does nothing without Stages (the lifecycles it plays). Its module ships the
# standard ones; assemble them, at the pinned version, into the config the fixture passes.
stages=$CACHE/kwok-$KWOK/stages.yaml
if [[ ! -f $stages ]]; then
  source_dir=$(cd "$ROOT/tools/kube/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  {
    for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
      pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
      echo "---"
      cat "$source_dir/kustomize/stage/$stage.yaml"
    done
  } >"$stages.partial"
  mv "$stages.partial" "$stages"
fi
ln -sfn "../kwok-$KWOK/stages.yaml" "$BIN/kwok.yaml"

# The operator acts on ray.io/v1 objects, whose CRDs its module ships; copy them, at
# the pinned version, beside the binary (the fixture applies them before starting it).
crd_dir=$CACHE/kuberay-$KUBERAY
if [[ ! -f $crd_dir/ray.io_rayservices.yaml ]]; then  # copied last
  source_dir=$(cd "$ROOT/tools/kube/kuberay" && go list -m -f '{{.Dir}}' github.com/ray-project/kuberay/ray-operator)
  for kind in rayclusters rayjobs rayservices; do
    cp "$source_dir/config/crd/bases/ray.io_$kind.yaml" "$crd_dir/ray.io_$kind.yaml.partial"
    chmod 644 "$crd_dir/ray.io_$kind.yaml.partial"
    mv "$crd_dir/ray.io_$kind.yaml.partial" "$crd_dir/ray.io_$kind.yaml"
  done
fi
for kind in rayclusters rayjobs rayservices; do
  ln -sfn "../kuberay-$KUBERAY/ray.io_$kind.yaml" "$BIN/ray.io_$kind.yaml"
done
echo "setup-kube-fixture: kubernetes $KUBE, etcd $ETCD, kwok $KWOK, kuberay $KUBERAY in $BIN" >&2
