#!/usr/bin/env python3
"""Writes a git fast-import stream of a real history to stdout: the files under the given
directories (real text: crate sources, HTML documentation), committed in batches of BATCH
files, oldest first, so the history has thousands of commits and a large pack.

    python3 bench/make_history.py BATCH DIR [DIR ...] | git fast-import
"""
import os
import sys


def main():
    batch = int(sys.argv[1])
    roots = sys.argv[2:]
    files = []
    for root in roots:
        for d, dirs, names in os.walk(root):
            dirs[:] = [x for x in dirs if x != "__pycache__"]
            for n in names:
                if n.endswith((".pyc", ".so", ".a", ".o")):
                    continue  # text only: sources and documentation
                p = os.path.join(d, n)
                if os.path.isfile(p) and not os.path.islink(p):
                    files.append((os.path.basename(root.rstrip("/")), os.path.relpath(p, root), p))
    files.sort()
    out = sys.stdout.buffer
    when = 1_600_000_000
    mark = 0
    for start in range(0, len(files), batch):
        chunk = files[start:start + batch]
        mark += 1
        msg = f"add {len(chunk)} files from {chunk[0][1]}\n".encode()
        out.write(b"commit refs/heads/main\n")
        out.write(f"mark :{mark}\n".encode())
        out.write(f"committer Bench <bench@example.com> {when + start} +0000\n".encode())
        out.write(f"data {len(msg)}\n".encode() + msg)
        for top, rel, path in chunk:
            with open(path, "rb") as f:
                data = f.read()
            out.write(f"M 100644 inline {top}/{rel}\n".encode())
            out.write(f"data {len(data)}\n".encode())
            out.write(data)
            out.write(b"\n")
    out.write(b"done\n")


if __name__ == "__main__":
    main()
