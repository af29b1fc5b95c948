#!/usr/bin/env bash
# Benchmark: the Git properties of a training job in a 50,000-file repository, clean and dirty:
# `keyclone provenance` against the five git processes Azure ML runs (rev-parse
# --is-inside-work-tree, ls-remote --get-url, symbolic-ref --short HEAD, rev-parse HEAD,
# status --porcelain .), whole processes, interleaved in the same run.
#
#   bash bench/provenance.sh [RUNS]     (default 21; medians; ratio = keyclone / git)
set -euo pipefail
RUNS=${1:-21}
FILES=50000
cd "$(dirname "$0")/.."
source bench/lib.sh
repo="$work/repo"
mkdir -p "$repo"
python3 - "$repo" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"pkg{i // 500:03d}", f"mod{(i // 50) % 10}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i:05d}.py"), "w") as f:
        f.write(f"# file {i}\nVALUE = {i}\n" + "x = 1\n" * (i % 40))
PY
g() { git -C "$repo" -c user.name=b -c user.email=b@example.com "$@"; }
g init -q -b main
g add -A
g commit -q -m "50k files"
g remote add origin https://github.com/example/big.git
g status --porcelain >/dev/null   # refresh the index's stat data, as any checkout would
sync   # let the new files reach the disk first: writeback would slow whichever runs first

azure() {
  ( cd "$repo"
    git rev-parse --is-inside-work-tree >/dev/null
    git ls-remote --get-url >/dev/null
    git symbolic-ref --short HEAD >/dev/null
    git rev-parse HEAD >/dev/null
    git status --porcelain . >/dev/null )
}

measure() { # state
  : > "$work/kc.t"; : > "$work/git.t"
  for i in $(seq 1 "$RUNS"); do
    order=(kc git); [ $((i % 2)) -eq 0 ] && order=(git kc)
    for who in "${order[@]}"; do
      t0=$(now_us)
      if [ "$who" = kc ]; then
        "$BIN" -q provenance "$repo" --format azureml >/dev/null
      else
        azure
      fi
      t1=$(now_us); echo $((t1 - t0)) >> "$work/$who.t"
    done
  done
  mk=$(median < "$work/kc.t"); mg=$(median < "$work/git.t")
  awk -v k="$mk" -v g="$mg" -v r="$RUNS" -v s="$1" -v n="$FILES" 'BEGIN {
    printf "%-6s %d files   keyclone %7.1f ms   git x5 %7.1f ms   ratio %.2fx   (median of %d)\n", s, n, k/1000, g/1000, k/g, r }'
}

echo "$(git --version); $("$BIN" --version); $(nproc) cores"
# Both must agree before timing.
"$BIN" -q provenance "$repo" --format azureml | grep -q '"azureml.git.dirty": "False"' || { echo "keyclone: not clean" >&2; exit 1; }
measure clean
echo "changed" >> "$repo/pkg050/mod5/file25250.py"
echo "new" > "$repo/pkg099/untracked.txt"
"$BIN" -q provenance "$repo" --format azureml | grep -q '"azureml.git.dirty": "True"' || { echo "keyclone: not dirty" >&2; exit 1; }
measure dirty
