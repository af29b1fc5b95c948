#!/usr/bin/env bash
# Benchmark: keyclone keygen against ssh-keygen, measured in the same run, interleaved.
#
#   bash bench/keygen.sh [RUNS]        (default 15 runs per ed25519 case, 3x that for RSA, whose
#                                       prime search makes single runs vary 3-4x; medians;
#                                       ratio = keyclone / ssh-keygen)
#
# Cases:
#   ed25519 as shipped   keyclone (24 bcrypt-pbkdf rounds, OpenSSH >= 9.4 default) vs `ssh-keygen -t ed25519 -N`
#                        (the installed ssh-keygen's own default rounds: 16 on OpenSSH 9.2)
#   ed25519 equal work   both with 16 rounds, then both with 24 rounds (`ssh-keygen -a N`)
#   rsa 4096             keyclone --type rsa vs `ssh-keygen -t rsa -b 4096 -N`, both with a passphrase
# The passphrase is a dummy; ssh-keygen can only take it on its command line, keyclone reads a file.
set -euo pipefail
RUNS=${1:-15}
BASE_RUNS=$RUNS
cd "$(dirname "$0")/.."
source bench/lib.sh
PASS="benchmark dummy passphrase"
printf '%s\n' "$PASS" > "$work/pass"; chmod 600 "$work/pass"
mkdir -m 700 "$work/h"


# run_case NAME KEYCLONE_ARGS -- SSH_KEYGEN_ARGS
run_case() {
  local name=$1; shift
  local kc=() sk=()
  while [ "$1" != "--" ]; do kc+=("$1"); shift; done; shift
  sk=("$@")
  : > "$work/kc.t"; : > "$work/sk.t"
  for i in $(seq 1 "$RUNS"); do
    # Only the keys: the timing files (kc.t, sk.t) live in the same folder.
    rm -f "$work/kkey" "$work/kkey.pub" "$work/skey" "$work/skey.pub"
    local order=(kc sk); [ $((i % 2)) -eq 0 ] && order=(sk kc)
    for who in "${order[@]}"; do
      local t0 t1
      if [ "$who" = kc ]; then
        t0=$(now_us)
        HOME="$work/h" "$BIN" -q keygen --path "$work/kkey" --passphrase-file "$work/pass" "${kc[@]}" >/dev/null
        t1=$(now_us); echo $((t1 - t0)) >> "$work/kc.t"
      else
        t0=$(now_us)
        ssh-keygen -q -f "$work/skey" -N "$PASS" -C bench "${sk[@]}" >/dev/null
        t1=$(now_us); echo $((t1 - t0)) >> "$work/sk.t"
      fi
    done
  done
  local mk ms
  mk=$(median < "$work/kc.t"); ms=$(median < "$work/sk.t")
  awk -v n="$name" -v k="$mk" -v s="$ms" -v r="$RUNS" 'BEGIN {
    printf "%-34s keyclone %8.1f ms   ssh-keygen %8.1f ms   ratio %.2fx   (median of %d)\n", n, k/1000, s/1000, k/s, r }'
}

echo "$(ssh -V 2>&1); $("$BIN" --version); $(nproc) cores"
run_case "ed25519, as shipped (24 vs default)" -- -t ed25519
run_case "ed25519, 16 rounds each"            --kdf-rounds 16 -- -t ed25519 -a 16
run_case "ed25519, 24 rounds each"            --kdf-rounds 24 -- -t ed25519 -a 24
RUNS=$((BASE_RUNS * 3))
run_case "rsa 4096, as shipped"                --type rsa -- -t rsa -b 4096
