"""Bringing back a model whose Python-backend stub died, without restarting Triton.

Triton no longer restarts a dead stub, and the model stays "ready" while it fails every request
(triton-inference-server/server#8604), so the stream would stall until someone restarted the server.
Triton runs with ``--model-control-mode explicit``, so :func:`repair_models` unloads each model that fails
its canary and loads it again, with fresh stubs. (Loading a model that is already loaded does nothing
unless its files changed, and a dead stub changes no file.) The model was answering nothing anyway.

Models are reloaded one at a time, in :data:`RELOAD_ORDER`, with the canaries sent again after each:
``listing_embedder`` calls the encoders and ``fusion``, so it fails whenever one of them is broken, and
reloading the broken one is enough to bring it back.
"""

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import partial

import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from stream import metrics
from stream.inference.canaries import CANARIES, unhealthy_models

log = logging.getLogger(__name__)
RELOAD_ORDER = tuple(CANARIES)  # the models others call come before the one that calls them
RECOVERED, FAILED = "recovered", "failed"  # toyfuse_model_reloads_total outcomes


@dataclass(frozen=True)
class RepairReport:
    """What one repair round found and did."""

    reloaded: tuple[str, ...] = ()  # in the order they were reloaded
    still_failing: Mapping[str, str] = field(default_factory=dict)  # model -> its canary's error

    @property
    def healthy(self) -> bool:
        """Whether every model answers its canary after the round."""
        return not self.still_failing


def next_to_reload(failing: Collection[str], reloaded: Collection[str]) -> str | None:
    """The failing model to reload next: the first in :data:`RELOAD_ORDER` not reloaded yet this round (pure).

    A model reloaded once that still fails is not reloaded again: its files or a model it calls are broken,
    which another reload would not mend.

    >>> next_to_reload({"listing_embedder", "text_encoder"}, ())
    'text_encoder'
    >>> next_to_reload({"listing_embedder", "text_encoder"}, ("text_encoder",))
    'listing_embedder'
    >>> next_to_reload({"text_encoder"}, ("text_encoder",)) is None
    True
    """
    return next((model for model in RELOAD_ORDER if model in failing and model not in reloaded), None)


def repair_round(canaries: Callable[[], Mapping[str, str]], reload: Callable[[str], None]) -> RepairReport:
    """Send the canaries and reload the failing models, one at a time, until all answer or none is left to try.

    Each reload is counted in ``toyfuse_model_reloads_total`` as ``recovered`` (its canary answers after it)
    or ``failed``; a reload that raises ``InferenceServerException`` is logged and counts as failed.

    Args:
        canaries: one canary round: model -> error of each model that fails.
        reload: asks Triton to load the model again.
    """
    failing = canaries()
    reloaded: list[str] = []
    while (model := next_to_reload(failing, reloaded)) is not None:
        log.warning("model %s fails its canary (%s); reloading it", model, failing[model])
        reloaded.append(model)
        try:
            reload(model)
        except InferenceServerException as exc:
            log.error("reloading model %s failed: %s", model, exc.message() or exc)
        failing = canaries()
        outcome = FAILED if model in failing else RECOVERED
        metrics.model_reloads_total.labels(model, outcome).inc()
        log.warning("model %s reloaded: %s", model, outcome)
    return RepairReport(tuple(reloaded), dict(failing))


def reload(client: triton_http.InferenceServerClient, model: str) -> None:
    """Unload ``model`` and load it again from the repository (the load waits until it is ready).

    Raises:
        InferenceServerException: Triton refused either step (e.g. it does not run in explicit mode).
    """
    client.unload_model(model)
    client.load_model(model)


def repair_models(url: str, timeout_s: float = 30.0, reload_timeout_s: float = 120.0) -> RepairReport:
    """:func:`repair_round` against the Triton at ``url`` (``host:port`` of its HTTP endpoint).

    Args:
        timeout_s: deadline of each canary.
        reload_timeout_s: deadline of each reload, which loads the model's weights again (~15 s on 2 cores).

    Raises:
        InferenceServerException, OSError: Triton could not be asked (it is down: its own supervisor or
            ``toyfuse stack up`` restarts it).
    """
    client = triton_http.InferenceServerClient(
        url, connection_timeout=timeout_s, network_timeout=reload_timeout_s
    )
    try:
        return repair_round(lambda: unhealthy_models(url, timeout_s), partial(reload, client))
    finally:
        client.close()


async def check_models(url: str, timeout_s: float, reload_timeout_s: float) -> RepairReport | None:
    """:func:`repair_models` off the event loop; None when Triton could not be asked (logged, nothing done).

    The round is counted in ``toyfuse_model_check_rounds_total`` as started before its first canary and as
    finished once it is over, however it ends.
    """
    metrics.model_check_rounds_total.labels(metrics.ROUND_STARTED).inc()
    try:
        return await asyncio.to_thread(repair_models, url, timeout_s, reload_timeout_s)
    except (InferenceServerException, OSError) as exc:
        log.info("model check skipped, Triton at %s could not be asked: %s", url, exc)
        return None
    finally:
        metrics.model_check_rounds_total.labels(metrics.ROUND_FINISHED).inc()
