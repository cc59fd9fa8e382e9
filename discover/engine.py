"""Where the work runs: the local engine (this machine's processes) or a Ray cluster.

Stages ask for an ordered map of independent jobs (one per existing category, one per
batch of products) and never touch Ray themselves, so both engines give the same result:
jobs read only their own inputs and results are taken in submission order.

Ray is optional (``pip install 'discover[ray]'``) and imported only when ``engine: ray``
is chosen. ``ray.address`` joins a running cluster; without it a local cluster of
``ray.num_cpus`` CPUs is started for the run and shut down after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from joblib import Parallel, delayed

from discover.config import Config, RayConfig
from discover.errors import DiscoverError

log = logging.getLogger(__name__)


def import_ray() -> Any:
    """Ray, or an error that says how to install it."""
    try:
        import ray
    except ImportError as error:
        raise DiscoverError("engine: ray needs the Ray extra: pip install 'discover[ray]'") from error
    return ray


@contextmanager
def ray_cluster(settings: RayConfig) -> Iterator[None]:
    """Connect to `settings.address`, or start a local cluster and stop it on the way out.

    A cluster already connected in this process (``ray.init`` by the caller) is used as is
    and left running.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield
        return
    options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False, "include_dashboard": False}
    if settings.address:
        ray.init(address=settings.address, **options)
        log.info("engine ray: connected to %s", settings.address)
    else:
        ray.init(num_cpus=settings.num_cpus, **options)
        log.info("engine ray: local cluster with %s CPUs", ray.cluster_resources().get("CPU"))
    try:
        yield
    finally:
        ray.shutdown()


@contextmanager
def engine_session(config: Config) -> Iterator[None]:
    """The cluster a run's engine needs for its duration (nothing for the local engine)."""
    if config.engine == "ray":
        with ray_cluster(config.ray):
            yield
    else:
        yield


def ordered_map(
    function: Callable[..., Any], jobs: Iterable[tuple], engine: str = "local", n_jobs: int = 1
) -> Iterator:
    """``function(*job)`` for every job, yielded in the order of `jobs` as each is ready.

    Local: `n_jobs` joblib processes (1: in this process). Ray: one task per job, one CPU
    each, on the connected cluster (``n_jobs`` is the cluster's business).
    """
    if engine == "ray":
        ray = import_ray()
        if not ray.is_initialized():
            raise DiscoverError("engine ray: no Ray cluster is connected (run inside engine_session)")
        remote = ray.remote(num_cpus=1, max_retries=3)(function)
        references = [remote.remote(*job) for job in jobs]
        for reference in references:
            yield ray.get(reference)
        return
    if n_jobs == 1:
        yield from (function(*job) for job in jobs)
        return
    yield from Parallel(n_jobs=n_jobs, return_as="generator")(delayed(function)(*job) for job in jobs)
