#!/usr/bin/env bash
# Benchmark: the Git properties of a training job, clean and dirty, per output format:
# `keyclone provenance --format F` against the five git processes Azure ML runs (rev-parse
# --is-inside-work-tree, ls-remote --get-url, symbolic-ref --short HEAD, rev-parse HEAD,
# status --porcelain .), whole processes, interleaved in the same run. Wall time and CPU time
# (user + sys of the processes) are both reported: on a loaded machine the CPU ratio is the
# steadier one; the load average is printed before and after.
#
#   bash bench/provenance.sh [RUNS]                 the synthetic case: 50,000 files, one commit
#   REPO=git/git bash bench/provenance.sh [RUNS]    a real public history (see bench/real-repos.sh)
#   REPO=/path/to/repo bash bench/provenance.sh     a bare mirror, or a checkout used as it is
#
# RUNS defaults to 21 (medians; ratio = keyclone / git). The real histories this is meant for:
# git/git (~82k commits, ~1k tags, 4.8k files) and rust-lang/cargo (~23k commits); get them
# with `bash bench/real-repos.sh` (it says how). IR=1 counts instructions instead (valgrind's
# callgrind, one run each; the steady figure on a loaded machine). A bare mirror is cloned once into
# target/bench/provenance/NAME (kept for the next run); its dirty state (one tracked file
# appended to) is undone when the script ends. FORMATS="json azureml" narrows the formats. The
# pseudo-format json+describe is `--format json --describe`, measured against the five git
# processes plus `git describe --tags --always --dirty`, describe's own peer.
set -euo pipefail
RUNS=${1:-21}
FORMATS=${FORMATS:-"json azureml mlflow env azureml-job mlflow-env json+describe"}
cd "$(dirname "$0")/.."
source bench/lib.sh

if [ -n "${REPO:-}" ]; then
  src=$REPO
  if [ ! -e "$src" ] && [[ "$src" == */* ]]; then
    src=$(bash bench/real-repos.sh path "$src")
  fi
  if [ "$(git -C "$src" rev-parse --is-bare-repository)" = true ]; then
    name=$(basename "$(dirname "$src")")
    [ "$name" = . ] && name=$(basename "$src")
    repo=$PWD/target/bench/provenance/$name
    if [ ! -d "$repo/.git" ]; then
      mkdir -p "$(dirname "$repo")"
      echo "cloning $src into $repo (once)" >&2
      git clone -q "$src" "$repo"
    fi
  else
    repo=$(git -C "$src" rev-parse --show-toplevel)
  fi
  tracked=$(git -C "$repo" ls-files | awk '/\.(c|rs|py|md|txt)$/ && !f { print; f = 1 }')
  untracked=$repo/keyclone-bench-untracked.txt
  undo() { git -C "$repo" checkout -q -- "$tracked"; rm -f "$untracked"; rm -rf "$work"; }
  trap undo EXIT
  undo_dirty() { git -C "$repo" checkout -q -- "$tracked"; rm -f "$untracked"; }
  undo_dirty
  desc="$(basename "$repo"): $(git -C "$repo" rev-list --count HEAD) commits, $(git -C "$repo" ls-files | wc -l) files, $(git -C "$repo" tag | wc -l) tags"
else
  FILES=50000
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
  tracked=pkg050/mod5/file25250.py
  untracked=$repo/pkg099/untracked.txt
  undo_dirty() { :; }
  desc="synthetic: $FILES files, 1 commit"
fi
git -C "$repo" status --porcelain >/dev/null   # refresh the index's stat data, as any checkout would
sync   # let the files reach the disk first: writeback would slow whichever runs first

azure() {
  ( cd "$repo"
    git rev-parse --is-inside-work-tree >/dev/null
    git ls-remote --get-url >/dev/null
    git symbolic-ref --short HEAD >/dev/null
    git rev-parse HEAD >/dev/null
    git status --porcelain . >/dev/null )
}
azure_describe() { azure; git -C "$repo" describe --tags --always --dirty >/dev/null; }
# keyclone's flags and the peer for a format (json+describe: json with --describe).
kc_args() { if [ "$1" = json+describe ]; then echo "--format json --describe"; else echo "--format $1"; fi; }
peer() { if [ "$1" = json+describe ]; then echo azure_describe; else echo azure; fi; }

TIMEFORMAT='%3R %3U %3S'
measure() { # state format
  : > "$work/kc.t"; : > "$work/git.t"; : > "$work/kc.c"; : > "$work/git.c"
  for i in $(seq 1 "$RUNS"); do
    order=(kc git); [ $((i % 2)) -eq 0 ] && order=(git kc)
    for who in "${order[@]}"; do
      # bash's `time`: wall, user and sys seconds of the whole pipeline, children included.
      if [ "$who" = kc ]; then
        # shellcheck disable=SC2046 # the flags are words
        { time "$BIN" -q provenance "$repo" $(kc_args "$2") >/dev/null; } 2> "$work/one"
      else
        { time $(peer "$2"); } 2> "$work/one"
      fi
      read -r wall user sys < "$work/one"
      awk -v w="$wall" 'BEGIN { printf "%d\n", w * 1000000 }' >> "$work/$who.t"
      awk -v u="$user" -v s="$sys" 'BEGIN { printf "%d\n", (u + s) * 1000000 }' >> "$work/$who.c"
    done
  done
  mk=$(median < "$work/kc.t"); mg=$(median < "$work/git.t")
  ck=$(median < "$work/kc.c"); cg=$(median < "$work/git.c")
  awk -v k="$mk" -v g="$mg" -v ck="$ck" -v cg="$cg" -v r="$RUNS" -v s="$1" -v f="$2" 'BEGIN {
    printf "%-6s %-13s keyclone %7.1f ms  git x5 %7.1f ms  wall ratio %5.2fx   cpu %6.1f / %6.1f ms  cpu ratio %5.2fx  (median of %d)\n",
      s, f, k/1000, g/1000, k/g, ck/1000, cg/1000, (cg > 0 ? ck/cg : 0), r }'
}

# IR=1: instructions instead of time (valgrind's callgrind, every process and thread counted),
# one run each: steady on a loaded machine, where wall time is not.
ir_of() { valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
  awk '/Collected :/ { s += $NF } END { print s + 0 }'; }
measure_ir() { # state format
  # shellcheck disable=SC2046 # the flags are words
  # callgrind runs keyclone ~50x slower: a long deadline, so describe is not cut short.
  k=$(cd "$repo" && ir_of "$BIN" -q provenance . --deadline 3600 $(kc_args "$2"))
  g=0
  peers=("rev-parse --is-inside-work-tree" "ls-remote --get-url" "symbolic-ref --short HEAD" \
         "rev-parse HEAD" "status --porcelain .")
  [ "$2" = json+describe ] && peers+=("describe --tags --always --dirty")
  for args in "${peers[@]}"; do
    # shellcheck disable=SC2086
    g=$((g + $(cd "$repo" && ir_of git $args)))
  done
  awk -v k="$k" -v g="$g" -v s="$1" -v f="$2" 'BEGIN {
    printf "%-6s %-13s keyclone %6.1fM instr  git x5 %6.1fM instr  instr ratio %5.2fx\n", s, f, k/1e6, g/1e6, k/g }'
}
[ -n "${IR:-}" ] && measure() { measure_ir "$@"; }

dirty_value() { "$BIN" -q provenance "$repo" --format azureml | sed -n 's/.*"azureml.git.dirty": "\(.*\)".*/\1/p'; }

echo "$(git --version); $("$BIN" --version); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$desc"
# Both must agree before timing.
[ "$(dirty_value)" = False ] || { echo "keyclone: not clean" >&2; exit 1; }
[ -z "$(git -C "$repo" status --porcelain)" ] || { echo "git: not clean" >&2; exit 1; }
for f in $FORMATS; do measure clean "$f"; done
echo "changed" >> "$repo/$tracked"
echo "new" > "$untracked"
[ "$(dirty_value)" = True ] || { echo "keyclone: not dirty" >&2; exit 1; }
for f in $FORMATS; do measure dirty "$f"; done
undo_dirty
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg) (on $(nproc) cores: wall ratios under a load above that are noisy; IR=1 is not)"
