"""The job worker process ``mock-custodian serve`` runs next to the gunicorn arbiter.

gunicorn workers stay plain request handlers; background work happens in one separate process
(``mock-custodian worker --parent-pid``), started once the listeners are bound (so the public base
URLs are known), restarted if it dies, and stopped with the server. It exits by itself when the
arbiter disappears (even after ``kill -9``), and all its state is in the database.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

from mock_custodian.settings import ENV_PREFIX, Settings

log = logging.getLogger("mock_custodian.jobs")

RESTART_BACKOFF_S = (0.5, 2.0, 5.0, 15.0, 30.0)
QUICK_DEATH_S = 5.0


def settings_environment(settings: Settings) -> dict[str, str]:
    """The process environment that gives a child process exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list | tuple):
            text = ",".join(str(v) for v in value)
        else:
            text = str(value)
        env[ENV_PREFIX + f.name.upper()] = text
    env[ENV_PREFIX + "API_BASE_URL"] = settings.resolved_api_base_url()
    env[ENV_PREFIX + "PORTAL_BASE_URL"] = settings.resolved_portal_base_url()
    return env


class JobWorkerProcess:
    """Keeps one ``mock-custodian worker`` child alive; call :meth:`ensure_running` periodically."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.quick_deaths = 0
        self.next_start = 0.0
        self.stopped = False

    def command(self) -> list[str]:
        return [sys.executable, "-m", "mock_custodian", "worker", "--parent-pid", str(os.getpid()),
                "--data-dir", str(Path(self.settings.resolved_data_dir()))]

    def ensure_running(self) -> None:
        """Start the worker, or restart it (with a back-off when it keeps dying at start)."""
        if self.stopped:
            return
        if self.process is not None and self.process.poll() is None:
            return
        now = time.monotonic()
        if self.process is not None:
            lived = now - self.started_at
            self.quick_deaths = self.quick_deaths + 1 if lived < QUICK_DEATH_S else 0
            log.warning("job worker (pid %s) exited with %s after %.1fs; restarting", self.process.pid,
                        self.process.returncode, lived)
            self.process = None
            delay = RESTART_BACKOFF_S[min(self.quick_deaths, len(RESTART_BACKOFF_S) - 1)]
            self.next_start = now + delay
        if now < self.next_start:
            return
        self.process = subprocess.Popen(self.command(), env=settings_environment(self.settings))
        self.started_at = now

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it does not finish its current piece of work in time."""
        self.stopped = True
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


class JobWorkerPool:
    """``job_worker_processes`` workers kept alive together (same interface as :class:`JobWorkerProcess`).

    Every package and notification is claimed with a lease, so the processes share work without
    coordination; a large request's packages build side by side.
    """

    def __init__(self, settings: Settings) -> None:
        self.workers = [JobWorkerProcess(settings) for _ in range(max(1, int(settings.job_worker_processes)))]

    def ensure_running(self) -> None:
        for worker in self.workers:
            worker.ensure_running()

    def stop(self, timeout: float = 5.0) -> None:
        for worker in self.workers:
            worker.stopped = True
            if worker.process is not None and worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            worker.stop(timeout)
