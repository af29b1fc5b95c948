#!/usr/bin/env bash
# Benchmark: clone a sizeable repository from a local sshd, keyclone against `git clone` with
# OpenSSH, interleaved in the same run (alternating which goes first); wall time, peak memory
# (GNU time's max RSS) and each tool's phases, all medians.
#
#   bash bench/clone.sh [RUNS]                  the synthetic history (default 5 runs)
#   REPO=/path/to/bare.git bash bench/clone.sh  any bare repository, e.g. a real history:
#     REPO=$(bash bench/real-repos.sh path rust-lang/cargo) bash bench/clone.sh 3
#   REPACKED=1 ...                              serve the history after `git repack -a -d -f`
#   BIN=/path/to/keyclone ...                   measure that binary (no build)
#   SAMPLE=1 ...                                then one more clone each under bench/rss.py:
#                                               where each tool's peak memory is, phase by phase
#                                               (SAMPLE=/x/name also writes its samples to
#                                               /x/name.keyclone.json and /x/name.git.json)
#
# A real repository is not served as is: the snapshots (bench/real-repos.sh) hold thousands of
# pull-request refs (and the objects only they reach), no config and promisor-marked packs.
# It is first copied once by `git clone --bare --no-local` into target/bench/<name>.git: its
# branches and tags, which is what a `git clone` from GitHub transfers (GitHub advertises
# refs/pull/* but clone does not fetch them), in one clean pack made by pack-objects, which
# reuses the deltas the snapshot got from GitHub, so the served pack is close to what GitHub
# itself sends. SINGLE_BRANCH=1 copies only the default branch (and its tags) instead.
#
# Phases: keyclone reports its own (`--json`: receive, resolve deltas, checkout); git's come
# from the moments its --progress lines reach 100% (bench/git_phases.py): receive (connect,
# server counting/compressing, receiving; index-pack hashes whole objects meanwhile), resolve
# deltas (index-pack, threaded), checkout (the rest). The server side (sshd, upload-pack,
# pack-objects) runs on the same cores for both tools.
# Peak RSS is GNU time's %M: for git that is the largest single process among git clone,
# index-pack and ssh (the maximum over its processes, not their sum); keyclone is one process.
#
# Clones go to a tmpfs (/dev/shm) when there is one, so that the checkout measures the tools
# and not the virtual disk's write-back; DEST_DIR=/path picks another place.
#
# Without REPO the repository is built once (cached in target/bench/) with git fast-import
# from real text on this machine: the cargo registry sources, Rust's HTML documentation and
# Python's standard library, committed 20 files at a time (thousands of commits, a pack of
# about 150 MB). This synthetic history is not a real project's.
# Needs: python3, git, openssh-server, GNU time (/usr/bin/time).
set -euo pipefail
RUNS=${1:-5}
cd "$(dirname "$0")/.."
ROOT=$PWD
for tool in python3 git ssh-keygen /usr/sbin/sshd /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench/clone.sh needs $tool" >&2; exit 1; }
done
# BIN=/path/to/keyclone measures that build instead of building this checkout's.
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked --quiet
  BIN=$ROOT/target/release/keyclone
fi
CACHE=$ROOT/target/bench
if [ -n "${REPO:-}" ]; then
  SRC=$(cd "$REPO" && git rev-parse --absolute-git-dir)
  # /work/.mirror/rust-lang+cargo/repo -> rust-lang+cargo; /x/y.git -> y
  name=$(basename "$SRC")
  if [ "$name" = repo ] || [ "$name" = .git ]; then name=$(basename "$(dirname "$SRC")"); fi
  name=${name%.git}
  single=(); [ -n "${SINGLE_BRANCH:-}" ] && single=(--single-branch) && name=$name-single
  REPO=$CACHE/$name.git
  src_head=$(git -C "$SRC" rev-parse HEAD)
  if [ "$(cat "$REPO/done" 2>/dev/null)" != "$src_head" ]; then
    rm -rf "$REPO"; mkdir -p "$CACHE"
    echo "copying the branches and tags of $SRC to $REPO" >&2
    git clone -q --bare --no-local "${single[@]}" "$SRC" "$REPO"
    echo "$src_head" > "$REPO/done"
  fi
  SYNTHETIC=
else
  SYNTHETIC=1
  REPO=$CACHE/history.git
fi
if [ -n "$SYNTHETIC" ] && [ ! -f "$REPO/done" ]; then
  rm -rf "$REPO"; mkdir -p "$CACHE"; git init -q --bare "$REPO"
  sources=()
  for d in "$HOME/.cargo/registry/src" "$(rustc --print sysroot)/share/doc/rust/html" \
           "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"; do
    [ -d "$d" ] && sources+=("$d")
  done
  echo "building the benchmark repository from: ${sources[*]}" >&2
  python3 bench/make_history.py 20 "${sources[@]}" | git -C "$REPO" fast-import --quiet --done
  git -C "$REPO" symbolic-ref HEAD refs/heads/main
  touch "$REPO/done"
fi
if [ -n "${REPACKED:-}" ]; then
  # The same history after `git gc`-style repacking, as hosting services serve repositories
  # (fast-import's own pack keeps long delta chains ending at the newest objects).
  packed=${REPO%.git}-repacked.git; [ -n "$SYNTHETIC" ] && packed=$CACHE/repacked.git
  if [ "$(cat "$packed/done" 2>/dev/null)" != "$(git -C "$REPO" rev-parse HEAD)" ]; then
    rm -rf "$packed"
    git clone -q --bare --no-local "$REPO" "$packed"
    git -C "$packed" repack -q -a -d -f --depth=50 --window=10
    git -C "$REPO" rev-parse HEAD > "$packed/done"
  fi
  REPO=$packed
fi
pack_mb=$(du -sm "$REPO/objects/pack" | cut -f1)
BRANCH=$(git -C "$REPO" symbolic-ref --short HEAD)
commits=$(git -C "$REPO" rev-list --count HEAD)
head=$(git -C "$REPO" rev-parse HEAD)

work=$(mktemp -d)
DEST_PARENT=${DEST_DIR:-}
if [ -z "$DEST_PARENT" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then DEST_PARENT=$(mktemp -d /dev/shm/keyclone-bench.XXXXXX); else DEST_PARENT=$work; fi
fi
DEST=$DEST_PARENT/dest
cleanup() { rm -rf "$DEST_PARENT/dest"; [ "$DEST_PARENT" != "$work" ] && [ -z "${DEST_DIR:-}" ] && rmdir "$DEST_PARENT" 2>/dev/null; cleanup_work; }
cleanup_work() { [ -n "${SSHD_PID:-}" ] && kill "$SSHD_PID" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=bench/sshd.sh
source bench/sshd.sh
bench_sshd
URL="ssh://$(id -un)@127.0.0.1:$PORT$REPO"
export GIT_SSH_COMMAND="ssh -F /dev/null -i $work/home/.ssh/id_ed25519 -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$work/home/.ssh/known_hosts"

# The median of the numbers on stdin (as in bench/lib.sh, which this script does not source:
# it keeps its own scratch folder and sshd cleanup).
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
: > "$work/kc"; : > "$work/git"; : > "$work/kc.phases"; : > "$work/git.phases"
for i in $(seq 1 "$RUNS"); do
  order=(kc git); [ $((i % 2)) -eq 0 ] && order=(git kc)
  for who in "${order[@]}"; do
    rm -rf "$DEST"; sync
    if [ "$who" = kc ]; then
      HOME="$work/home" /usr/bin/time -f "%e %M" -o "$work/t" "$BIN" --json clone "$URL" "$DEST" --non-interactive > "$work/out"
      cat "$work/t" >> "$work/kc"
      # checkout_threads is optional (gone once checkout is libgit2's alone).
      python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["phases"]; print(p["receive"], p["resolve"], p["checkout"], p.get("checkout_threads", 1))' "$work/out" >> "$work/kc.phases"
    else
      HOME="$work/home" GIT_CONFIG_GLOBAL=/dev/null python3 bench/git_phases.py -- \
        /usr/bin/time -f "%e %M" -o "$work/t" git clone --progress "$URL" "$DEST" > "$work/out"
      cat "$work/t" >> "$work/git"
      python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p["receive"], p["resolve"], p["checkout"])' "$work/out" >> "$work/git.phases"
    fi
  done
done
rm -rf "$DEST"
if [ -n "${SAMPLE:-}" ]; then
  # Not timed: the sampler shares the cores. Its report goes to stderr.
  echo "--- keyclone under bench/rss.py" >&2
  sample_json() { [ "$SAMPLE" != 1 ] && echo --json "$SAMPLE.$1.json"; }
  HOME="$work/home" python3 bench/rss.py $(sample_json keyclone) -- "$BIN" --json clone "$URL" "$DEST" --non-interactive > /dev/null
  rm -rf "$DEST"; sync
  echo "--- git under bench/rss.py" >&2
  HOME="$work/home" GIT_CONFIG_GLOBAL=/dev/null python3 bench/rss.py $(sample_json git) -- git clone -q "$URL" "$DEST"
  rm -rf "$DEST"
  [ "$RUNS" = 0 ] && exit 0   # SAMPLE=1 bench/clone.sh 0: the sampled clones only
fi
col() { cut -d' ' -f"$2" "$work/$1" | median; }
kw=$(col kc 1); gw=$(col git 1); km=$(col kc 2); gm=$(col git 2)
echo "$(git --version); $(ssh -V 2>&1); $("$BIN" --version); $(nproc) cores"
if [ -n "$SYNTHETIC" ]; then what="synthetic history (bench/make_history.py)"; else what="$SRC"; fi
[ -n "${REPACKED:-}" ] && what="$what, repacked (git repack -a -d -f --depth=50 --window=10)"
echo "repository: $what"
echo "  served from $REPO: branch $BRANCH at $head, ${pack_mb} MB pack, $commits commits; clones written to $DEST_PARENT"
awk -v kw="$kw" -v gw="$gw" -v km="$km" -v gm="$gm" -v r="$RUNS" 'BEGIN {
  printf "clone wall     keyclone %7.2f s    git %7.2f s    ratio %.2fx   (median of %d)\n", kw, gw, kw/gw, r
  printf "clone peak RSS keyclone %7.0f MB   git %7.0f MB   ratio %.2fx   (git: its largest process)\n", km/1024, gm/1024, km/gm }'
runs() { awk '{printf " %.2f/%.0f", $1, $2/1024}' "$work/$1"; }
echo "  each run (s/MB), in order: keyclone$(runs kc); git$(runs git)"
for n in 1 2 3; do
  k=$(col kc.phases $n); g=$(col git.phases $n)
  name=$(echo "receive resolve-deltas checkout" | cut -d' ' -f$n)
  awk -v n="$name" -v k="$k" -v g="$g" 'BEGIN { printf "  phase %-15s keyclone %7.2f s    git %7.2f s    ratio %.2fx\n", n, k, g, (g > 0 ? k/g : 0) }'
done
threads=$(col kc.phases 4)
echo "  (each phase is its own median$([ "$threads" != 1 ] && echo "; keyclone's checkout ran on $threads threads"))"
