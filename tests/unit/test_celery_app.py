"""The Celery plumbing operators rely on: stable task names, every periodic job pointing at a
registered task, and tasks that survive a killed worker."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from portal.celery import app
from uploads import tasks

ROOT = Path(__file__).resolve().parents[2]


def test_every_periodic_job_runs_a_registered_task(settings: Any) -> None:
    app.loader.import_default_modules()
    scheduled = {job["task"] for job in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled == {"uploads.outbox.relay", "uploads.sweep.expire"}
    assert scheduled <= set(app.tasks)


def test_the_mirror_pull_is_scheduled_only_when_the_mirror_is_on(tmp_path: Path) -> None:
    def schedule(**env: str) -> dict[str, Any]:
        code = "import json, portal.settings as s; print(json.dumps(s.CELERY_BEAT_SCHEDULE))"
        base = {"PATH": os.environ["PATH"], "PORTAL_DATA_DIR": str(tmp_path)}
        out = subprocess.run(
            [sys.executable, "-c", code], env=base | env, cwd=ROOT, capture_output=True, text=True, check=True
        )
        jobs: dict[str, Any] = json.loads(out.stdout)
        return jobs

    assert "mirror-pull" not in schedule()
    job = schedule(DYNAMODB_CATALOG_TABLE="Catalog", DYNAMODB_PULL_INTERVAL_SECONDS="7")["mirror-pull"]
    assert job == {"task": "uploads.mirror.pull", "schedule": 7}
    assert job["task"] in app.tasks


def test_tasks_have_stable_names_late_acks_and_bounded_retries() -> None:
    names = {
        tasks.deliver_outbox_message.name: "uploads.outbox.deliver",
        tasks.relay_outbox.name: "uploads.outbox.relay",
        tasks.sweep_expired_uploads.name: "uploads.sweep.expire",
        tasks.pull_mirror.name: "uploads.mirror.pull",
    }
    assert list(names) == list(names.values())
    for task in (tasks.deliver_outbox_message, tasks.relay_outbox, tasks.sweep_expired_uploads, tasks.pull_mirror):
        assert task.acks_late and task.reject_on_worker_lost
        assert task.max_retries is not None and task.max_retries <= 10
        assert task.retry_jitter


def test_the_embedded_broker_is_a_directory_under_the_data_dir(tmp_path: Path) -> None:
    """The defaults, read in a fresh interpreter with no broker configured: no server needed."""
    env = {"PATH": os.environ["PATH"], "PORTAL_DATA_DIR": str(tmp_path)}
    code = (
        "import json, portal.settings as s; print(json.dumps([s.CELERY_BROKER_URL, s.CELERY_BROKER_TRANSPORT_OPTIONS]))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    url, options = json.loads(out.stdout)
    assert url == "filesystem://"
    assert options["data_folder_in"] == options["data_folder_out"] == str(tmp_path / "broker")
    assert options["control_folder"] == str(tmp_path / "broker" / "control")
    assert (tmp_path / "broker" / "processed").is_dir()
