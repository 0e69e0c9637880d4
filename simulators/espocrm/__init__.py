"""EspoCRM simulator (spec §1): REST API, outgoing webhooks, fault injection, 8.x/9.x profiles."""

from simulators.espocrm.fields import GERMAN_SALUTATIONS, STOCK_SALUTATIONS
from simulators.espocrm.profiles import Profile
from simulators.espocrm.simulator import EspoCRMSimulator
from simulators.espocrm.webhooks import DeliveryResult

__all__ = ["GERMAN_SALUTATIONS", "STOCK_SALUTATIONS", "DeliveryResult", "EspoCRMSimulator", "Profile"]
