"""The Azure ML job properties, for ``job.properties``."""

from __future__ import annotations

import logging
from typing import Dict, Optional

from . import _keyclone

_logger = logging.getLogger("keyclone_mlflow")

#: What ``azureml_job_properties`` can return: both SDK families (a key that cannot be known is
#: left out; ``build_id``/``build_uri`` come only from ``AZUREML_GIT_BUILD_ID``/``_URI``).
AZUREML_JOB_KEYS = (
    "azureml.git.repository_uri",
    "azureml.git.branch",
    "azureml.git.commit",
    "azureml.git.dirty",
    "azureml.git.build_id",
    "azureml.git.build_uri",
    "mlflow.source.git.repoURL",
    "mlflow.source.git.branch",
    "mlflow.source.git.commit",
)


def azureml_job_properties(path: str = ".", timeout: Optional[float] = None,
                           strict: bool = False) -> Dict[str, str]:
    """The Git properties of the code at ``path`` as Azure ML SDK v1 and v2 send them.

    Set them as the job's ``properties=``: the v2 SDK adds none of its own Git properties to a
    job that already has one, so these win over its git subprocesses. On a failure, a warning
    and ``{}`` (the SDK then records Git as it would have), or :class:`KeycloneError` with
    ``strict=True``.
    """
    try:
        props = _keyclone.properties("azureml-job", path, timeout)
    except _keyclone.KeycloneError as e:
        if strict:
            raise
        _logger.warning("keyclone_mlflow: no Git properties from keyclone: %s", e)
        return {}
    return {k: v for k, v in props.items() if k in AZUREML_JOB_KEYS}
