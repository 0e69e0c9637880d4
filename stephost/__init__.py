"""Hosts Motia-shaped step files (``*_step.py``): HTTP, event bus, cron, state, dead letters.

Steps import nothing from here; the host passes ``req``/``data`` and a ``context`` in.
"""

from stephost.bus_common import QueueFullError
from stephost.config import ConfigFileError, HostConfig, load_host_config, parse_host_config
from stephost.context import TopicNotDeclaredError
from stephost.discovery import Step, StepConfigError, discover_steps
from stephost.host import StepHost, serve

__all__ = [
    "ConfigFileError",
    "HostConfig",
    "QueueFullError",
    "Step",
    "StepConfigError",
    "StepHost",
    "TopicNotDeclaredError",
    "discover_steps",
    "load_host_config",
    "parse_host_config",
    "serve",
]
