"""Runs `git clone --progress ...` (the command after `--`) and splits its wall time into phases
from the moments its progress lines reach 100%: receive (until "Receiving objects: 100%",
which includes connecting, the ref advertisement and the server counting and compressing),
resolve (until "Resolving deltas: 100%": index-pack's threaded delta resolution) and checkout
(the rest: ref updates and "Updating files"). Prints them as JSON on stdout; git's own stderr
is swallowed.

    python3 bench/git_phases.py -- /usr/bin/time -o t git clone --progress URL DEST

For `git index-pack -v PACK` the first phase ends at "Indexing objects: 100%" instead.
"""

import json
import subprocess
import sys
import time

args = sys.argv[sys.argv.index("--") + 1 :]
t0 = time.monotonic()
proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
received = resolved = None
buf = b""
while True:
    chunk = proc.stderr.read1(65536)
    if not chunk:
        break
    now = time.monotonic()
    buf = (buf + chunk)[-4096:]
    if received is None and (b"Receiving objects: 100%" in buf or b"Indexing objects: 100%" in buf):
        received = now
    if resolved is None and b"Resolving deltas: 100%" in buf:
        resolved = now
rc = proc.wait()
end = time.monotonic()
if rc != 0:
    sys.exit(f"git failed with exit code {rc}: {buf.decode(errors='replace')[-500:]}")
received = received or end
resolved = resolved or received
print(
    json.dumps(
        {"receive": received - t0, "resolve": resolved - received, "checkout": end - resolved}
    )
)
