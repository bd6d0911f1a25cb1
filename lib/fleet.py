"""Moved to :mod:`stackcore.fleet` (the stack core, no Pulumi); re-exported here for old imports."""

from stackcore.fleet import *  # noqa: F403
