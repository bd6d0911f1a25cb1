"""Capacity planning: load-test the model, then size and scale the fleet from the measurement.

``python -m tools.capacity --url URL`` (or ``--model-dir DIR`` to start the local container)
ramps Locust users in steps (in one process, or a master and ``--generators N`` workers), records
throughput, p50/p95/p99 latency, errors and the server's CPU at each step, bisects the knee after
the first step that breaks a limit, stops at a plateau, picks the highest step within the p99
objective, error-free and at or under the CPU target, and turns it into the stack settings for
autoscaling (``stackcore.fleet`` does the arithmetic). The run is saved as JSON and drawn as a PNG.

Modules: ``sizing`` (pure arithmetic), ``ramp`` (pure: limits, knee bisection, plateaus, the
choice of operating point), ``cpu`` (a local server's process-tree CPU), ``cloudwatch`` (a
deployed endpoint's metrics), ``engine`` (the Locust child process, local or master), ``load``
(drives the engine), ``report`` (JSON, PNG), ``stack`` (the stack's keys), ``cli`` (the command).
"""
