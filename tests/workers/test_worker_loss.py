"""A worker killed with SIGKILL in the middle of a trial: the reaper fails the trial and its
retry resumes from the checkpoint on the surviving worker. The test starts (and kills) its own
Celery processes."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

from tests.workers.conftest import Stack, Studies, steps_spec, wait_until


def test_a_killed_worker_s_trial_is_retried_and_resumes_from_its_checkpoint(
    own_stack: Stack, client_env: Callable[[Stack], None], studies: Studies
) -> None:
    client_env(own_stack)
    workers = {name: own_stack.start_worker(name, queues="kill") for name in ("ka", "kb")}
    own_stack.wait_ready(*workers.values(), own_stack.start_reaper())
    sid = studies.create(steps_spec(n_trials=1, queue="kill", steps=12, sleep_s=0.4))
    running = wait_until(
        lambda: next((t for t in studies.trials(sid) if t.state == "running"), None),
        timeout=60, message="the trial to start",
    )
    # A checkpoint is written after its step's reports commit, so the file is what says how
    # far a retry can resume from.
    checkpoint = Path(running.checkpoint_path or "") / "latest.pt"

    def saved_step() -> int | None:
        try:
            step = int(json.loads(checkpoint.read_text())["step"])
        except (OSError, ValueError):  # not written yet, or being replaced
            return None
        return step if step >= 3 else None

    wait_until(saved_step, timeout=60, message="the trial's checkpoint of step 3")
    victim = (running.worker or "").split("@")[0]
    workers[victim].kill(signal.SIGKILL)

    assert studies.wait_finished(sid, own_stack, timeout=90).state == "completed"
    lost, retry = studies.trials(sid)
    assert lost.state == "fail" and (lost.error or "").startswith("worker lost: no heartbeat for")
    assert f"(worker {running.worker})" in (lost.error or "")
    assert retry.state == "complete" and retry.origin == "retry"
    assert (retry.attempt, retry.retry_of, retry.seed) == (2, lost.number, lost.seed)
    assert retry.params == lost.params and retry.worker is not None
    assert not retry.worker.startswith(victim)
    metrics = studies.metrics(retry.id)
    assert sorted(metrics) == list(range(1, 13))
    resumed_at = metrics[12]["resumed_at"]
    assert resumed_at is not None and resumed_at >= 4
