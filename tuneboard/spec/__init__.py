"""The vocabulary of Tuneboard, a leaf package: it imports nothing else of ``tuneboard``.

Everything above it (optimization, standards, studies, api, workers) speaks these types.
"""

from tuneboard.spec.states import StudyState, TrialState

__all__ = ["StudyState", "TrialState"]
