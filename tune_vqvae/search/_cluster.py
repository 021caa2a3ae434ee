"""The Ray cluster a search runs on: an existing one (--address) or a private local one."""

from __future__ import annotations

import socket

import ray

from ..errors import UserError
from . import _compat, _reaper


def check_address(address: str) -> None:
    """An unreachable --address is a UserError now, not a hang or a traceback later."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    try:
        port_n = int(port)
        if not host:
            raise ValueError
    except ValueError:
        raise UserError(f"--address {address!r}: expected host:port (e.g. 10.0.0.1:6379) or auto") from None
    try:
        with socket.create_connection((host or "127.0.0.1", port_n), timeout=5):
            pass
    except OSError as e:
        raise UserError(f"--address {address}: cannot reach the Ray cluster ({e.strerror or e}); "
                        "check `ray status` on the head node, or drop --address for a local cluster"
                        ) from None


def connect(address: str | None, num_cpus: int | None, env: dict[str, str] | None = None) -> bool:
    """Connect to the cluster (its --address checked already by `check_address`), or start a
    local one; `env`: environment variables of every worker of the search (Ray's runtime_env).
    Returns whether we started Ray (and so must shut it down)."""
    if ray.is_initialized():
        return False
    _compat.leave_sigterm_to_python()
    runtime_env = {"env_vars": env} if env else None
    if address:
        try:
            ray.init(address=address, logging_level="WARNING", runtime_env=runtime_env)
        except (ConnectionError, RuntimeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"--address {address}: cannot connect to Ray ({first}); "
                            f"is `ray start --head` running there?") from None
        return True
    # A private local cluster: every process listens on 127.0.0.1 only (init_local_ray), so
    # Ray's token authentication is off unless the user's environment asks for it.
    _compat.set_env_defaults(_compat.LOCAL_AUTH_ENV)
    _reaper.start()  # before Ray starts its processes: none outlives this driver
    _compat.init_local_ray(num_cpus, runtime_env)
    return True


# Two trials share a GPU by default: on an H200 two packed trials train 79,700 img/s in total
# vs 64,400 for one (compiled); four add 2% more (benchmarks/README.md, 2026-11-26).
GPUS_PER_TRIAL = 0.5


def trial_resources(cpus: float, gpus: float | None, mock: bool, local: bool) -> tuple[float, float]:
    """(CPUs, GPUs) per trial: GPUs default to GPUS_PER_TRIAL where the cluster has any. A local
    cluster cannot grow, so a trial that does not fit it would wait forever: a UserError instead."""
    resources = ray.cluster_resources()
    if gpus is None:
        gpus = GPUS_PER_TRIAL if resources.get("GPU", 0) > 0 and not mock else 0.0
    if local:
        for kind, need in (("CPU", cpus), ("GPU", gpus)):
            if need > resources.get(kind, 0):
                raise UserError(f"a trial needs {need:g} {kind} but this machine has "
                                f"{resources.get(kind, 0):g}; lower --{kind.lower()}s-per-trial")
    return cpus, gpus
