"""The Python client of the Tuneboard API: HTTP only (httpx and the standard library).

It imports nothing of the server, so it installs and runs where the training code runs:

    from tuneboard.client import TuneboardClient
    with TuneboardClient.from_env() as tb:      # TUNEBOARD_URL, TUNEBOARD_API_KEY
        study = tb.submit(spec)

``Tuneboard`` runs an external study's trials in your own code (ask, report, tell):

    from tuneboard.client import Tuneboard, TrialPruned
    study = Tuneboard().create_study("my-study.yaml")
    study.optimize(train_fn, n_trials=20, n_workers=4)
"""

from tuneboard.client._errors import ApiError, ConfigError, FieldProblem
from tuneboard.client._http import DEFAULT_URL, TuneboardClient, api_key_from_env
from tuneboard.client._sdk import Study, Trial, TrialPruned, Tuneboard

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "ConfigError",
    "FieldProblem",
    "Study",
    "Trial",
    "TrialPruned",
    "Tuneboard",
    "TuneboardClient",
    "api_key_from_env",
]
