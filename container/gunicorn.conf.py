"""Gunicorn settings for the inference server (``gunicorn --config container/gunicorn.conf.py``).

Every value derives from the environment through ``xgbserve.settings``; each non-default choice
says why. The worker class is the server's own, ``xgbserve.worker.HealthFirstWorker``: its event
loop does all network I/O and answers ``/ping`` itself, and a pool of threads only runs the app
(see that module). It replaced Gunicorn's ``gthread`` after measuring both on a CPU-starved
instance (``python -m bench.bench_starved``; docs/serving.md): ``gthread`` hands every
connection to a thread that then reads the request, so a ping waited behind every queued
connection (at 0.4 CPU and 1,024 clients, 3 of 7 pings missed SageMaker's 2 s, p99 1.9 s) and a
client sending a byte at a time held a thread; with this worker no ping missed, p99 under 250 ms.

Before that, ``gthread`` had been chosen over ``sync`` (one request per process, no keep-alive:
a ping waits in the listen queue behind queued predicts; single-record throughput 1-9% lower in
three side-by-side runs) and over ``gevent``, the built-in container's (it switches only at I/O,
so a CPU-bound predict stalls every other request of its worker, pings included).
"""

import os
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))

from xgbserve.settings import (  # noqa: E402  (the package lives next to this file)
    WORKER_CLASS,
    Settings,
    hide_scikit_learn,
    limit_library_threads,
)

_settings = Settings.from_env()
_cores = os.cpu_count() or 1

wsgi_app = "xgbserve.app:make_wsgi_app()"
pythonpath = str(_HERE)
bind = [f"{_settings.bind_host}:{_settings.port}"]

# SAGEMAKER_MODEL_SERVER_WORKERS, default 2 * cores + 1 (Gunicorn's guidance, AWS's containers).
workers = _settings.workers
# See the module docstring; overridable only to re-run the measurement.
worker_class = os.environ.get(WORKER_CLASS, "xgbserve.worker.HealthFirstWorker")
# Threads per worker, which only run the app (the loop reads and answers pings): enough for the
# requests in flight together to share one XGBoost call (xgbserve.batching). Only
# SERVER_PREDICT_CONCURRENCY (default 1) of them parse and encode at a time (see xgbserve.app).
threads = _settings.threads

# XGBoost threads per worker so that workers * nthread <= cores, set before XGBoost is imported
# and before fork so every worker inherits it (`serve` has set them already; this is for a master
# started without it).
_nthread = limit_library_threads(workers, _cores)

# SAGEMAKER_MODEL_SERVER_TIMEOUT (default 60 s, InvokeEndpoint's own limit). With this worker it is
# how long a worker's main loop may go silent before the master restarts it (a hung process); a
# single slow request on a pool thread does not trip it. The largest request (6 MB) takes well
# under a second here, and SageMaker itself abandons a request after 60 s.
timeout = _settings.timeout
# SageMaker sends SIGKILL 30 s after SIGTERM: in-flight requests get 20 s to finish, which leaves
# the master time to reap workers and exit on its own.
graceful_timeout = 20
# Longer than the 60 s idle timeout of typical load balancers, so the client side closes idle
# connections, never the server just as a request is sent on one.
keepalive = 75

# The model is loaded in each worker after fork: XGBoost's OpenMP runtime does not survive a
# fork once a parallel region has run, and the model is small (a few MB per worker).
preload_app = False
# The libraries, though, are imported here in the master, before fork (importing XGBoost starts
# no OpenMP threads): workers then boot in about 0.1 s instead of each spending about a second of
# CPU importing XGBoost at the same time, which is most of a cold start on 2 cores; and the
# imported code is shared copy-on-write between workers.
#
# The model is loaded and checked once, in a forked child, before any worker exists: a corrupt
# file stops the server in on_starting with the reason and exit code 3, instead of crashing every
# worker at boot while the master respawns them for ever (see xgbserve.preflight). `serve` starts
# that child before it even imports Gunicorn, so that the model loads while the master imports the
# web stack (on 2 cores a cold start's critical path loses the load); reading this file forks
# nothing (`gunicorn --check-config`, a HUP), and a master started without `serve` checks the
# model in on_starting. The workers load the model the child checked.
hide_scikit_learn()
import xgbserve.app  # noqa: E402, F401
from xgbserve.preflight import ModelCheckError, check_model  # noqa: E402

MODEL_CHECK_FAILED = 3


def on_starting(server: object) -> None:
    del server
    try:
        check_model(_settings.model_dir, nthread=_nthread)
    except ModelCheckError as error:
        print(f"serve: the model does not load: {error}", file=sys.stderr, flush=True)
        sys.exit(MODEL_CHECK_FAILED)


# Gunicorn 27 opens a control socket at a fixed path by default: two servers on one machine
# delete each other's. Nothing here uses it.
control_socket_disable = True

# Worker heartbeat files on tmpfs: on a container's overlay filesystem a slow disk can make a
# healthy worker look hung and get it killed.
_SHM = "/dev/shm"  # noqa: S108  (Gunicorn's documented choice; only heartbeat files, no data)
worker_tmp_dir = _SHM if Path(_SHM).is_dir() else None

# The app writes its own structured access log (one JSON line a request); Gunicorn's would
# duplicate it in another format.
accesslog = None
errorlog = "-"
loglevel = "info"
