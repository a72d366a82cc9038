"""Durable asynchronous work of the data custodian (spec 6.4-6.6): packages and notification POSTs.

Every job and notification is a database row (``store.models``: ``AsyncJob``, ``Package``,
``Notification``, ``DailyPackageSchedule``), so a 202 answered before a crash is still delivered
after it. Any number of worker processes share the rows; each piece of work is claimed with a lease
(a conditional UPDATE on SQLite, ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL), so none is
done twice. Business time (due times, retries, daily packages, expiry) is the simulated clock;
leases are real time, because they guard against dead processes, not against business rules.

Modules: ``config`` (settings, checked), ``claims`` (leases), ``build`` (packages to files),
``delivery`` (HTTPS POST with the data custodian's client certificate), ``daily`` (daily packages),
``worker`` (the loop), ``supervisor`` (the process ``mock-custodian serve`` keeps running), ``cli``.
"""
