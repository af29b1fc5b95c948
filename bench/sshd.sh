# Shared by bench/clone.sh and bench/lfs_large.sh (sourced, from the repository root): a test
# sshd on 127.0.0.1 for the benchmark's clones. Needs $work (a scratch folder) and $BIN
# (keyclone); `bench_sshd [EXTRA_CONFIG_LINES]` makes $work/home with a key keyclone made (no
# passphrase), authorized on the sshd, whose host key keyclone trusts; sets PORT and SSHD_PID
# (the caller's cleanup kills it).
bench_sshd() {
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
${1:-}
CFG
  /usr/sbin/sshd -D -f "$work/sshd_config" -E "$work/sshd.log" & SSHD_PID=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
  local fp
  fp=$(ssh-keygen -lf "$work/host_key.pub" | cut -d' ' -f2)
  HOME="$work/home" "$BIN" -q trust "127.0.0.1:$PORT" --fingerprint "$fp"
}
