"""An MLflow run-context provider: keyclone's ``mlflow.source.git.*`` tags on every run.

MLflow loads it through the ``mlflow.run_context_provider`` entry point and applies plugins
after its own Git context, so these tags win (and appear even when git or GitPython is
missing). A failure never reaches MLflow: the provider logs a warning and gives no tags.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Dict

from . import _keyclone

_logger = logging.getLogger("keyclone_mlflow")

#: MLflow refuses a tag value longer than this (``MAX_TAG_VAL_LENGTH``).
MLFLOW_TAG_CAP = 8000


def source_directory() -> str:
    """The run's code directory as MLflow picks it: the main script's folder, else the CWD."""
    main = sys.argv[0] if sys.argv else ""
    if main and os.path.isfile(main):
        return os.path.dirname(os.path.abspath(main))
    return os.getcwd()


def _off() -> bool:
    v = os.environ.get("KEYCLONE_PROVENANCE", "").strip().lower()
    return v in ("off", "0", "false")


class KeycloneRunContextProvider:
    """``in_context()`` and ``tags()``, as MLflow's ``RunContextProvider`` asks."""

    def in_context(self) -> bool:
        # `KEYCLONE_PROVENANCE=off` turns keyclone off here too (without a warning).
        return not _off()

    def tags(self) -> Dict[str, str]:
        try:
            # Asked for each run (not cached): the working tree may change between runs.
            props = _keyclone.properties("mlflow", source_directory())
            tags = {}
            for k, v in props.items():
                if not k.startswith("mlflow."):
                    continue
                if len(v) > MLFLOW_TAG_CAP:
                    _logger.warning(
                        "keyclone_mlflow: tag `%s` is longer than MLflow's %d-character "
                        "cap: left out", k, MLFLOW_TAG_CAP)
                    continue
                tags[k] = v
            return tags
        except _keyclone.KeycloneError as e:
            _logger.warning("keyclone_mlflow: this run gets no Git tags from keyclone: %s", e)
        except Exception as e:  # never raise into MLflow
            _logger.warning(
                "keyclone_mlflow: this run gets no Git tags from keyclone (unexpected %s); "
                "run `keyclone provenance --format mlflow` to see what keyclone says",
                type(e).__name__)
        return {}
