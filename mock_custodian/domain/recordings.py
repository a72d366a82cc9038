"""Replayed meter data in the database: each recording stored once, decoded once per process.

A recorded SA's profile names its recording by content digest; :func:`attach_recording` gives the data
engine the decoded channels. Recordings never change under a digest, so a small per-process cache is
always right, and requests after the first do not touch the blobs at all.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from mock_custodian.store.models import RecordedChannel, ServiceAgreement
from mock_custodian.synth.config import ServiceAgreementModel
from mock_custodian.synth.recorded import Channel, Recording

_CACHE: OrderedDict[str, Recording] = OrderedDict()
_CACHE_SIZE = 16
_LOCK = threading.Lock()


def save_recording(db: Session, recording: Recording) -> None:
    """Store every channel of ``recording`` once (a digest already stored is left as it is)."""
    if db.execute(select(RecordedChannel.id).where(RecordedChannel.digest == recording.digest).limit(1)).first():
        return
    rows = [
        {"digest": recording.digest, "meter": ch.meter, "flow_direction": ch.flow_direction,
         "interval_length": ch.interval_length, "readings": len(ch), "data": ch.encode()}
        for ch in recording.channels.values()
    ]
    db.execute(insert(RecordedChannel), rows)


def load_recording(db: Session, digest: str) -> Recording:
    """The decoded recording named ``digest`` (from the process cache when seen before)."""
    with _LOCK:
        found = _CACHE.get(digest)
        if found is not None:
            _CACHE.move_to_end(digest)
            return found
    blobs = db.execute(select(RecordedChannel.data).where(RecordedChannel.digest == digest)).scalars().all()
    if not blobs:
        raise LookupError(f"recording {digest} is not in the database (reload the scenario)")
    channels = {(ch.meter, ch.flow_direction): ch for ch in map(Channel.decode, blobs)}
    recording = Recording(digest, channels)
    with _LOCK:
        _CACHE[digest] = recording
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return recording


def attach_recording(db: Session | None, model: ServiceAgreementModel) -> ServiceAgreementModel:
    """The model with its recording attached when it replays one; any other model unchanged."""
    if model.recording is None or model.recorded is not None or db is None:
        return model
    return replace(model, recorded=load_recording(db, model.recording))


def service_agreement_model(db: Session | None, sa: ServiceAgreement) -> ServiceAgreementModel:
    """The data engine's model of a stored SA, ready to compute or replay its values."""
    return attach_recording(db, ServiceAgreementModel.from_dict(sa.profile))
