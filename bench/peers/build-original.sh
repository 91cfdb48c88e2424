#!/usr/bin/env bash
# Build the original Go program (github.com/lavelle96/seldon-deployment, commit e8c02d1,
# 2021-05-01) outside the repository. Prints the binary's path on stdout (and writes where its
# source came from to <binary>.source); on failure prints why on stderr and exits 1 (the
# benchmark then uses peers/original_emulated.py).
#
# Source, in order:
#  1. the Go module proxy, pseudo-version v0.0.0-20210501114633-e8c02d1d91e9;
#  2. $SDEP_BENCH_ORIG_SRC: a checkout of the repository, or a bare git directory (the
#     commit above is archived out of it).
# Two fixes to its 2021 module graph, neither touching its code:
#  * replace vbom.ml/util (dead import path, 403 from the proxy) by github.com/fvbommel/util at
#    the same commit;
#  * GONOSUMDB for github.com/seldonio/seldon-core/operator: the checksum database has no
#    entry for the 2021-03-05 pseudo-version the program requires (the proxy serves it; the
#    program's own go.sum pins its hash).
set -euo pipefail
MODULE=github.com/lavelle96/seldon-deployment
COMMIT=e8c02d1d91e9a416a6d4763d0bc0fba409c7f330
PSEUDO=v0.0.0-20210501114633-${COMMIT:0:12}
OUT=${SDEP_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/seldon-deploy/bench}
BIN=$OUT/seldon-deployment-orig-${COMMIT:0:12}
export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
export GONOSUMDB=github.com/seldonio/seldon-core/operator${GONOSUMDB:+,$GONOSUMDB}

if [[ -x $BIN ]]; then echo "$BIN"; exit 0; fi
command -v go >/dev/null || { echo "go is not installed" >&2; exit 1; }
mkdir -p "$OUT"
src=$OUT/orig-src
rm -rf "$src"; mkdir -p "$src"

if dl=$(cd "$src" && go mod download -json "$MODULE@$PSEUDO" 2>&1) && dir=$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<<"$dl") && [[ -n $dir ]]; then
  cp -r "$dir/." "$src/"; chmod -R u+w "$src"
  how="its Go module ($MODULE@$PSEUDO)"
else
  err=$(sed -n 's/.*"Error": "\(.*\)".*/\1/p' <<<"$dl" | head -n 1 | sed 's/\\n\\t/ /g; s#reading [a-z]*://[^ ]* ##; s#^[^ ]*: \([^ ]*: \)#\1#')
  echo "proxy: $MODULE@$PSEUDO: ${err:-$dl}" >&2
  if [[ -n ${SDEP_BENCH_ORIG_SRC:-} && -d ${SDEP_BENCH_ORIG_SRC} ]]; then
    if [[ -f $SDEP_BENCH_ORIG_SRC/main.go ]]; then
      cp -r "$SDEP_BENCH_ORIG_SRC/." "$src/"
    else
      git --git-dir="$SDEP_BENCH_ORIG_SRC" archive "$COMMIT" | tar -x -C "$src"
    fi
    echo "using the source in \$SDEP_BENCH_ORIG_SRC ($SDEP_BENCH_ORIG_SRC)" >&2
    how="a copy of its repository at commit ${COMMIT:0:7} (\$SDEP_BENCH_ORIG_SRC), because the module proxy refuses the module: ${err:-?}"
  else
    echo "no source: set SDEP_BENCH_ORIG_SRC to a checkout of $MODULE" >&2
    exit 1
  fi
fi
cd "$src"
rm -rf vendor
go mod edit -replace vbom.ml/util=github.com/fvbommel/util@v0.0.0-20180919145318-efcd4e0f9787
if ! go build -trimpath -ldflags "-s -w" -o "$BIN.tmp" . >"$OUT/build-original.log" 2>&1; then
  echo "go build failed:" >&2; tail -n 8 "$OUT/build-original.log" >&2; exit 1
fi
printf '%s\n' "$how" >"$BIN.source"
mv "$BIN.tmp" "$BIN"
echo "$BIN"
