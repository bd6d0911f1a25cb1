"""The CrossGuard entry point: ``pulumi preview --policy-pack policies``.

The only module that constructs ``PolicyPack`` (which starts the analyzer's gRPC server and
never returns), so nothing imports it; tests read it with ``ast``. The CLI runs it with
``policies/`` as the working directory: the repository root goes on ``sys.path`` first so that
``stackcore.fleet`` and ``policies.*`` import the same way as in the tests and the offline plan.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.catalog import ALL_POLICIES, PACK_NAME

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=list(ALL_POLICIES),
    description="Guardrails for an XGBoost model on a SageMaker real-time endpoint behind API Gateway.",
)
