#!/usr/bin/env bash
# stage.sh OUTDIR: writes a self-contained copy of the Testground plan to
# OUTDIR/shoal, ready for `testground plan import --from OUTDIR/shoal`:
#   - plans/shoal (manifest.toml and the plan's non-test Go files),
#   - this module's go.mod and go.sum, with github.com/shoal-cache/shoal
#     replaced by ./shoal-src instead of ../,
#   - shoal-src: the Shoal module's go.mod, go.sum and non-test Go files.
# Testground ships only the plan directory to its builders (exec:go copies
# it to a work dir, docker:go uses it as the image's build context), so the
# plan must carry the Shoal source it builds against.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
out=${1:?usage: stage.sh OUTDIR}
dst="$out/shoal"
rm -rf "$dst"
mkdir -p "$dst/shoal-src"

# The plan itself.
cp "$here/plans/shoal/manifest.toml" "$dst/"
for f in "$here"/plans/shoal/*.go; do
	case "$f" in *_test.go) continue ;; esac
	cp "$f" "$dst/"
done
cp "$here/go.mod" "$here/go.sum" "$dst/"
(cd "$dst" && go mod edit -replace=github.com/shoal-cache/shoal=./shoal-src)

# The Shoal module: every package directory, no tests, no nested modules
# (tools/, testground/), no build output or hidden directories.
cp "$repo/go.mod" "$repo/go.sum" "$dst/shoal-src/"
(cd "$repo" && find . -type d \( -name '.?*' -o -name testdata -o -path ./testground -o -path ./tools -o -path ./bin \) -prune -o \
	-type f -name '*.go' ! -name '*_test.go' -print) | while read -r f; do
	mkdir -p "$dst/shoal-src/$(dirname "$f")"
	cp "$repo/$f" "$dst/shoal-src/$f"
done
echo "staged plan in $dst ($(find "$dst" -name '*.go' | wc -l) Go files)"
