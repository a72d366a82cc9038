"""The job worker loop: daily schedule, due builds, due notification rounds, clean-up; forever.

Runs as the process ``mock-custodian serve`` keeps next to gunicorn (``jobs.supervisor``) or as
``mock-custodian worker``; any number may share one database. Each piece of work is claimed one at
a time with a lease, so a slow receiver never leaves other claimed work waiting past its lease.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from types import FrameType

from sqlalchemy.exc import OperationalError

from mock_custodian.domain.lifecycle import apply_due_events, pending_events
from mock_custodian.jobs.build import BUILD_LEASE_S, build_package, fail_package, gc_packages
from mock_custodian.jobs.claims import claim_due_notifications, claim_due_packages
from mock_custodian.jobs.config import WorkerConfig
from mock_custodian.jobs.daily import schedule_daily
from mock_custodian.jobs.delivery import Sender, deliver, lease_seconds
from mock_custodian.settings import Settings
from mock_custodian.store.db import Database
from mock_custodian.store.models import AsyncJob, Notification
from mock_custodian.vocabulary import RESOURCE_PREFIX

log = logging.getLogger("mock_custodian.jobs")

POLL_S = 0.25  # real seconds between looks at the database when there was nothing to do
GC_EVERY_S = 60.0
MAX_PER_TICK = 50


class JobWorker:
    """One worker process's view: its lease owner name, its HTTPS client, its settings."""

    def __init__(self, settings: Settings, *, database: Database | None = None, api_base_url: str | None = None,
                 parent_pid: int | None = None) -> None:
        self.database = database or Database(settings.resolved_database_url())
        self.config = WorkerConfig.from_settings(settings, api_base_url)
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.sender = Sender(self.config)
        self._pool_size = max(1, int(settings.notify_concurrency))
        self._pool = ThreadPoolExecutor(self._pool_size, thread_name_prefix="notify")
        self._inflight: dict[int, Future] = {}
        self._senders = threading.local()
        self.parent_pid = parent_pid
        self.stopping = threading.Event()
        self._last_gc = 0.0

    def tick(self) -> int:
        """Do everything due now; returns how many pieces of work were done (0: idle)."""
        done = 0
        try:
            done += self._apply_account_events()
        except Exception:
            log.exception("applying scheduled account events failed")
        try:
            done += schedule_daily(self.database, self.config)
        except OperationalError as exc:
            log.info("daily package schedule failed: %s", str(exc).splitlines()[0])
        except Exception:
            log.exception("daily package schedule failed")
        done += self._run_jobs()
        done += self._run_notifications()
        if time.monotonic() - self._last_gc > GC_EVERY_S:
            self._last_gc = time.monotonic()
            try:
                gc_packages(self.database, self.config.packages_dir, self.config.package_ttl_days)
            except Exception:
                log.exception("package clean-up failed")
        return done

    def _apply_account_events(self) -> int:
        """Timeline events (move-out, ...) take effect when the clock reaches them, requests or not, so
        their notifications go out without waiting for the next API call."""
        now = self.database.clock().epoch()
        with self.database.session() as db:
            if not pending_events(db, now):
                return 0
            return len(apply_due_events(db, now, f"{self.config.api_base_url}{RESOURCE_PREFIX}"))

    def _claim(self, claim, lease_s: float) -> int | None:  # noqa: ANN001
        clock = self.database.clock()
        try:
            with self.database.session() as db:
                taken = claim(db, self.owner, clock.epoch(), clock.real_epoch(), lease_s, 1)
        except OperationalError as exc:  # e.g. the world being reloaded (tables recreated): next tick
            log.info("claiming work failed: %s", str(exc).splitlines()[0])
            return None
        except Exception:
            log.exception("claiming work failed")
            return None
        return taken[0] if taken else None

    def _run_jobs(self) -> int:
        done = 0
        while done < MAX_PER_TICK and not self.stopping.is_set():
            package_id = self._claim(claim_due_packages, BUILD_LEASE_S)
            if package_id is None:
                break
            try:
                build_package(self.database, package_id, self.owner, self.config.packages_dir)
            except Exception as exc:
                log.exception("building package %s failed", package_id)
                try:
                    fail_package(self.database, package_id, self.owner, f"{type(exc).__name__}: {exc}")
                except Exception:
                    log.exception("could not record the failure of package %s", package_id)
            done += 1
        return done

    def _run_notifications(self) -> int:
        """Hand due notifications to the delivery pool: a hanging receiver holds one thread, not the others.

        A notification is claimed only while no other of its third party is in flight and none older is
        due (``claim_due_notifications``), so each destination still receives its POSTs in order.
        """
        self._reap()
        lease_s = lease_seconds(self.config)
        started = 0
        while len(self._inflight) < self._pool_size and not self.stopping.is_set():
            note_id = self._claim(claim_due_notifications, lease_s)
            if note_id is None:
                break
            self._inflight[note_id] = self._pool.submit(self._deliver, note_id)
            started += 1
        return started

    def _deliver(self, note_id: int) -> None:
        sender = getattr(self._senders, "sender", None)
        if sender is None:
            sender = self._senders.sender = Sender(self.config)
        try:
            deliver(self.database, note_id, self.owner, sender, self.config)
        except Exception:
            log.exception("delivering notification %s failed; its lease will run out and it is retried", note_id)

    def _reap(self) -> int:
        finished = [note_id for note_id, future in self._inflight.items() if future.done()]
        for note_id in finished:
            del self._inflight[note_id]
        return len(finished)

    def drain(self, timeout: float | None = None) -> int:
        """Wait for the notifications in flight (``worker --once``); how many finished."""
        wait(list(self._inflight.values()), timeout=timeout)
        return self._reap()

    def run(self) -> None:
        """Loop until SIGTERM/SIGINT, or until the parent (the gunicorn arbiter) is gone."""
        self._install_signals()
        log.info("job worker %s started", self.owner)
        while not self.stopping.is_set():
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                log.info("job worker %s: parent %s is gone; stopping", self.owner, self.parent_pid)
                break
            try:
                busy = self.tick()
            except Exception:
                log.exception("job worker tick failed")
                busy = 0
            if not busy:
                self.stopping.wait(POLL_S)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.sender.close()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def stop(_signum: int, _frame: FrameType | None) -> None:
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)


def owed(database: Database) -> dict[str, int]:
    """How much work is left: pending jobs and notifications still waiting or pending."""
    with database.session() as db:
        jobs = db.query(AsyncJob).filter(AsyncJob.status == "pending").count()
        notes = db.query(Notification).filter(Notification.status.in_(("waiting", "pending"))).count()
    return {"jobs": jobs, "notifications": notes}
