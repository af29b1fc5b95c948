#!/usr/bin/env bash
# Benchmark: one large Git LFS object (4 GiB by default) fetched over the pure SSH protocol
# (`git-lfs-transfer`, scutiger-lfs's, as `scripts/test` builds it into target/tools) from a
# local sshd, `keyclone clone` against `git clone` with git-lfs (which uses the same protocol
# when the server offers it); wall time and peak RSS (GNU time's %M: for git the largest single
# process among git, git-lfs and ssh, not their sum; keyclone is one process).
#
#   bash bench/lfs_large.sh [SIZE_MIB]      default 4096
#
# The object is a sparse file of zeros (never committed, nothing to store on the server side);
# its pointer is committed as is. Each clone writes the object twice (the LFS store and the
# work tree), so it needs 2 x SIZE of free disk under target/bench (checked first); each clone
# is deleted before the next. Both tools verify the SHA-256 as they receive.
# Needs: git, git-lfs, openssh-server, GNU time (/usr/bin/time), python3 (a free port).
set -euo pipefail
SIZE_MIB=${1:-4096}
cd "$(dirname "$0")/.."
ROOT=$PWD
for tool in git git-lfs python3 ssh-keygen /usr/sbin/sshd /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench/lfs_large.sh needs $tool" >&2; exit 1; }
done
TRANSFER=$ROOT/target/tools/bin/git-lfs-transfer
[ -x "$TRANSFER" ] || { echo "bench/lfs_large.sh needs $TRANSFER: run bash scripts/test, or cargo install --locked scutiger-lfs --version =0.3.0 --root target/tools" >&2; exit 1; }
cargo build --release --locked --quiet
BIN=$ROOT/target/release/keyclone
mkdir -p "$ROOT/target/bench"
work=$(mktemp -d "$ROOT/target/bench/lfs-large.XXXXXX")
cleanup() { [ -n "${SSHD_PID:-}" ] && kill "$SSHD_PID" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_mib=$(df -m --output=avail "$work" | tail -1 | tr -d ' ')
if [ "$free_mib" -lt $((SIZE_MIB * 2 + 1024)) ]; then
  echo "bench/lfs_large.sh: $free_mib MiB free under target/bench, needs $((SIZE_MIB * 2 + 1024))" >&2
  exit 1
fi

# The repository: a pointer to the sparse object, committed without git-lfs's clean filter.
truncate -s "${SIZE_MIB}M" "$work/object"
oid=$(sha256sum "$work/object" | cut -d' ' -f1)
size=$(stat -c %s "$work/object")
git init -q -b main "$work/src"
printf '*.bin filter=lfs diff=lfs merge=lfs -text\n' > "$work/src/.gitattributes"
printf 'version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %s\n' "$oid" "$size" > "$work/src/big.bin"
git -C "$work/src" add .gitattributes big.bin
git -C "$work/src" -c user.name=bench -c user.email=bench@example.com commit -q -m big
git clone -q --bare "$work/src" "$work/repo.git"
mkdir -p "$work/repo.git/lfs/objects/${oid:0:2}/${oid:2:2}"
mv "$work/object" "$work/repo.git/lfs/objects/${oid:0:2}/${oid:2:2}/$oid"

# The sshd: `git-lfs-transfer` runs scutiger's, every other command as it came.
cat > "$work/wrapper.sh" <<SH
#!/bin/sh
case "\$SSH_ORIGINAL_COMMAND" in
"git-lfs-transfer "*) eval "exec '$TRANSFER' \${SSH_ORIGINAL_COMMAND#git-lfs-transfer }" ;;
*) exec /bin/sh -c "\$SSH_ORIGINAL_COMMAND" ;;
esac
SH
chmod 755 "$work/wrapper.sh"
# shellcheck source=bench/sshd.sh
source bench/sshd.sh
bench_sshd "ForceCommand $work/wrapper.sh"
URL="ssh://$(id -un)@127.0.0.1:$PORT$work/repo.git"
DEST=$work/dest

check() {
  [ "$(stat -c %s "$DEST/big.bin")" = "$size" ] || { echo "$1: big.bin is not the object" >&2; exit 1; }
}

echo "one LFS object of $SIZE_MIB MiB over git-lfs-transfer (scutiger-lfs), sshd on 127.0.0.1; load: $(cut -d' ' -f1-3 /proc/loadavg)"
HOME="$work/home" /usr/bin/time -f "%e %M" -o "$work/t.kc" "$BIN" --json clone "$URL" "$DEST" --non-interactive > "$work/kc.json"
python3 -c 'import json,sys; l=json.load(open(sys.argv[1]))["lfs"]; assert l["fetched"]==1 and l["protocol"]=="ssh", l' "$work/kc.json"
check keyclone
rm -rf "$DEST"

HOME="$work/home" git config --global filter.lfs.process "git-lfs filter-process"
HOME="$work/home" git config --global filter.lfs.required true
HOME="$work/home" git config --global filter.lfs.clean "git-lfs clean -- %f"
HOME="$work/home" git config --global filter.lfs.smudge "git-lfs smudge -- %f"
HOME="$work/home" GIT_SSH_COMMAND="ssh -F /dev/null -i $work/home/.ssh/id_ed25519 -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$work/home/.ssh/known_hosts" \
  /usr/bin/time -f "%e %M" -o "$work/t.git" git clone -q "$URL" "$DEST"
check git
HOME="$work/home" git -C "$DEST" lfs fsck >/dev/null
rm -rf "$DEST"

read -r kc_s kc_kib < "$work/t.kc"
read -r git_s git_kib < "$work/t.git"
printf '%-26s %10s %14s\n' tool "wall s" "peak RSS MiB"
printf '%-26s %10s %14s\n' "keyclone clone" "$kc_s" "$((kc_kib / 1024))"
printf '%-26s %10s %14s\n' "git clone + git-lfs" "$git_s" "$((git_kib / 1024))"
