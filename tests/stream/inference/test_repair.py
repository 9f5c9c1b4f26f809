"""Tests for stream/inference/repair.py: which models a repair round reloads, in which order, and what it counts."""

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from tritonclient.utils import InferenceServerException

from stream.inference.repair import RELOAD_ORDER, check_models, next_to_reload, repair_round
from stream.stack.process import free_port

CALLERS = {"listing_embedder": frozenset(RELOAD_ORDER) - {"listing_embedder"}}  # what calls what, by BLS


class Triton:
    """What a repair round sees: the models whose stub is dead, and those that call a dead one."""

    def __init__(self, dead: set[str], unloadable: frozenset[str] = frozenset()) -> None:
        self.dead = set(dead)
        self.unloadable = unloadable
        self.reloads: list[str] = []

    def canaries(self) -> Mapping[str, str]:
        failing = {model: "Stub process is not healthy." for model in self.dead}
        for caller, callees in CALLERS.items():
            if caller not in failing and self.dead & callees:
                failing[caller] = f"{min(self.dead & callees)} failed"
        return failing

    def reload(self, model: str) -> None:
        self.reloads.append(model)
        if model in self.unloadable:
            raise InferenceServerException(f"failed to load '{model}'")
        self.dead.discard(model)


def reloads_counted(model: str, outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("toyfuse_model_reloads_total", {"model": model, "outcome": outcome}) or 0.0
    )


def rounds_counted(phase: str) -> float:
    return REGISTRY.get_sample_value("toyfuse_model_check_rounds_total", {"phase": phase}) or 0.0


async def test_a_check_round_that_cannot_reach_triton_is_counted_as_started_and_finished() -> None:
    before = rounds_counted("started"), rounds_counted("finished")

    report = await check_models(f"127.0.0.1:{free_port()}", timeout_s=2.0, reload_timeout_s=2.0)

    assert report is None
    assert (rounds_counted("started"), rounds_counted("finished")) == (before[0] + 1, before[1] + 1)


def test_a_dead_encoder_is_reloaded_and_the_model_calling_it_is_left_alone() -> None:
    triton = Triton({"text_encoder"})
    before = reloads_counted("text_encoder", "recovered")

    report = repair_round(triton.canaries, triton.reload)

    assert (triton.reloads, report.healthy) == (["text_encoder"], True)
    assert reloads_counted("text_encoder", "recovered") == before + 1


def test_the_composite_model_is_reloaded_when_its_own_stub_died() -> None:
    triton = Triton({"listing_embedder"})

    assert repair_round(triton.canaries, triton.reload).reloaded == ("listing_embedder",)


def test_a_model_that_will_not_load_is_tried_once_and_reported() -> None:
    triton = Triton({"fusion"}, unloadable=frozenset({"fusion"}))
    before = reloads_counted("fusion", "failed")

    report = repair_round(triton.canaries, triton.reload)

    assert triton.reloads == ["fusion", "listing_embedder"], "the caller is tried too, once"
    assert set(report.still_failing) == {"fusion", "listing_embedder"}
    assert reloads_counted("fusion", "failed") == before + 1


def test_healthy_models_are_never_reloaded() -> None:
    triton = Triton(set())

    assert repair_round(triton.canaries, triton.reload).reloaded == ()
    assert triton.reloads == []


@given(dead=st.sets(st.sampled_from(RELOAD_ORDER)), unloadable=st.frozensets(st.sampled_from(RELOAD_ORDER)))
def test_any_set_of_dead_stubs_ends_with_each_model_reloaded_at_most_once(
    dead: set[str], unloadable: frozenset[str]
) -> None:
    triton = Triton(dead, unloadable)

    report = repair_round(triton.canaries, triton.reload)

    assert len(triton.reloads) == len(set(triton.reloads)), "no model reloaded twice in a round"
    assert set(report.still_failing) == set(triton.canaries()), "the report is the last canary round"
    assert report.healthy == (not dead & unloadable)
    assert set(triton.reloads) <= dead | {"listing_embedder"}, "only failing models are reloaded"


@pytest.mark.parametrize("model", RELOAD_ORDER)
def test_next_to_reload_puts_the_models_others_call_first(model: str) -> None:
    failing = {model, "listing_embedder"}

    assert next_to_reload(failing, ()) == model
