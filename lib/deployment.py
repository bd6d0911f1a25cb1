"""Moved to :mod:`stackcore.deployment` (the stack core, no Pulumi); re-exported here for old imports."""

from stackcore.deployment import *  # noqa: F403
