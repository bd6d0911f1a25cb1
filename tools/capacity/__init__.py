"""Capacity planning: load-test the model, then size and scale the fleet from the measurement.

``python -m tools.capacity --url URL`` (or ``--model-dir DIR`` to start the local container)
ramps Locust users in steps, records throughput, p50/p95/p99 latency and errors at each step,
picks the highest throughput that keeps p99 under the objective with no errors, and turns it
into the stack settings for autoscaling (``stackcore.fleet`` does the arithmetic). The run is saved
as JSON and drawn as a PNG.

Modules: ``sizing`` (pure arithmetic and the choice of operating point), ``engine`` (the Locust
child process), ``load`` (drives the engine), ``report`` (JSON, PNG, stack settings text),
``cli`` (the command).
"""
