#!/usr/bin/env bash
# The real public histories the clone benchmark is run on, where they are expected, and how to
# get them. Their content is never committed to this repository.
#
#   bash bench/real-repos.sh            check that all are present (exit 1 with how to get them)
#   bash bench/real-repos.sh path NAME  print where NAME (owner/name) lives, if present
#
# Where they land: $MIRROR_DIR/<owner>+<name>/repo (a bare git directory; MIRROR_DIR defaults
# to /work/.mirror, where the developers' search tool puts its snapshots).
#
# How to get them, either
#   - with the `fetch` tool of the developers' search tool, source `github:<owner>/<name>`
#     (it writes $MIRROR_DIR/<owner>+<name>/repo); or
#   - on a machine with internet access:
#       git clone --mirror https://github.com/<owner>/<name>.git "$MIRROR_DIR/<owner>+<name>/repo"
#
# Then benchmark one: REPO=$(bash bench/real-repos.sh path rust-lang/cargo) bash bench/clone.sh 3
set -euo pipefail
MIRROR_DIR=${MIRROR_DIR:-/work/.mirror}
# owner/name   shape (pack size of the snapshots measured in README.md)
REPOS=(
  "BurntSushi/ripgrep"   # small: ~6 MB pack, ~2.3k commits
  "rust-lang/cargo"      # medium: ~105 MB pack, ~23k commits
  "git/git"              # large: ~496 MB pack, ~82k commits
)

where() { echo "$MIRROR_DIR/${1/\//+}/repo"; }
present() { git -C "$1" rev-parse --git-dir >/dev/null 2>&1 && git -C "$1" rev-parse -q --verify HEAD >/dev/null; }

if [ "${1:-}" = path ]; then
  name=${2:?usage: bench/real-repos.sh path OWNER/NAME}
  dir=$(where "$name")
  present "$dir" || { echo "$name is not at $dir: get it with the search tool's fetch (source github:$name) or git clone --mirror https://github.com/$name.git $dir" >&2; exit 1; }
  echo "$dir"; exit 0
fi

missing=0
for name in "${REPOS[@]}"; do
  dir=$(where "$name")
  if present "$dir"; then
    echo "ok       $name  $dir  ($(du -sm "$dir/objects" | cut -f1) MB objects, HEAD $(git -C "$dir" rev-parse --short=12 HEAD))"
  else
    echo "MISSING  $name  expected at $dir" >&2
    missing=1
  fi
done
if [ "$missing" = 1 ]; then
  cat >&2 <<'MSG'
Get the missing ones with the developers' search tool (`fetch`, source github:OWNER/NAME), or
on a machine with internet access:
  git clone --mirror https://github.com/OWNER/NAME.git "$MIRROR_DIR/OWNER+NAME/repo"
(MIRROR_DIR defaults to /work/.mirror.)
MSG
  exit 1
fi
