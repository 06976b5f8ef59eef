#!/usr/bin/env bash
# Build the test-infrastructure binaries (a real Kubernetes control plane, kubectl, helm,
# Prometheus and promtool) from Go modules at pinned versions, into a cache directory.
#
#   tests/cluster/build.sh [COMPONENT...]     build what is missing (default: all), print the bin dirs
#   tests/cluster/build.sh --locate [COMP...] print the bin dirs that are complete; exit 1 if any is missing
#
# Components (each a wrapper Go module under tests/cluster/gomod/<component>/, go.mod + go.sum
# committed; k8s.io/kubernetes pins its staging modules to v0.0.0 with ./staging replaces that apply
# only inside its own repository, so the wrapper replaces each with the matching v0.X.Y release):
#   kube        kube-apiserver, kube-controller-manager, kubectl   (k8s.io/kubernetes)
#   etcd        etcd                                               (go.etcd.io/etcd/server/v3)
#   helm        helm                                               (helm.sh/helm/v4)
#   prometheus  prometheus, promtool                               (github.com/prometheus/prometheus)
#
# Each component is cached under ${XDG_CACHE_HOME:-~/.cache}/llmsim/test-bins/<component>-<key>/,
# where <key> hashes the wrapper go.mod/go.sum, the build recipe revision below, the Go version and
# the platform, so a second run is instant and a version bump rebuilds only what changed. Bump
# RECIPE_REVISION when a change to this script changes what it builds. Nothing here is product code.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache_root=${LLMSIM_TEST_BINS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmsim/test-bins}
all_components=(kube etcd helm prometheus)
RECIPE_REVISION=1

declare -A binaries=(
    [kube]="kube-apiserver kube-controller-manager kubectl"
    [etcd]="etcd"
    [helm]="helm"
    [prometheus]="prometheus promtool"
)

# The pinned version of a component's main module, read from its committed go.mod.
module_version() {
    local component=$1 module
    case $component in
        kube) module=k8s.io/kubernetes ;;
        etcd) module=go.etcd.io/etcd/server/v3 ;;
        helm) module=helm.sh/helm/v4 ;;
        prometheus) module=github.com/prometheus/prometheus ;;
    esac
    awk -v m="$module" '$1 == m { print $2; exit }' "$here/gomod/$component/go.mod"
}

cache_dir() {
    local component=$1 key
    key=$({
        cat "$here/gomod/$component/go.mod" "$here/gomod/$component/go.sum"
        echo "recipe $RECIPE_REVISION"
        go env GOVERSION GOOS GOARCH
    } | sha256sum | cut -c1-12)
    echo "$cache_root/$component-$(module_version "$component")-$key"
}

complete() {
    local dir=$1 component=$2 b
    for b in ${binaries[$component]}; do
        [ -x "$dir/$b" ] || return 1
    done
}

ldflags_for() {
    local component=$1 version build_date flags="-s -w" minor p
    version=$(module_version "$component")
    build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    case $component in
        kube)
            minor=$(echo "$version" | cut -d. -f2)
            for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
                flags+=" -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
                flags+=" -X $p.gitTreeState=clean -X $p.buildDate=$build_date"
            done ;;
        etcd) flags+=" -X go.etcd.io/etcd/api/v3/version.GitSHA=$version" ;;
        helm) flags+=" -X helm.sh/helm/v4/internal/version.version=$version" ;;
        prometheus)
            # v0.316.0 is the Go module version of Prometheus 3.16.0
            local release="${version#v0.}"; release="3.${release#3}"
            flags+=" -X github.com/prometheus/common/version.Version=${release}"
            flags+=" -X github.com/prometheus/common/version.Branch=HEAD"
            flags+=" -X github.com/prometheus/common/version.BuildDate=$build_date" ;;
    esac
    echo "$flags"
}

packages_for() {
    case $1 in
        kube) echo k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl ;;
        etcd) echo go.etcd.io/etcd/server/v3 ;;
        helm) echo helm.sh/helm/v4/cmd/helm ;;
        prometheus) echo github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool ;;
    esac
}

build() {
    local component=$1 out tmp tags="" start
    out=$(cache_dir "$component")
    if complete "$out" "$component"; then
        echo "$out"
        return 0
    fi
    command -v go >/dev/null || { echo "build.sh: no Go toolchain on PATH; cannot build $component" >&2; return 1; }
    tmp="$out.tmp.$$"
    rm -rf "$tmp"; mkdir -p "$tmp"
    [ "$component" = kube ] && tags="-tags=selinux,notest"
    start=$(date +%s)
    echo "build.sh: building $component $(module_version "$component") (${binaries[$component]}) ..." >&2
    # `build` runs on the left of `||`, where bash ignores `set -e`: every step is checked here.
    if ! (
        cd "$here/gomod/$component" || exit 1
        export CGO_ENABLED=0 GOFLAGS=-mod=readonly
        if [ "$component" = etcd ]; then
            # the package's binary name is its last element, "v3"
            go build -trimpath -pgo=off -ldflags="$(ldflags_for etcd)" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
        else
            # shellcheck disable=SC2046
            go build -trimpath -pgo=off $tags -ldflags="$(ldflags_for "$component")" -o "$tmp/" $(packages_for "$component")
        fi
    ) >&2 || ! complete "$tmp" "$component"; then
        echo "build.sh: building $component failed after $(($(date +%s) - start)) s (see the go output above)" >&2
        rm -rf "$tmp"
        return 1
    fi
    echo "build.sh: $component built in $(($(date +%s) - start)) s: $(cd "$tmp" && du -sh -- * | tr '\t' ' ' | paste -sd, -)" >&2
    rm -rf "$out"; mv "$tmp" "$out"
    echo "$out"
}

locate=0
if [ "${1:-}" = --locate ]; then locate=1; shift; fi
components=("$@")
[ ${#components[@]} -gt 0 ] || components=("${all_components[@]}")

status=0
for component in "${components[@]}"; do
    [ -n "${binaries[$component]+x}" ] || { echo "build.sh: unknown component '$component' (one of: ${all_components[*]})" >&2; exit 2; }
    if [ $locate = 1 ]; then
        dir=$(cache_dir "$component")
        if complete "$dir" "$component"; then echo "$dir"; else status=1; fi
    else
        build "$component" || status=1
    fi
done
exit $status
