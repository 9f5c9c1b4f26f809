"""`toyfuse bench` on the real stack, at a tiny size: every scenario measured, reported, plotted and cleaned up."""

import asyncio
from pathlib import Path

from stream.bench.command import BenchPlan, run_bench
from stream.bench.index import Build, IndexPlan
from stream.bench.plots import plot_bench
from stream.bench.report import format_report
from stream.bench.runtimes import IMAGE_RUNTIMES, TEXT_RUNTIMES
from stream.catalog.generate import CatalogSummary
from stream.config import Settings
from stream.contracts.shapes import INDEX
from stream.stack import redis_server
from stream.store.client import EmbeddingClient
from tests.stream.encoders.conftest import served_parameters

PLAN = BenchPlan(
    text_listings=40,
    naive_listings=4,
    media_listings=6,
    throughput_rounds=2,
    reviewed_listings=10,
    reviews_per_listing=2,
    update_rounds=1,
    loads=(0.5,),
    load_seconds=2.0,
    runtime_texts=16,
    runtime_photos=8,
    runtime_rounds=1,
    index=IndexPlan(size=2000, quantizations=("Q8",), queries=20, sequential=50),
)


async def test_one_run_measures_every_scenario_against_its_ceiling_and_baseline(
    running_worker: Settings, catalog: CatalogSummary, client: EmbeddingClient, tmp_path: Path
) -> None:
    result = await run_bench(running_worker, catalog, PLAN)
    report = result.report

    for name in ("text", "reviews", "multimodal"):
        section = report[name]
        rates = [section[part]["per_s"] for part in ("ceiling", "naive", "pipeline")]
        assert all(value > 0 for value in rates), section
        assert section["pipeline_over_ceiling"] == rates[2] / rates[0]
        assert section["pipeline_over_naive"] == rates[2] / rates[1]
    for name in ("text", "multimodal"):
        assert all(len(report[name][part]["by_round"]) == 2 for part in ("ceiling", "naive", "pipeline"))
    assert report["text"]["pipeline"]["freshness"]["samples"] == 2 * 40
    assert report["multimodal"]["pipeline"]["freshness"]["samples"] == 2 * 6
    assert report["scale_out"]["workers"] == 2 and report["scale_out"]["pipeline"]["per_s"] > 0
    encoders = report["encoders"]
    assert set(encoders) == {"text_encoder", "text_multilingual_encoder", "image_encoder"}
    assert all(result["per_s"] > 0 for result in encoders.values()), encoders
    text, image = report["runtimes"]["text_encoder"], report["runtimes"]["image_encoder"]
    assert set(text["per_cpu_s"]) == set(TEXT_RUNTIMES) and text["items"] == 16
    assert set(image["per_cpu_s"]) == set(IMAGE_RUNTIMES) and image["items"] == 8
    for runtimes in (text, image):
        assert all(rate > 0 for rate in runtimes["per_cpu_s"].values()), runtimes
        assert runtimes["over_torch"]["torch_fp32"] == 1.0
    assert text["served"] == f"onnx_{served_parameters('text_encoder')['precision']}"
    updates = report["updates"]
    assert updates["listings"] == 6 and 0 < updates["ratio"] < 1, updates
    (load,) = report["freshness"]["loads"]
    assert load["offered_per_s"] == 0.5 * report["text"]["pipeline"]["per_s"]
    assert load["freshness"]["samples"] == max(1, round(load["offered_per_s"] * 2.0))
    (build,) = report["index"]["builds"]
    assert Build.of(build) == Build("Q8", INDEX.search.build_ef, INDEX.search.build_m)
    search = build["search"]
    assert search["unfiltered"]["recall@10"] > 0.8 and search["filtered"]["recall@10"] > 0.8
    assert [point["ef"] for point in search["unfiltered"]["sweep"]] == PLAN.index.swept_efs()
    assert [point["filter_ef"] for point in search["filtered"]["sweep"]] == PLAN.index.swept_filter_efs()

    table = format_report(report)
    assert "pipeline" in table and "Q8" in table and "freshness" in table and "items per CPU second" in table
    written = {path.name for path in plot_bench(report, result.samples, tmp_path)}
    assert written == {"bench-throughput.png", "bench-load.png", "bench-freshness.png", "bench-index.png"}
    assert all((tmp_path / name).stat().st_size > 1000 for name in written)

    warm_ups = 2 * 32  # before everything, and before the two-worker run
    text, media, two_workers, updated = 2 * 40, 2 * 6, 40, 6
    stored = warm_ups + text + media + load["freshness"]["samples"] + two_workers + updated
    assert len(result.listing_ids) == stored
    assert set((await client.stored_versions(result.listing_ids)).values()) == {None}, "the run cleans up"

    # The index ran on a scratch server: the stack's Redis replays its append-only file on a restart.
    await asyncio.to_thread(redis_server.stop, running_worker)
    await asyncio.to_thread(redis_server.start, running_worker, print)
    assert redis_server.status(running_worker).healthy
