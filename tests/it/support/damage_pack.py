"""sshd's ForceCommand for the damaged-pack tests: runs the client's command (git-upload-pack)
and damages the pack it sends, as a hostile server would, per the mode in the file named by
argv[1]: `none` (pass through), `object` (flip a byte inside the first object's deflated data),
`count` (one object more in the header than the pack holds), `trailer` (flip the trailer's last
byte), `extra` (bytes after the trailer); `MODE TEXT` damages only the packs of commands that
contain TEXT (one repository of several). Protocol v0 with side-band: pkt-lines, channel 1 the
pack. Everything from the pack's first packet to the flush is held, changed, then sent."""
import os
import subprocess
import sys

mode, _, only = open(sys.argv[1]).read().strip().partition(" ")
cmd = os.environ.get("SSH_ORIGINAL_COMMAND", "")
if not cmd.startswith("git-upload-pack") or mode == "none" or only not in cmd:
    os.execvp("sh", ["sh", "-c", cmd or "true"])
child = subprocess.Popen(["sh", "-c", cmd], stdout=subprocess.PIPE)
src, out = child.stdout, sys.stdout.buffer


def pkt(payload):
    return b"%04x" % (len(payload) + 4) + payload


held = None  # the packets from the pack's start to the flush: [channel byte + data]
while True:
    head = src.read(4)
    if len(head) < 4:
        break
    n = int(head, 16)
    if n == 0:
        if held is not None:
            data = [p for p in held if p[:1] == b"\x01"]
            pack = bytearray(b"".join(p[1:] for p in data))
            if mode == "object":
                pack[40] ^= 0xFF
            elif mode == "count":
                pack[11] += 1
            elif mode == "trailer":
                pack[-1] ^= 1
            elif mode == "extra":
                pack += b"not part of the pack"
            for i in range(0, len(pack), 65000):
                out.write(pkt(b"\x01" + bytes(pack[i : i + 65000])))
            for p in held:
                if p[:1] != b"\x01":
                    out.write(pkt(p))
            held = None
        out.write(b"0000")
        out.flush()
        continue
    payload = src.read(n - 4)
    if held is None and payload[:5] == b"\x01PACK":
        held = []
    if held is not None:
        held.append(payload)
    else:
        out.write(pkt(payload))
        out.flush()
out.flush()
sys.exit(child.wait())
