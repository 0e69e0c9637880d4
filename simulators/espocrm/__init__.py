"""EspoCRM simulator (spec §1): REST API, outgoing webhooks, fault injection."""

from simulators.espocrm.simulator import EspoCRMSimulator
from simulators.espocrm.webhooks import DeliveryResult

__all__ = ["DeliveryResult", "EspoCRMSimulator"]
