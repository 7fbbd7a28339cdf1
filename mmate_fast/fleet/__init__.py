"""Worker fleets: ``mmate run module:attr --workers N`` runs N processes of a service and keeps them
running (restart with backoff, graceful drain on SIGTERM/SIGINT, ``--reload``, ``--autoscale``,
per-worker health). The supervisor is :class:`Supervisor` (``_supervisor.py``), a worker is
``python -m mmate_fast.fleet`` (``_worker.py``), the autoscaler's decision is
:class:`Scaler` (``_scaler.py``). See README "Worker fleets".
"""
from __future__ import annotations

from mmate_fast.fleet._scaler import Sample, ScalePolicy, Scaler, parse_bounds
from mmate_fast.fleet._supervisor import FleetOptions, RestartPolicy, Supervisor, run_fleet
from mmate_fast.fleet._target import load_target, make_client, parse_target
from mmate_fast.fleet._worker import SLOT_ENV

__all__ = ["SLOT_ENV", "FleetOptions", "RestartPolicy", "Sample", "ScalePolicy", "Scaler", "Supervisor",
           "load_target", "make_client", "parse_bounds", "parse_target", "run_fleet"]
