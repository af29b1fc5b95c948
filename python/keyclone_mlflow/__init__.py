"""keyclone's Git provenance for MLflow runs and Azure ML jobs.

- :class:`KeycloneRunContextProvider`: registered under MLflow's ``mlflow.run_context_provider``
  entry point, so an installed package tags every run with keyclone's ``mlflow.source.git.*``.
- :func:`azureml_job_properties`: the Azure ML job properties (SDK v1 and v2 keys) as a dict.

Both run the ``keyclone`` binary (``KEYCLONE_BIN``, else ``PATH``); importing does nothing.
"""

from ._keyclone import KeycloneError
from .azureml import AZUREML_JOB_KEYS, azureml_job_properties
from .provider import KeycloneRunContextProvider

__all__ = [
    "AZUREML_JOB_KEYS",
    "KeycloneError",
    "KeycloneRunContextProvider",
    "azureml_job_properties",
]
__version__ = "0.1.0"
