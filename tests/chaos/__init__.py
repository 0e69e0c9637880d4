"""Randomized convergence workload over the testbed: people edit both systems, the network misbehaves.

One seeded :class:`random.Random` drives everything, so a failing seed replays the same workload (the
service's own timing is not seeded: which sync runs first under load may differ between runs).

Per round:
- people create EspoCRM records (``espo.seed``), edit mapped and unmapped fields on either side
  (``espo.user_edit``; ``advo.edit`` only on linked records), sometimes the same field on both sides
  in one round (a conflict), sometimes clear a field or delete a record in EspoCRM;
- random API faults on both simulators (500, 503, 429 with a small ``Retry-After``, a few answers
  delayed past the client's timeout that are still applied, expired Advoware tokens);
- EspoCRM's webhook queue is taken over (:class:`WebhookChaos`): every queued event is re-batched,
  signed with the subscription's real secret like EspoCRM does, and POSTed to the service's webhook
  URLs by us: batches are lost, duplicated, shuffled, held back to a later round, and sent several
  at a time, while people keep editing and (sometimes) a sync check runs;
- after the round settles, every pair that agrees and is ``clean`` is a *convergence point* for the
  model: the expectations of later rounds start from its values.

At the end the faults stop, leftovers are delivered (with loss), the clock moves 10 hours (retries
due), ONE sync check runs, and :meth:`ChaosRun.verify` checks every record against the model
(:func:`allowed_values`); a second sync check must write nothing.

Modules: ``contract`` (the model's copy of the field table), ``config`` (what a run does and did),
``model`` (expected values), ``people`` (the edits), ``webhooks`` (mangled delivery), ``report`` (the
end state against the model), ``run`` (rounds, faults, the whole run).
"""

from tests.chaos.config import ChaosConfig, ChaosStats
from tests.chaos.model import RecordModel, allowed_values
from tests.chaos.report import ChaosReport
from tests.chaos.run import ChaosRun

__all__ = ["ChaosConfig", "ChaosReport", "ChaosRun", "ChaosStats", "RecordModel", "allowed_values"]
