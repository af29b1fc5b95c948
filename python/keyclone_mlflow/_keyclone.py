"""Running the ``keyclone`` binary: where it is, a deadline, and what a failure means.

Nothing here runs at import time, nothing reaches the network, and nothing is logged but
keyclone's own messages (which never hold secrets) and the failure's reason.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import warnings
from typing import Dict, Optional

#: The binary to run, when it is not ``keyclone`` on ``PATH``.
KEYCLONE_BIN = "KEYCLONE_BIN"
#: Seconds the whole call may take (default 10); keyclone's own ``--deadline`` is a little less.
KEYCLONE_MLFLOW_TIMEOUT = "KEYCLONE_MLFLOW_TIMEOUT"
DEFAULT_TIMEOUT = 10.0


class KeycloneError(Exception):
    """keyclone could not give the properties; the message says why and what to do."""


def find_binary() -> str:
    """``$KEYCLONE_BIN`` if set, else ``keyclone`` on ``PATH``."""
    configured = os.environ.get(KEYCLONE_BIN, "").strip()
    if configured:
        if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
            raise KeycloneError(
                f"{KEYCLONE_BIN} names `{configured}`, which is not an executable file: "
                f"point {KEYCLONE_BIN} at the keyclone binary, or unset it to use keyclone on PATH"
            )
        return configured
    found = shutil.which("keyclone")
    if found is None:
        raise KeycloneError(
            "the `keyclone` binary is not on PATH: install keyclone, or set "
            f"{KEYCLONE_BIN} to its path"
        )
    return found


def timeout_seconds() -> float:
    raw = os.environ.get(KEYCLONE_MLFLOW_TIMEOUT, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise KeycloneError(
            f"{KEYCLONE_MLFLOW_TIMEOUT}=`{raw}` is not a number of seconds: "
            f"set it to e.g. 10, or unset it"
        ) from None
    if not math.isfinite(value):
        warnings.warn(
            f"{KEYCLONE_MLFLOW_TIMEOUT}=`{raw}` is not a finite number of seconds: "
            f"using the default, {DEFAULT_TIMEOUT:g} s (set it to e.g. 10, or unset it)",
            stacklevel=2,
        )
        return DEFAULT_TIMEOUT
    return min(max(value, 0.1), 3600.0)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""


def properties(fmt: str, path: str, timeout: Optional[float] = None) -> Dict[str, str]:
    """``keyclone provenance PATH --format FMT`` as a dict of strings, within ``timeout``.

    Raises :class:`KeycloneError` on any failure (missing binary, time-out, an error from
    keyclone, output that is not a JSON object of strings).
    """
    binary = find_binary()
    limit = timeout_seconds() if timeout is None else timeout
    # keyclone's status scan stops at its deadline (dirty then unknown) before the call's.
    deadline = max(limit * 0.8, 0.001)
    cmd = [binary, "provenance", os.path.abspath(path), "--format", fmt,
           "--deadline", f"{deadline:.3f}"]
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        raise KeycloneError(
            f"`keyclone provenance` took longer than {limit:g} s: raise "
            f"{KEYCLONE_MLFLOW_TIMEOUT}, or run it by hand in `{path}` to see why"
        ) from None
    except OSError as e:
        raise KeycloneError(f"could not run `{binary}`: {e.strerror or e}") from None
    if done.returncode != 0:
        why = _first_line(done.stderr.decode("utf-8", "replace")) or "no message"
        raise KeycloneError(
            f"`keyclone provenance` failed (exit {done.returncode}: {why}); run "
            f"`keyclone provenance {path}` to see the whole message and its fix"
        )
    try:
        value = json.loads(done.stdout.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise KeycloneError(
            "`keyclone provenance` printed something that is not JSON: "
            f"check that {KEYCLONE_BIN} or PATH names keyclone"
        ) from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise KeycloneError(
            "`keyclone provenance` printed JSON that is not an object of strings: "
            "update keyclone, or check which binary runs"
        )
    return value
