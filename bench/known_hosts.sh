#!/usr/bin/env bash
# Benchmark: looking up one host in a 10,000-line known_hosts with hashed names,
# `keyclone trust --show HOST` against `ssh-keygen -F HOST -f FILE`, whole processes,
# interleaved in the same run.
#
#   bash bench/known_hosts.sh [RUNS]     (default 31; medians; ratio = keyclone / ssh-keygen)
set -euo pipefail
RUNS=${1:-31}
LINES=10000
cd "$(dirname "$0")/.."
source bench/lib.sh
mkdir -m 700 "$work/ssh"

# Ten real keys of three types, 10,000 host names, then hashed by ssh-keygen -H itself.
for i in $(seq 0 9); do
  case $((i % 3)) in 0) t=ed25519;; 1) t=ecdsa;; 2) t=rsa;; esac
  ssh-keygen -q -t "$t" -N '' -C '' -f "$work/k$i" </dev/null
done
for i in $(seq 1 "$LINES"); do
  printf 'host%d.example.com %s\n' "$i" "$(cut -d' ' -f1,2 "$work/k$((i % 10)).pub")"
done > "$work/ssh/known_hosts"
ssh-keygen -q -H -f "$work/ssh/known_hosts" >/dev/null && rm -f "$work/ssh/known_hosts.old"
HOST=host7777.example.com


# Both must find the host (and only it).
"$BIN" --ssh-dir "$work/ssh" trust --show "$HOST" | grep -q 'known_hosts:7777 ' || { echo "keyclone did not find $HOST" >&2; exit 1; }
ssh-keygen -F "$HOST" -f "$work/ssh/known_hosts" | grep -q "found: line 7777" || { echo "ssh-keygen did not find $HOST" >&2; exit 1; }

: > "$work/kc.t"; : > "$work/sk.t"
for i in $(seq 1 "$RUNS"); do
  order=(kc sk); [ $((i % 2)) -eq 0 ] && order=(sk kc)
  for who in "${order[@]}"; do
    t0=$(now_us)
    if [ "$who" = kc ]; then
      "$BIN" --ssh-dir "$work/ssh" trust --show "$HOST" >/dev/null
    else
      ssh-keygen -F "$HOST" -f "$work/ssh/known_hosts" >/dev/null
    fi
    t1=$(now_us); echo $((t1 - t0)) >> "$work/$who.t"
  done
done
mk=$(median < "$work/kc.t"); ms=$(median < "$work/sk.t")
echo "$(ssh -V 2>&1); $("$BIN" --version); $(nproc) cores"
awk -v k="$mk" -v s="$ms" -v r="$RUNS" -v n="$LINES" 'BEGIN {
  printf "lookup in %d hashed lines        keyclone %8.1f ms   ssh-keygen -F %8.1f ms   ratio %.2fx   (median of %d)\n", n, k/1000, s/1000, k/s, r }'
