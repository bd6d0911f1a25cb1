"""Everything one simulated run takes, in one object both engines accept."""

from __future__ import annotations

from dataclasses import dataclass, field

from tools.simulate.constants import DEFAULTS, Constants
from tools.simulate.control import FailureEvent
from tools.simulate.scenario import FleetSpec, client_timeout_s
from tools.simulate.service import ServiceModel
from tools.simulate.traffic import Traffic


@dataclass(frozen=True, kw_only=True)
class SimulationInput:
    spec: FleetSpec
    service: ServiceModel
    traffic: Traffic
    constants: Constants = DEFAULTS
    failures: tuple[FailureEvent, ...] = ()
    seed: int = 0
    initial_credits: tuple[float, ...] = field(default_factory=tuple)
    """Starting CPU-credit balance of each initial instance (burstable types); empty = launch credits."""

    @property
    def client_timeout_s(self) -> int:
        c = self.constants
        return int(
            client_timeout_s(self.spec, c["sagemaker_invocation_timeout_s"], c["api_gateway_timeout_s"])
        )

    @property
    def sagemaker_timeout_s(self) -> int:
        return int(self.constants["sagemaker_invocation_timeout_s"])

    @property
    def total_seconds(self) -> int:
        """The traffic, then long enough for every request still queued to be served or time out."""
        return self.traffic.seconds + max(self.client_timeout_s, self.sagemaker_timeout_s) + 2
