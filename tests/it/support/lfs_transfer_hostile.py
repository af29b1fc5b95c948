#!/usr/bin/env python3
"""A hostile `git-lfs-transfer`: a stand-in, for keyclone's tests (tests/it/lfs_transfer.rs), for
a server that speaks git-lfs's pure SSH protocol (docs/proposals/ssh_adapter.md) correctly up to
the object's bytes, and then lies as HOSTILE_MODE says:

  bad-oid   the object's bytes with its first byte changed (size right, SHA-256 wrong)
  size      `size=` one more than the pointer's, and one byte more
  long-pkt  a pkt-line whose length says 65525 (the limit is 65520)
  bad-hex   a pkt-line whose length is not hex (`00zz`)
  stall     half of the object, then silence for 60 s
  close     half of the object, then the connection closed

Usage (as the test sshd's wrapper runs it): lfs_transfer_hostile.py REPO download
The objects are read from REPO/lfs/objects, where git-lfs-transfer keeps them.
"""
import os
import sys
import time

mode = os.environ["HOSTILE_MODE"]
repo = sys.argv[1]
inp = sys.stdin.buffer
out = sys.stdout.buffer
FLUSH = b"0000"
DELIM = b"0001"


def pkt(data):
    if isinstance(data, str):
        data = data.encode()
    return b"%04x" % (len(data) + 4) + data


def send(*pkts):
    out.write(b"".join(pkts))
    out.flush()


def read_msg():
    lines = []
    while True:
        head = inp.read(4)
        if len(head) < 4:
            sys.exit(0)
        n = int(head, 16)
        if n == 0:
            return lines
        if n == 1:
            lines.append(None)
            continue
        lines.append(inp.read(n - 4).decode().rstrip("\n"))


def data_pkts(data):
    return [pkt(data[i:i + 65516]) for i in range(0, len(data), 65516)]


def serve(oid):
    with open(os.path.join(repo, "lfs/objects", oid[:2], oid[2:4], oid), "rb") as f:
        data = f.read()
    size = len(data)
    if mode == "bad-oid":
        data = bytes([data[0] ^ 1]) + data[1:]
    elif mode == "size":
        size += 1
        data += b"x"
    send(pkt("status 200\n"), pkt(f"size={size}\n"), DELIM)
    half = data_pkts(data[: len(data) // 2])
    if mode == "long-pkt":
        send(half[0], b"fff5" + b"x" * 100)
    elif mode == "bad-hex":
        send(half[0], b"00zz" + b"x" * 100)
    elif mode == "stall":
        send(*half)
        time.sleep(60)
    elif mode == "close":
        send(*half)
        sys.exit(0)
    else:
        send(*data_pkts(data), FLUSH)
        return
    sys.exit(0)


send(pkt("version=1\n"), FLUSH)
read_msg()
send(pkt("status 200\n"), DELIM, FLUSH)
while True:
    msg = read_msg()
    if not msg:
        sys.exit(0)
    cmd = msg[0]
    if cmd == "batch":
        objects = msg[msg.index(None) + 1:]
        send(pkt("status 200\n"), DELIM, *[pkt(f"{o} download\n") for o in objects], FLUSH)
    elif cmd.startswith("get-object "):
        serve(cmd.split(" ")[1])
    elif cmd == "quit":
        send(pkt("status 200\n"), FLUSH)
        sys.exit(0)
    else:
        send(pkt("status 400\n"), DELIM, pkt("unknown command\n"), FLUSH)
