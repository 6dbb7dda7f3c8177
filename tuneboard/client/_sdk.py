"""Run a study's trials in your own code: ask, report and tell over HTTP, like Optuna's
ask-and-tell.

    from tuneboard.client import Tuneboard, TrialPruned
    tb = Tuneboard()                              # TUNEBOARD_URL, TUNEBOARD_API_KEY
    study = tb.create_study("my-study.yaml")      # objective: {external: true}; or tb.study(42)
    for trial in study.trials(n=20):
        with trial:                               # a prune ends this trial, an error fails it
            for epoch in range(30):
                trial.report(epoch, val_loss=..., val_accuracy=...)  # raises TrialPruned
            trial.complete(val_accuracy=...)
    # or: study.optimize(train_fn, n_trials=20, n_workers=4)

What it does for you:

- Requests that did not reach the server (connection errors) and 503s are retried with
  exponential backoff; a report is safe to send twice (the server stores a step once), and a
  tell whose answer was lost is recognised when it is sent again.
- While a trial runs, a daemon thread beats (``POST .../heartbeat``) at a third of the lease, so
  a long step between reports does not lose the trial.
- Waiting for work: an ask answered 409 with ``Retry-After`` (every slot busy, or trials still
  running that may come back as retries) is asked again after that delay; a 409 without it
  means the study has nothing more to give, and the loop ends.
- Errors are :class:`ApiError` with the API's code, message and field-level ``problems``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

from tuneboard.client._errors import ApiError, ConfigError
from tuneboard.client._http import (
    API_PREFIX,
    DEFAULT_URL,
    Retry,
    _decode,
    api_key_from_env,
    send,
)

__all__ = ["Study", "Trial", "TrialPruned", "Tuneboard"]

log = logging.getLogger("tuneboard.client")

# How often a request that failed on the way (or met a 503) is tried, and the waits between.
MAX_ATTEMPTS = 6
BACKOFF_S = 0.25
BACKOFF_MAX_S = 8.0
# The longest an ask waits between polls, whatever Retry-After says.
POLL_MAX_S = 30.0
ERROR_MAX_CHARS = 4000


class TrialPruned(Exception):
    """The study's pruner stopped this trial; it has been told ``pruned`` already."""


class Tuneboard:
    """A connection to the Tuneboard API, for running external studies."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        key = api_key or api_key_from_env()
        if not key:
            raise ConfigError("no API key: pass api_key= or set TUNEBOARD_API_KEY")
        self.url = (url or os.environ.get("TUNEBOARD_URL") or DEFAULT_URL).rstrip("/")
        self.max_attempts = max(1, max_attempts)
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=no_delay(),
                                  headers={"Authorization": f"Bearer {key}"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Tuneboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_study(self, spec: str | Path | Mapping[str, Any]) -> Study:
        """Create a study from a spec: a mapping, or the path of a YAML or JSON file."""
        body = _load_spec(spec) if isinstance(spec, str | Path) else dict(spec)
        return Study(self, self.request("POST", "/studies", json=body))

    def study(self, study_id: int) -> Study:
        return Study(self, self.request("GET", f"/studies/{study_id}"))

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call, retried with backoff while the server cannot be reached or answers
        503; any other error response raises :class:`ApiError`. Every call of this client is
        safe to send twice (see the module's docstring)."""
        retry = Retry(attempts=self.max_attempts, first_s=BACKOFF_S, max_s=BACKOFF_MAX_S)
        return _decode(send(self._http, method, API_PREFIX + path, retry=retry, safe=True,
                            **kwargs))


class Study:
    """A study as the API shows it (``info``), and the trials it hands out."""

    def __init__(self, tb: Tuneboard, info: dict[str, Any]) -> None:
        self.tb = tb
        self.info = info
        self.id: int = int(info["id"])

    def __repr__(self) -> str:
        return f"Study(id={self.id}, name={self.info.get('name')!r})"

    def refresh(self) -> Study:
        self.info = self.tb.request("GET", f"/studies/{self.id}")
        return self

    def ask(self, *, wait: bool = True) -> Trial | None:
        """The next trial to run; None once the study has none left to give. With ``wait``, a
        409 that carries Retry-After (trials still running) is asked again after that delay."""
        while True:
            try:
                data = self.tb.request("POST", f"/studies/{self.id}/trials/ask")
            except ApiError as err:
                retry_s = _details_retry_after(err)
                if err.status != 409:
                    raise
                if retry_s is None or not wait:
                    log.info("study %s gives no more trials: %s", self.id, err.message)
                    return None
                time.sleep(min(retry_s, POLL_MAX_S))
                continue
            return Trial(self, data)

    def trials(self, n: int | None = None) -> Iterator[Trial]:
        """Ask for trials until ``n`` have been handed out or the study has none left. A trial
        the loop leaves without a tell (an exception, a ``break``) is told ``fail``."""
        given = 0
        while n is None or given < n:
            trial = self.ask()
            if trial is None:
                return
            given += 1
            try:
                yield trial
            except GeneratorExit:
                trial._fail_if_untold("the client's loop ended (an exception or a break) "
                                      "before the trial was told")
                raise
            trial._fail_if_untold("the client's loop went on without telling the trial")

    def optimize(
        self,
        fn: Callable[[Trial], float | Mapping[str, float] | None],
        n_trials: int | None = None,
        n_workers: int = 1,
    ) -> None:
        """Run ``fn(trial)`` on up to ``n_trials`` trials, ``n_workers`` at a time in threads.
        ``fn`` returns the study metric's value, a mapping of final metrics, or None after
        telling the trial itself. TrialPruned prunes the trial; any other exception fails it
        with its traceback, and the next trial runs."""
        lock = threading.Lock()
        budget = [n_trials]

        def take() -> bool:
            with lock:
                if budget[0] is None:
                    return True
                if budget[0] <= 0:
                    return False
                budget[0] -= 1
                return True

        def work() -> None:
            while take():
                trial = self.ask()
                if trial is None:
                    return
                try:
                    with trial:
                        result = fn(trial)
                        if not trial.finished:
                            trial._complete_with(result)
                except Exception:  # told ``fail`` with its traceback by the context manager
                    log.exception("trial %s/%d failed", self.id, trial.number)

        threads = [threading.Thread(target=work, name=f"tuneboard-{self.id}-{i}", daemon=True)
                   for i in range(max(1, n_workers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


class Trial:
    """A trial handed to this client: its ``params``, and report / complete / prune / fail.

    Used as a context manager, a TrialPruned inside ends just this trial, and any other
    exception fails it (with its traceback) and propagates.
    """

    def __init__(self, study: Study, data: dict[str, Any]) -> None:
        self.study = study
        self.number: int = int(data["number"])
        self.params: dict[str, Any] = dict(data["params"])
        self.attempt: int = int(data.get("attempt", 1))
        self.retry_of: int | None = data.get("retry_of")
        self.lease_expires_at = _parse_time(data["lease_expires_at"])
        self.should_stop = False
        self.finished = False
        self._path = f"/studies/{study.id}/trials/{self.number}"
        lease_s = (self.lease_expires_at - datetime.now(UTC)).total_seconds()
        self._beat = _Heartbeat(study.tb, self._path + "/heartbeat", max(0.5, lease_s / 3))
        self._beat.start()

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, params={self.params})"

    def __enter__(self) -> Trial:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None:
            return False
        if isinstance(exc, TrialPruned):
            self._tell_once("pruned")
            return True
        self._fail_if_untold(_describe(exc))
        return False

    def report(self, step: int, **metrics: float) -> None:
        """Report the metrics of ``step``; raises TrialPruned (after telling the trial
        ``pruned``) when the study's pruner says stop. ``should_stop`` turns true once the
        study was cancelled or ran out of time."""
        answer = self.study.tb.request("POST", self._path + "/report",
                                       json={"step": int(step), "metrics": metrics})
        self.should_stop = bool(answer["should_stop"])
        if answer["should_prune"]:
            self._tell_once("pruned")
            raise TrialPruned(f"trial {self.number} pruned at step {step}")

    def complete(self, value: float | list[float] | None = None, **metrics: float) -> None:
        """The trial's result: the study metric's value (one per objective), or metrics that
        include it, or both."""
        body: dict[str, Any] = {}
        if value is not None:
            body["values"] = value
        if metrics:
            body["metrics"] = metrics
        self._tell_once("complete", **body)

    def prune(self) -> None:
        self._tell_once("pruned")

    def fail(self, error: str | BaseException | None = None) -> None:
        text = _describe(error) if isinstance(error, BaseException) else error
        self._tell_once("fail", **({"error": text} if text else {}))

    def _complete_with(self, result: float | Mapping[str, float] | None) -> None:
        if result is None:
            self.fail("the objective returned nothing and told nothing")
        elif isinstance(result, Mapping):
            self.complete(**dict(result))
        else:
            self.complete(result)

    def _fail_if_untold(self, error: str) -> None:
        if not self.finished:
            self._tell_once("fail", error=error[:ERROR_MAX_CHARS])

    def _tell_once(self, state: str, **body: Any) -> None:
        if self.finished:
            return
        try:
            self.study.tb.request("POST", self._path + "/tell", json={"state": state, **body})
        except ApiError as err:
            # A tell sent again after its answer was lost finds the trial in that state.
            details = err.details if isinstance(err.details, dict) else {}
            if err.status != 409 or details.get("state") != state:
                raise
        self._beat.stop()
        self.finished = True


class _Heartbeat(threading.Thread):
    """Beats every ``interval_s`` until stopped; a failed beat is logged and tried next time."""

    def __init__(self, tb: Tuneboard, path: str, interval_s: float) -> None:
        super().__init__(daemon=True, name=f"tuneboard-heartbeat{path}")
        self.tb, self.path, self.interval_s = tb, path, interval_s
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval_s):
            try:
                self.tb.request("POST", self.path)
            except ApiError as err:
                if err.status in (404, 409):  # the trial is finished or gone: nothing to keep
                    return
                log.warning("heartbeat %s: %s", self.path, err)
            except ConfigError as err:
                log.warning("heartbeat %s: %s", self.path, err)

    def stop(self) -> None:
        self._halt.set()


def no_delay() -> httpx.HTTPTransport:
    """A transport that sends each request at once. Without TCP_NODELAY a POST (headers, then
    body) waits for the server's delayed ACK: about 40 ms per report on Linux."""
    return httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])


def _load_spec(path: str | Path) -> dict[str, Any]:
    text = Path(path).read_text()
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a study spec must be a mapping")
    return data


def _details_retry_after(err: ApiError) -> float | None:
    details = err.details if isinstance(err.details, dict) else {}
    value = details.get("retry_after_s")
    return float(value) if isinstance(value, int | float) else None


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    text = "".join(traceback.format_exception(exc)).rstrip()
    return text[-ERROR_MAX_CHARS:]
