# Shared by the benchmark scripts (sourced, from the repository root): a release build of
# keyclone in $BIN, a scratch folder in $work (removed on exit), and the timing helpers.
command -v ssh-keygen >/dev/null || { echo "ssh-keygen is missing: apt-get install openssh-client" >&2; exit 1; }
cargo build --release --locked --quiet
BIN=$PWD/target/release/keyclone
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Microseconds since the epoch.
now_us() { echo $(( $(date +%s%N) / 1000 )); }
# The median of the numbers on stdin, one a line.
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
