"""Where a process tree's peak memory is, phase by phase: runs a command and samples
/proc/PID/status (VmRSS, VmHWM, RssAnon, RssFile, RssShmem) of the command and of every process
it starts, every few milliseconds, and /proc/PID/smaps whenever a process reaches a new peak
(to split the resident set into the pack and its index, the binary and its libraries, the
malloc heap and arenas, thread stacks).

    python3 bench/rss.py [--every MS] [--json FILE] -- COMMAND...

A process's phase is named from its thread names (keyclone) or its command (git):
  keyclone  connect   before the pack indexer's thread exists
            receive   `keyclone-index-pack` alive, no resolver thread yet (the pack streams in
                      and is parsed; or libgit2's own indexer, then named `receive+resolve`)
            resolve   gix-pack's `gix-pack.traverse_deltas.N` threads alive
            index     the indexer's thread alive after the resolvers ended (sorting, the .idx)
            checkout  the indexer's thread has ended
  git       each process is its own phase: `git clone`, `git index-pack`, `ssh`, ...
Prints, per process: its peak (VmHWM, what GNU time's %M reports for the largest process), the
sample nearest that peak with its split, and for each phase the largest sample and its split.
The split (MiB resident): `pack` / `pack idx` (files under objects/pack; on tmpfs, such as
bench/clone.sh's /dev/shm, they count as RssShmem, not RssFile), `binary r-x` / `r--` (its
code; its read-only and relocated data), `libraries`, `heap` (the main malloc arena), `arenas`
(glibc's per-thread arenas: 64 MiB-aligned anonymous mappings), `anon mmap` (blocks above
malloc's mmap threshold, thread stacks). `--json FILE` also writes every sample.
The sampler is itself a Python process on the same cores: use it to see where memory goes,
not to time anything (bench/clone.sh does that).
"""

import json
import os
import subprocess
import sys
import time

KIB = 1024


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return None


def status(pid):
    text = read(f"/proc/{pid}/status")
    if text is None:
        return None
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads"):
            out[key] = int(value.split()[0])
    return out


def children(pid):
    kids = []
    for tid in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
        text = read(f"/proc/{pid}/task/{tid}/children")
        if text:
            kids.extend(int(k) for k in text.split())
    return kids


def thread_names(pid):
    names = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return names
    for tid in tids:
        name = read(f"/proc/{pid}/task/{tid}/comm")
        if name:
            names.append(name.strip())
    return names


def classify(path, start, perms):
    """The part of the resident set a mapping belongs to (`start`: its first address; the
    binary's mappings are told apart by `perms`: code, read-only data, relocated data)."""
    if "/objects/pack/" in path:
        return "pack idx" if path.endswith(".idx") else "pack"
    if path == "[heap]":
        return "heap"
    if path.startswith("[stack"):
        return "stacks"
    if path in ("", "[anon]") or path.startswith("[anon:"):
        # glibc's per-thread malloc arenas are heaps of up to 64 MiB aligned to 64 MiB; any
        # other anonymous mapping is a large allocation (malloc's mmap) or a thread stack.
        return "arenas" if start % (64 << 20) == 0 else "anon mmap"
    if path.startswith("["):
        return "other"
    if ".so" in os.path.basename(path):
        return "libraries"
    return f"binary {perms[:3]}" if os.access(path, os.X_OK) else "other files"


def smaps(pid):
    """Resident KiB per part (see `classify`), from /proc/PID/smaps."""
    text = read(f"/proc/{pid}/smaps")
    if text is None:
        return None
    parts = {}
    part = None
    for line in text.splitlines():
        first = line.split(None, 5)
        if not first:
            continue
        if "-" in first[0] and not first[0].endswith(":"):
            path = first[5].strip() if len(first) > 5 else ""
            part = classify(path, int(first[0].split("-")[0], 16), first[1])
        elif first[0] == "Rss:" and part is not None:
            parts[part] = parts.get(part, 0) + int(first[1])
    return parts


def keyclone_phase(names, seen):
    resolving = any(n.startswith("gix-pack.trave") for n in names)
    indexer = "keyclone-index-" in names
    if resolving:
        seen.add("resolve")
        return "resolve"
    if indexer:
        return "index" if "resolve" in seen else "receive"
    if seen & {"receive", "resolve", "index"} or "checkout" in seen:
        seen.add("checkout")
        return "checkout"
    return "connect"


def main():
    args = sys.argv[1:]
    every = 0.005
    json_out = None
    while args and args[0] != "--":
        flag = args.pop(0)
        if flag == "--every":
            every = float(args.pop(0)) / 1000
        elif flag == "--json":
            json_out = args.pop(0)
        else:
            sys.exit(f"unknown flag {flag}; usage: rss.py [--every MS] [--json FILE] -- COMMAND...")
    if not args:
        sys.exit("usage: rss.py [--every MS] [--json FILE] -- COMMAND...")
    command = args[1:]
    t0 = time.monotonic()
    proc = subprocess.Popen(command)
    procs = {}  # pid -> record
    timeline = []  # every sample: (t, pid, phase, VmRSS, RssAnon, RssFile, RssShmem)
    order = []

    def record(pid):
        if pid not in procs:
            procs[pid] = {
                "pid": pid,
                "name": str(pid),
                "hwm": 0,
                "peak": None,
                "phases": {},
                "seen": set(),
                "keyclone": False,
                "best_rss": 0,
            }
            order.append(pid)
        r = procs[pid]
        # Named from its command line each time: the first sample may come before its exec.
        cmd = (read(f"/proc/{pid}/cmdline") or "").split("\0")
        if cmd and cmd[0]:
            r["name"] = " ".join(c for c in cmd[:3] if c)[:60]
            r["keyclone"] = os.path.basename(cmd[0]) == "keyclone"
        return r

    while proc.poll() is None:
        now = time.monotonic() - t0
        pending = [proc.pid]
        while pending:
            pid = pending.pop()
            st = status(pid)
            if st is None:
                continue
            r = record(pid)
            pending.extend(children(pid))
            if r["keyclone"]:
                phase = keyclone_phase(thread_names(pid), r["seen"])
                if phase == "receive" and "receive" not in r["seen"]:
                    r["seen"].add("receive")
            else:
                phase = "all"
            r["hwm"] = max(r["hwm"], st.get("VmHWM", 0))
            sample = {"t": round(now, 3), "phase": phase, **st}
            timeline.append(
                (sample["t"], pid, phase)
                + tuple(st.get(k, 0) for k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"))
            )
            rss = st.get("VmRSS", 0)
            best = r["phases"].get(phase)
            new_peak = rss > r["best_rss"] + 256  # KiB: split again only on a real rise
            new_phase_peak = best is None or rss > best["VmRSS"] + 256
            if new_peak or new_phase_peak:
                parts = smaps(pid)
                if parts is not None:
                    sample["parts"] = parts
            if new_peak:
                r["best_rss"] = rss
                r["peak"] = sample
            if best is None or rss > best["VmRSS"]:
                if "parts" not in sample and best is not None and "parts" in best:
                    sample["parts"] = best["parts"]  # a rise of < 256 KiB: the last split
                r["phases"][phase] = sample
        time.sleep(every)
    rc = proc.returncode
    total = time.monotonic() - t0

    def mb(kib):
        return f"{kib / KIB:6.1f}"

    def split(s):
        parts = s.get("parts") or {}
        keys = sorted(parts, key=lambda k: -parts[k])
        return ", ".join(f"{k} {parts[k] / KIB:.1f}" for k in keys if parts[k] >= 100)

    lines = [f"command exited {rc} after {total:.2f} s; sampled every {every * 1000:.0f} ms (MB = MiB)"]
    for pid in order:
        r = procs[pid]
        if r["peak"] is None:
            continue
        p = r["peak"]
        lines.append(
            f"{r['name']}: peak VmHWM {mb(r['hwm'])} MB; largest sample {mb(p['VmRSS'])} MB at {p['t']:.2f} s"
            f" ({p['phase']}): anon {mb(p.get('RssAnon', 0))}, file {mb(p.get('RssFile', 0))},"
            f" shmem {mb(p.get('RssShmem', 0))}"
        )
        if p.get("parts"):
            lines.append(f"    split: {split(p)}")
        for phase, s in r["phases"].items():
            lines.append(
                f"  {phase:<9} max {mb(s['VmRSS'])} MB at {s['t']:6.2f} s: anon {mb(s.get('RssAnon', 0))},"
                f" file {mb(s.get('RssFile', 0))}, shmem {mb(s.get('RssShmem', 0))}, threads {s.get('Threads', 0)}"
            )
            if s.get("parts"):
                lines.append(f"              {split(s)}")
    print("\n".join(lines), file=sys.stderr)
    if json_out:
        for r in procs.values():
            r["seen"] = sorted(r["seen"])
        with open(json_out, "w") as f:
            json.dump(
                {
                    "rc": rc,
                    "seconds": total,
                    "processes": [procs[p] for p in order],
                    "timeline": timeline,
                },
                f,
            )
    sys.exit(rc)


if __name__ == "__main__":
    main()
