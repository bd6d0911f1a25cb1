"""The fleet simulator: a stack played through hours of traffic and failures before it is deployed.

``make simulate STACK=prod ARGS="..."`` runs :mod:`tools.simulate.cli`; docs/simulator.md describes
the model and the source of every constant.
"""
