"""Checkpoints on S3 (a local S3 server): a worker is killed after checkpointing, and its trial's
retry resumes from the bucket on a worker of another "host", one with a TUNEBOARD_HOME of its
own, so that no file is shared but the bucket's objects."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests import s3_support
from tests.s3_support import Bucket
from tests.workers.conftest import Stack, Studies, steps_spec, wait_until

s3_endpoint, s3_bucket = s3_support.s3_endpoint, s3_support.s3_bucket  # fixtures


@dataclass
class Host(Stack):
    """A stack whose processes keep checkpoints at ``artifact_url``."""

    artifact_url: str = ""

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "TUNEBOARD_ARTIFACT_URL": self.artifact_url}


def test_a_killed_trial_resumes_from_its_s3_checkpoint_on_another_host(
    own_stack: Stack, client_env: Callable[[Stack], None], studies: Studies, s3_bucket: Bucket,
    tmp_path: Path,
) -> None:
    artifact_url = f"{s3_bucket.url}/checkpoints"
    hosts = {
        name: Host(db_url=own_stack.db_url, broker_url=own_stack.broker_url,
                   home=tmp_path / name, artifact_url=artifact_url)
        for name in ("host-a", "host-b")
    }
    try:
        client_env(hosts["host-a"])
        workers = {name: host.start_worker(name, queues="s3") for name, host in hosts.items()}
        hosts["host-a"].wait_ready(*workers.values(), hosts["host-a"].start_reaper())
        sid = studies.create(steps_spec(n_trials=1, queue="s3", steps=10, sleep_s=0.4))
        running = wait_until(
            lambda: next((t for t in studies.trials(sid) if t.state == "running"), None),
            timeout=60, message="the trial to start",
        )
        assert running.checkpoint_path == f"{artifact_url}/{sid}/{running.number}"
        # A checkpoint is written after its step's reports commit, so the bucket is what says
        # how far a retry can resume from.
        key = f"checkpoints/{sid}/{running.number}/latest.pt"

        def saved_step() -> int | None:
            stored = s3_bucket.keys()
            step = json.loads(s3_bucket.get(key))["step"] if key in stored else 0
            return step if step >= 3 else None

        wait_until(saved_step, timeout=60, message="the trial's checkpoint of step 3")
        victim = (running.worker or "").split("@")[0]
        workers[victim].kill(signal.SIGKILL)

        assert studies.wait_finished(sid, own_stack, timeout=90).state == "completed"
        lost, retry = studies.trials(sid)
        assert lost.state == "fail" and retry.state == "complete" and retry.origin == "retry"
        assert retry.checkpoint_path == lost.checkpoint_path
        assert retry.worker is not None and not retry.worker.startswith(victim)
        metrics = studies.metrics(retry.id)
        assert sorted(metrics) == list(range(1, 11))
        resumed_at = metrics[10]["resumed_at"]
        assert resumed_at is not None and resumed_at >= 4, "the retry started over"

        assert s3_bucket.keys() == [key]
        assert json.loads(s3_bucket.get(key)) == {"step": 10}
        # Neither host kept a checkpoint file of its own: the victim's is in the bucket only.
        assert not list((tmp_path / victim).rglob("latest.pt"))
    finally:
        for host in hosts.values():
            host.stop_all()
