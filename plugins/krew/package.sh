#!/bin/sh
# Builds the krew archive (the launcher and the licence) and writes its sha256 into sla.yaml:
#   plugins/krew/package.sh && kubectl krew install --manifest=plugins/krew/sla.yaml \
#       --archive=dist/kubectl-sla.tar.gz
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../dist"
mkdir -p "$out"
tar -C "$here" --owner=0 --group=0 --mtime=@0 -czf "$out/kubectl-sla.tar.gz" kubectl-sla
sum=$(sha256sum "$out/kubectl-sla.tar.gz" | cut -d' ' -f1)
sed -i "s/^\(    sha256: \).*/\1$sum/" "$here/sla.yaml"
echo "$out/kubectl-sla.tar.gz $sum"
