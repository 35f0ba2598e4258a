#!/usr/bin/env bash
# Builds a real kube-apiserver and kube-controller-manager (Kubernetes 1.20.2) from
# Debian's source package, for end-to-end tests on machines without a container runtime.
# The recipe follows the testing design ("A real Kubernetes API server on loopback, from
# Debian's packages"); the reason for each non-obvious step is noted next to it.
# Idempotent: once the binaries are cached it exits immediately. Needs root (or sudo) for
# apt-get; about 5 minutes on 2 cores; the source tree is deleted afterwards.
#
# Environment:
#   SLA_K8S_CACHE       cache directory (default: ~/.cache/sla-operator/k8s)
#   SLA_K8S_KEEP_SRC=1  keep the unpacked source tree (for debugging a failed build)
set -euo pipefail

CACHE="${SLA_K8S_CACHE:-$HOME/.cache/sla-operator/k8s}"
BIN="$CACHE/bin"
WORK="$CACHE/work"
K8S_VERSION="v1.20.2"
# Bump when the recipe changes what the binaries do, so cached binaries are rebuilt.
RECIPE="3 (empty strings are strings, in both validators)"
export DEBIAN_FRONTEND=noninteractive

log() { printf '[build-control-plane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

have_binaries() {
    [[ -x "$BIN/kube-apiserver" && -x "$BIN/kube-controller-manager" ]] \
        && [[ "$(cat "$BIN/.recipe" 2>/dev/null)" == "$RECIPE" ]]
}

have_all() {
    have_binaries && command -v etcd >/dev/null 2>&1
}

if have_all; then
    log "already built: $BIN/kube-apiserver, $BIN/kube-controller-manager; etcd: $(command -v etcd)"
    exit 0
fi

mkdir -p "$CACHE"
# Two test sessions may start at once; only one of them should spend minutes building.
exec 9>"$CACHE/.build.lock"
if ! flock -n 9; then
    log "another build holds $CACHE/.build.lock; waiting for it"
    flock 9
fi
if have_all; then
    log "built by a concurrent run; nothing to do"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -E); else
        log "error: installing Debian packages needs root (or sudo)"; exit 1; fi
else
    SUDO=()
fi

started=$(date +%s)

# --- 1-2. Debian packages -------------------------------------------------------------
# Source packages are needed for 'apt-get source'; Debian images ship binary entries only.
SRC_LIST=/etc/apt/sources.list.d/debian-src.sources
if [[ ! -f $SRC_LIST ]] && ! grep -rqs '^\s*\(Types:.*deb-src\|deb-src\)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        log "enabling deb-src entries in $SRC_LIST"
        sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | "${SUDO[@]}" tee "$SRC_LIST" >/dev/null
    elif [[ -f /etc/apt/sources.list ]]; then
        log "enabling deb-src entries in /etc/apt/sources.list.d/debian-src.list"
        sed -n 's/^deb /deb-src /p' /etc/apt/sources.list | "${SUDO[@]}" tee /etc/apt/sources.list.d/debian-src.list >/dev/null
    else
        log "error: no apt sources found to derive deb-src entries from"; exit 1
    fi
fi

packages=(golang-go etcd-server rsync make xz-utils openssl
          golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev)
command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)
log "apt-get update"
"${SUDO[@]}" apt-get update -qq
log "installing: ${packages[*]}"
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

if have_binaries; then
    log "binaries were cached; only etcd was missing"
    exit 0
fi

# --- 3. Source ------------------------------------------------------------------------
mkdir -p "$WORK"
cd "$WORK"
if ! compgen -G 'kubernetes_*.orig.tar.gz' >/dev/null; then
    log "downloading Debian source package kubernetes"
    apt-get source --download-only kubernetes >/dev/null
fi
orig=$(ls -1 kubernetes_*.orig.tar.gz | sort | tail -n1)
SRC="$WORK/src"
rm -rf "$SRC"
mkdir -p "$SRC"
log "unpacking $orig"
tar -xzf "$orig" -C "$SRC" --strip-components=1
cd "$SRC"

# The build must stay offline: everything it needs is vendored.
export GOPROXY=off GOSUMDB=off GOFLAGS= GOCACHE="$WORK/gocache" GOTOOLCHAIN=local
export CGO_ENABLED=0

# --- 4. Generated code (needs rsync) --------------------------------------------------
log "make generated_files (a couple of minutes)"
if ! make generated_files >"$WORK/generated_files.log" 2>&1; then
    log "make generated_files failed once; removing _output and retrying"
    rm -rf _output
    if ! make generated_files >"$WORK/generated_files.log" 2>&1; then
        tail -n 40 "$WORK/generated_files.log" >&2
        log "error: make generated_files failed; full log: $WORK/generated_files.log"
        exit 1
    fi
fi

# --- 5. Go 1.19 crashes the vendored reflect2 1.0.1 on the first custom resource create;
#        Debian's newer reflect2 and json-iterator work with it.
for pkg in github.com/modern-go/reflect2 github.com/json-iterator/go; do
    from="/usr/share/gocode/src/$pkg"
    [[ -d $from ]] || { log "error: $from missing (Debian package not installed?)"; exit 1; }
    log "replacing vendor/$pkg with Debian's copy"
    rm -rf "vendor/$pkg"
    mkdir -p "vendor/$pkg"
    cp -rL "$from/." "vendor/$pkg/"
    find "vendor/$pkg" -name '*_test.go' -delete
done

# --- 5b. Built with Go 1.19, the vendored go-openapi validator takes every empty string for
#         null: it compares reflect.Value structs, which now share the runtime's zero value.
#         Only a real nil is null, as with the Go the release was built with.
#         Both copies of the validator (go-openapi's and kube-openapi's fork that the CRD
#         validation uses) carry the check.
for TYPE_GO in vendor/github.com/go-openapi/validate/type.go \
               vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go; do
    log "patching $TYPE_GO: only nil is null"
    grep -q 'if data == nil || reflect.DeepEqual(reflect.Zero' "$TYPE_GO" \
        || { log "error: $TYPE_GO does not hold the expected check"; exit 1; }
    sed -i -E 's/if data == nil \|\| reflect\.DeepEqual\(reflect\.Zero\([^{]*\{/if data == nil {/' "$TYPE_GO"
    if grep -q 'reflect.DeepEqual(reflect.Zero' "$TYPE_GO"; then
        log "error: could not patch $TYPE_GO"; exit 1
    fi
done

# --- 6. Version strings: Helm's kubeVersion checks read /version; -X ldflags do not
#        reach these variables in this GOPATH build, so the defaults are edited instead.
major=${K8S_VERSION#v}; major=${major%%.*}
minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
for f in staging/src/k8s.io/client-go/pkg/version/base.go staging/src/k8s.io/component-base/version/base.go; do
    log "setting version $K8S_VERSION in $f"
    sed -i -E \
        -e "s/^(\s*)gitMajor[[:space:]=].*/\1gitMajor string = \"$major\"/" \
        -e "s/^(\s*)gitMinor[[:space:]=].*/\1gitMinor string = \"$minor\"/" \
        -e "s/^(\s*)gitVersion[[:space:]=].*/\1gitVersion string = \"$K8S_VERSION\"/" \
        -e "s/^(\s*)gitTreeState[[:space:]=].*/\1gitTreeState string = \"clean\"/" \
        "$f"
    grep -q "gitVersion string = \"$K8S_VERSION\"" "$f" || { log "error: could not set gitVersion in $f"; exit 1; }
done

# --- 7. Build in GOPATH mode -----------------------------------------------------------
GOPATH_DIR="$WORK/gopath"
mkdir -p "$GOPATH_DIR/src/k8s.io"
ln -sfn "$SRC" "$GOPATH_DIR/src/k8s.io/kubernetes"
export GOPATH="$GOPATH_DIR" GO111MODULE=off
cd "$GOPATH_DIR/src/k8s.io/kubernetes"
mkdir -p "$WORK/out"
for cmd in kube-apiserver kube-controller-manager; do
    log "go build ./cmd/$cmd ($(go version | awk '{print $3}'))"
    go build -trimpath -ldflags='-s -w' -o "$WORK/out/$cmd" "./cmd/$cmd"
done

mkdir -p "$BIN"
for cmd in kube-apiserver kube-controller-manager; do
    install -m 0755 "$WORK/out/$cmd" "$BIN/$cmd.tmp"
    mv -f "$BIN/$cmd.tmp" "$BIN/$cmd"
done
echo "$RECIPE" > "$BIN/.recipe"
log "installed $("$BIN/kube-apiserver" --version) to $BIN (recipe $RECIPE)"

# --- Clean up: the tree, generated files and build cache take several GB.
cd "$CACHE"
if [[ ${SLA_K8S_KEEP_SRC:-0} != 1 ]]; then
    log "removing build tree $WORK"
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
fi
log "done in $(( $(date +%s) - started )) s"
