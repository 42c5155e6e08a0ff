"""Joining a Ray cluster, with an error that says how to get Ray when it is missing.

Two of Ray's start-up messages read like failures of the run and are kept off the terminal:
the notice that a new local cluster uses token authentication (Ray's default, unchanged),
and an error-level line of the driver's C++ core worker that Ray Data's actors keep their
constructor arguments in the object store while allowing restarts (how Ray Data always
starts them; restarts are what retries a dead actor's batch). The C++ line can only be
silenced by level: ``RAY_BACKEND_LOG_LEVEL`` is ``fatal`` for the processes this call
starts unless the user sets it (docs/cluster.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from salplug.errors import SalplugError


BACKEND_LOG_LEVEL = "RAY_BACKEND_LOG_LEVEL"
AUTH_NOTICE = "ray._private.authentication.authentication_token_setup"


class EngineError(SalplugError):
    """A distributed engine that cannot start: Ray missing, or no cluster at the address."""


def require_ray():
    """The `ray` module, or an error naming the extra that installs it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the Data library is a separate extra of ray)
    except ImportError as err:
        raise EngineError(
            f"--engine ray: expected Ray Data to be installed, got {err}; install it with pip install 'salplug[ray]'"
        ) from None
    return ray


def connect(address: str | None) -> None:
    """Join the cluster at `address` (``auto``, ``HOST:PORT``), or start a local one when None.

    A process already connected (a test's cluster, a notebook's `ray.init`) keeps its
    connection, so callers can set the cluster up themselves.
    """
    ray = require_ray()
    if ray.is_initialized():
        return
    # "local" starts a fresh cluster: without it, ray.init joins whatever cluster file an earlier
    # run left in /tmp/ray, even a stopped one.
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    logging.getLogger(AUTH_NOTICE).setLevel(logging.ERROR)
    try:
        with _backend_log_level("fatal"):
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except ConnectionError as err:
        raise EngineError(f"--address {address}: expected a running Ray cluster there, got {err}") from None


@contextlib.contextmanager
def _backend_log_level(level: str) -> Iterator[None]:
    """`level` for the C++ logs of the processes `ray.init` starts, unless ``RAY_BACKEND_LOG_LEVEL`` is set."""
    if BACKEND_LOG_LEVEL in os.environ:
        yield
        return
    os.environ[BACKEND_LOG_LEVEL] = level
    try:
        yield
    finally:
        del os.environ[BACKEND_LOG_LEVEL]


def quiet_data_context() -> None:
    """salplug prints its own progress bar and report; Ray Data's bars would interleave with them."""
    ray = require_ray()
    context = ray.data.DataContext.get_current()
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context.enable_progress_bars = False
    context.print_on_execution_start = False
