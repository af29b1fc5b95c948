#!/usr/bin/env bash
# How much of git's delta resolution is its second core: `git index-pack` on the pack that
# bench/clone.sh serves, with one thread and with git's default (one per core), medians.
# libgit2's indexer resolves deltas on one thread, so git's single-thread figure is the floor
# keyclone's "resolve deltas" phase could reach on this pack without a faster indexer.
#
#   REPO=/path/to/bare.git bash bench/index_pack.sh [RUNS]   (REPO as for bench/clone.sh, or
#   the served copy itself, e.g. target/bench/rust-lang+cargo.git; default 3 runs)
set -euo pipefail
RUNS=${1:-3}
cd "$(dirname "$0")/.."
: "${REPO:?set REPO to a bare repository (see bench/clone.sh)}"
SRC=$(cd "$REPO" && git rev-parse --absolute-git-dir)
name=$(basename "$SRC")
if [ "$name" = repo ] || [ "$name" = .git ]; then name=$(basename "$(dirname "$SRC")"); fi
# The copy bench/clone.sh serves, when REPO names a snapshot it was made from.
[ -f "target/bench/${name%.git}.git/done" ] && SRC=$PWD/target/bench/${name%.git}.git
packs=("$SRC"/objects/pack/*.pack)
[ "${#packs[@]}" -eq 1 ] || { echo "expected one pack in $SRC/objects/pack, found ${#packs[@]}" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
echo "$(git --version); $(nproc) cores; pack ${packs[0]} ($(du -m "${packs[0]}" | cut -f1) MB)"
for t in 1 0; do
  : > "$work/p"
  for _ in $(seq 1 "$RUNS"); do
    rm -f "$work/i.idx"
    python3 bench/git_phases.py -- git index-pack -v --threads=$t -o "$work/i.idx" "${packs[0]}" |
      python3 -c 'import json,sys; p=json.load(sys.stdin); print(p["receive"], p["resolve"])' >> "$work/p"
  done
  label=$([ "$t" = 1 ] && echo "--threads=1" || echo "default ($(nproc) threads)")
  awk -v l="$label" -v i="$(cut -d' ' -f1 "$work/p" | median)" -v r="$(cut -d' ' -f2 "$work/p" | median)" -v n="$RUNS" \
    'BEGIN { printf "index-pack %-20s index objects %6.2f s   resolve deltas %6.2f s   (median of %d)\n", l, i, r, n }'
done
