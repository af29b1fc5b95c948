#!/usr/bin/env bash
# Benchmark: clone a real, sizeable repository from a local sshd, keyclone against `git clone`
# with OpenSSH, interleaved in the same run; wall time and peak memory (GNU time's max RSS,
# which covers git's helper processes too).
#
#   bash bench/clone.sh [RUNS]     (default 5; medians; ratio = keyclone / git)
#   REPACKED=1 bash bench/clone.sh  (serve the same history repacked, as a host serves it)
#
# Clones go to a tmpfs (/dev/shm) when there is one, so that the checkout of ~1 GB of files
# measures the tools and not the virtual disk's write-back; DEST_DIR=/path picks another place.
#
# The repository is built once (cached in target/bench/) with git fast-import from real text
# on this machine: the cargo registry sources, Rust's HTML documentation and Python's standard
# library, committed 20 files at a time (thousands of commits, a pack of about 150 MB).
# Needs: python3, git, openssh-server, GNU time (/usr/bin/time).
set -euo pipefail
RUNS=${1:-5}
cd "$(dirname "$0")/.."
ROOT=$PWD
for tool in python3 git ssh-keygen /usr/sbin/sshd /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench/clone.sh needs $tool" >&2; exit 1; }
done
cargo build --release --locked --quiet
BIN=$ROOT/target/release/keyclone
CACHE=$ROOT/target/bench
REPO=$CACHE/history.git
if [ ! -f "$REPO/done" ]; then
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
  if [ ! -f "$CACHE/repacked.git/done" ]; then
    rm -rf "$CACHE/repacked.git"
    git clone -q --bare --no-local "$REPO" "$CACHE/repacked.git"
    git -C "$CACHE/repacked.git" repack -q -a -d -f --depth=50 --window=10
    touch "$CACHE/repacked.git/done"
  fi
  REPO=$CACHE/repacked.git
fi
pack_mb=$(du -sm "$REPO/objects/pack" | cut -f1)
commits=$(git -C "$REPO" rev-list --count main)

work=$(mktemp -d)
DEST_PARENT=${DEST_DIR:-}
if [ -z "$DEST_PARENT" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then DEST_PARENT=$(mktemp -d /dev/shm/keyclone-bench.XXXXXX); else DEST_PARENT=$work; fi
fi
DEST=$DEST_PARENT/dest
cleanup() { rm -rf "$DEST_PARENT/dest"; [ "$DEST_PARENT" != "$work" ] && [ -z "${DEST_DIR:-}" ] && rmdir "$DEST_PARENT" 2>/dev/null; cleanup_work; }
cleanup_work() { [ -n "${SSHD_PID:-}" ] && kill "$SSHD_PID" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -m 700 "$work/home" "$work/home/.ssh"
ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
[ "$(id -u)" -eq 0 ] && mkdir -p /run/sshd
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HOME="$work/home" "$BIN" -q keygen --no-passphrase
cp "$work/home/.ssh/id_ed25519.pub" "$work/authorized_keys"
cat > "$work/sshd_config" <<CFG
ListenAddress 127.0.0.1
Port $PORT
HostKey $work/host_key
PidFile $work/sshd.pid
AuthorizedKeysFile $work/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
CFG
/usr/sbin/sshd -D -f "$work/sshd_config" -E "$work/sshd.log" & SSHD_PID=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
FP=$(ssh-keygen -lf "$work/host_key.pub" | cut -d' ' -f2)
HOME="$work/home" "$BIN" -q trust "127.0.0.1:$PORT" --fingerprint "$FP"
URL="ssh://$(id -un)@127.0.0.1:$PORT$REPO"
export GIT_SSH_COMMAND="ssh -F /dev/null -i $work/home/.ssh/id_ed25519 -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$work/home/.ssh/known_hosts"

# The median of the numbers on stdin (as in bench/lib.sh, which this script does not source:
# it keeps its own scratch folder and sshd cleanup).
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
: > "$work/kc"; : > "$work/git"
for i in $(seq 1 "$RUNS"); do
  order=(kc git); [ $((i % 2)) -eq 0 ] && order=(git kc)
  for who in "${order[@]}"; do
    rm -rf "$DEST"; sync
    if [ "$who" = kc ]; then
      HOME="$work/home" /usr/bin/time -f "%e %M" -o "$work/t" "$BIN" -q clone "$URL" "$DEST" --non-interactive
      cat "$work/t" >> "$work/kc"
    else
      HOME="$work/home" GIT_CONFIG_GLOBAL=/dev/null /usr/bin/time -f "%e %M" -o "$work/t" git clone -q "$URL" "$DEST"
      cat "$work/t" >> "$work/git"
    fi
  done
done
rm -rf "$DEST"
# Where the time goes: keyclone's own phase timings, and git split into fetch and checkout.
phases=$(HOME="$work/home" "$BIN" --json clone "$URL" "$DEST" --non-interactive \
  | python3 -c 'import json,sys; p=json.load(sys.stdin)["phases"]; print("receive %.1f s, resolve deltas %.1f s, checkout %.1f s" % (p["receive"], p["resolve"], p["checkout"]))')
rm -rf "$DEST"; sync
t0=$(date +%s.%N); HOME="$work/home" GIT_CONFIG_GLOBAL=/dev/null git clone -q --no-checkout "$URL" "$DEST"; t1=$(date +%s.%N)
git -C "$DEST" checkout -q main; t2=$(date +%s.%N)
rm -rf "$DEST"
kw=$(cut -d' ' -f1 "$work/kc" | median); gw=$(cut -d' ' -f1 "$work/git" | median)
km=$(cut -d' ' -f2 "$work/kc" | median); gm=$(cut -d' ' -f2 "$work/git" | median)
echo "$(git --version); $(ssh -V 2>&1); $("$BIN" --version); $(nproc) cores"
echo "repository: ${pack_mb} MB pack, $commits commits; clones written to $DEST_PARENT"
awk -v kw="$kw" -v gw="$gw" -v km="$km" -v gm="$gm" -v r="$RUNS" 'BEGIN {
  printf "clone wall     keyclone %7.2f s    git %7.2f s    ratio %.2fx   (median of %d)\n", kw, gw, kw/gw, r
  printf "clone peak RSS keyclone %7.0f MB   git %7.0f MB   ratio %.2fx\n", km/1024, gm/1024, km/gm }'
echo "keyclone phases (one more run): $phases"
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "git phases (one more run): fetch + index-pack %.1f s, checkout %.1f s\n", b-a, c-b }'
