"""In-memory fakes of both API clients (test tooling, not shipped): the same public methods as
``adapters.espocrm_api.EspoCRMAPI`` and ``adapters.advoware_api.AdvowareAPI``, served from the
simulators' state without HTTP. ``tests/test_client_contract.py`` proves they behave like the HTTP
clients against the simulators; ``tests/fakes/fast_bed.py`` builds a whole installation on them."""

from tests.fakes.advoware import FakeAdvoware
from tests.fakes.espocrm import FakeEspoCRM

__all__ = ["FakeAdvoware", "FakeEspoCRM"]
