"""The benchmark's headline table: each target as a ratio from one run (pure)."""

from typing import Any

from stream.bench.index import Build
from stream.bench.stats import ratio


def throughput_rows(report: dict[str, Any]) -> list[tuple[str, str, float, float, float]]:
    """Per throughput scenario: (scenario, unit, ceiling, naive, pipeline) events per second."""
    rows = []
    for name in ("text", "reviews", "multimodal"):
        section = report.get(name)
        if section:
            rows.append(
                (
                    name,
                    "reviews/s" if name == "reviews" else "listings/s",
                    section["ceiling"]["per_s"],
                    section["naive"]["per_s"],
                    section["pipeline"]["per_s"],
                )
            )
    return rows


def format_report(report: dict[str, Any]) -> str:
    """The summary a person reads after ``toyfuse bench``: throughput, freshness and index, with ratios."""
    lines = [f"{'scenario':<12}{'ceiling':>10}{'naive':>10}{'pipeline':>10}{'/ceiling':>10}{'/naive':>9}"]
    for name, _, top, base, pipe in throughput_rows(report):
        over_top, over_base = ratio(pipe, top), ratio(pipe, base)
        lines.append(
            f"{name:<12}{top:>10.1f}{base:>10.1f}{pipe:>10.1f}{_times(over_top):>10}{_times(over_base):>9}"
        )
    lines += _encoder_lines(report.get("encoders"))
    lines += _runtime_lines(report.get("runtimes"))
    lines += _scale_out_lines(report.get("scale_out"))
    lines += _freshness_lines(report.get("freshness"))
    lines += _update_lines(report.get("updates"))
    lines += _index_lines(report.get("index"))
    return "\n".join(lines)


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _encoder_lines(section: dict[str, Any] | None) -> list[str]:
    if not section:
        return []
    rates = ", ".join(f"{model} {result['per_s']:.1f}/s" for model, result in section.items())
    return ["", f"encoders called directly (items/s at their best concurrency): {rates}"]


def _runtime_lines(section: dict[str, Any] | None) -> list[str]:
    if not section:
        return []
    lines = ["encoders in-process, items per CPU second on one thread (x torch):"]
    for model, found in section.items():
        rates = ", ".join(
            f"{name} {rate:.1f} ({found['over_torch'][name]:.2f}x)"
            for name, rate in found["per_cpu_s"].items()
        )
        lines.append(f"  {model} (served {found['served']}): {rates}")
    return lines


def _scale_out_lines(section: dict[str, Any] | None) -> list[str]:
    if not section:
        return []
    rate, over = section["pipeline"]["per_s"], _times(section["over_one_worker"])
    return [
        f"{section['workers']} workers, {section['partitions']} partitions: {rate:.1f} listings/s ({over} one worker)"
    ]


def _freshness_lines(section: dict[str, Any] | None) -> list[str]:
    if not section:
        return []
    lines = [
        "",
        "freshness (produced -> stored), text-only",
        f"{'offered/s':>10}{'achieved/s':>12}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}",
    ]
    for load in section["loads"]:
        fresh = load["freshness"]
        lines.append(
            f"{load['offered_per_s']:>10.1f}{load['per_s']:>12.1f}"
            f"{fresh['p50_ms']:>9.0f}{fresh['p95_ms']:>9.0f}{fresh['p99_ms']:>9.0f}"
        )
    return lines


def _update_lines(section: dict[str, Any] | None) -> list[str]:
    if not section:
        return []
    line = (
        f"updates, {section['listings']} listings with media, median of {section['rounds']} rounds: full "
        f"{section['full_ms_per_listing']:.0f} ms/listing, price-only {section['price_only_ms_per_listing']:.1f} "
        f"ms/listing, ratio {section['ratio']:.3f}"
    )
    return ["", line]


def _index_lines(section: dict[str, Any] | None) -> list[str]:
    if not section:
        return []
    size = section["plan"]["size"]
    lines = [
        "",
        f"vector set, {size:,} vectors, at the served search effort",
        f"{'build':<20}{'build/s':>9}{'B/vec':>7}{'p50 ms':>8}{'p99 ms':>8}{'R@10':>7}{'filt p99':>9}{'filt R@10':>10}",
    ]
    for result in section["builds"]:
        plain, filtered = result["search"]["unfiltered"], result["search"]["filtered"]
        lines.append(
            f"{Build.of(result).label():<20}{result['build_inserts_per_s']:>9.0f}{result['bytes_per_vector']:>7.0f}"
            f"{plain['latency']['p50_ms']:>8.2f}{plain['latency']['p99_ms']:>8.2f}{plain['recall@10']:>7.3f}"
            f"{filtered['latency']['p99_ms']:>9.2f}{filtered['recall@10']:>10.3f}"
        )
    for result in section["builds"]:
        lines += _effort_lines(Build.of(result), result["search"])
    return lines


def _effort_lines(build: Build, search: dict[str, Any]) -> list[str]:
    """One build's sweep: by EF without the filter, by FILTER-EF (at the served EF) with it."""
    served, filtered = search["served"], search["filtered"]
    title = (
        f"{build.label()} by search effort (served: EF {served['ef']}, FILTER-EF {served['filter_ef']}; "
        f"filtered at EF {filtered['ef']}, {filtered['filter']})"
    )
    lines = ["", title, f"{'option':<10}{'value':>7}{'p50 ms':>8}{'p99 ms':>8}{'R@10':>7}"]
    for option, case, key in (("EF", "unfiltered", "ef"), ("FILTER-EF", "filtered", "filter_ef")):
        for point in search[case]["sweep"]:
            mark = " served" if point[key] == served[key] else ""
            lines.append(
                f"{option:<10}{point[key]:>7}{point['latency']['p50_ms']:>8.2f}"
                f"{point['latency']['p99_ms']:>8.2f}{point['recall@10']:>7.3f}{mark}"
            )
    return lines
