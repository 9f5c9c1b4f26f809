"""The vector-set index at scale: insert rate by insertion method, ``VSIM`` latency and recall@10 by
quantisation, with and without a filter, at several search efforts.

Vectors are shaped like a catalog rather than uniform (uniform random vectors have no neighbourhoods
worth finding): a thousand category centres, products around them, and each product's 2-6 listings
close to it. Recall is measured against exact float32 search in numpy over the same vectors, so it
counts what quantisation and the graph lose together.

Each built set is searched at each exploration factor (``EF``) without the filter and at each filter
effort (``FILTER-EF``, at the served ``EF``) with it, since searching is cheap next to building; the
served effort (the settings') is among them and its results are the headline.

Each quantisation is built at each build effort (``VADD ... EF``, the candidates an insert weighs for its
links) and each number of links per node (``VADD ... M``); by default only the served ones, the schema's
``search.build_ef`` and ``search.build_m``. A lower effort builds faster and links worse, fewer links
build faster, take less memory and connect the graph less, which the searches of that set then show.

Insert rates are compared at the same set size: the set is built once with the fastest method, then
each method adds ``sequential`` more vectors to it. It runs on a scratch Redis without persistence
(``redis_server.scratch_server``), never the stack's: the numbers are the index's own, without the
stack's fsync-per-write append-only file.
"""

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from redis import Redis

from stream.bench.stats import latency_summary, rate, recall_at_k
from stream.contracts.shapes import INDEX
from stream.features.vectors import FloatArray, l2_normalize
from stream.store.listings import DEFAULT_EFFORT, SearchEffort

Progress = Callable[[int], None]
CATEGORIES = 20  # so the filter below keeps about 5 % of the set
FILTER = '.category == "c3"'
CENTRES = 1000
PRODUCT_SPREAD = 0.8  # noise norm around a category centre
LISTING_SPREAD = 0.35  # noise norm around a product
LISTINGS_PER_PRODUCT = 4  # on average
KEY = "toyfuse-bench:index"
TOP_UP_METHODS = 3  # one VADD per round trip, one pipeline, pipelines from several connections with CAS


@dataclass(frozen=True)
class IndexPlan:
    """What the index benchmark inserts and asks."""

    size: int = 100_000
    dims: int = 256
    quantizations: tuple[str, ...] = ("Q8", "NOQUANT", "BIN")  # the first is the one served
    build_efs: tuple[int, ...] = (INDEX.search.build_ef,)  # VADD EF values each quantisation is built at
    build_ms: tuple[int, ...] = (INDEX.search.build_m,)  # VADD M values each quantisation is built at
    queries: int = 1000  # so a p99 is the tenth-slowest search, not the second
    k: int = 10
    threads: int = 4
    chunk: int = 500  # VADDs per pipeline round trip
    sequential: int = 2_000  # vectors the one-round-trip-per-insert baseline adds
    seed: int = 0
    served: SearchEffort = DEFAULT_EFFORT  # what similar-listings searches use: the settings' effort
    efs: tuple[int, ...] = (100, 200, 400, 800)  # EF values searched unfiltered; 100 is VSIM's default
    filter_efs: tuple[int, ...] = (100, 200, 400, 1000)  # FILTER-EF values; VSIM's default is 100 * k

    def swept_efs(self) -> list[int]:
        """The ``EF`` values searched without the filter, the served one among them, ascending (pure)."""
        return sorted({*self.efs, self.served.ef})

    def served_filter_ef(self) -> int:
        """The ``FILTER-EF`` a served filtered search for ``k`` results sends (pure)."""
        return self.served.filter_ef(self.k)

    def swept_filter_efs(self) -> list[int]:
        """The ``FILTER-EF`` values searched with the filter, the served one among them, ascending (pure)."""
        return sorted({*self.filter_efs, self.served_filter_ef()})


def catalog_vectors(count: int, dims: int, seed: int) -> FloatArray:
    """``count`` unit vectors shaped like listings of products in categories (pure, deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)

    def around(points: FloatArray, spread: float, rows: int) -> FloatArray:
        noise = rng.standard_normal((rows, dims)) * (spread / np.sqrt(dims))
        return l2_normalize(points[rng.integers(0, len(points), rows)] + noise)

    centres = l2_normalize(rng.standard_normal((CENTRES, dims)))
    products = around(centres, PRODUCT_SPREAD, max(1, count // LISTINGS_PER_PRODUCT))
    return around(products, LISTING_SPREAD, count)


def categories(count: int, seed: int) -> NDArray[np.int64]:
    """The filter attribute of each vector: a category index in ``[0, CATEGORIES)`` (pure)."""
    return np.random.default_rng(seed + 1).integers(0, CATEGORIES, count)


def attribute_json(category: int, row: int) -> str:
    """The ``SETATTR`` JSON of one element (pure)."""
    return json.dumps({"category": f"c{category}", "price": float(row % 100)})


def exact_top_k(
    vectors: FloatArray, queries: FloatArray, k: int, allowed: NDArray[np.bool_] | None = None
) -> list[list[int]]:
    """Row numbers of each query's ``k`` most cosine-similar vectors (only ``allowed`` rows, if given), pure."""
    top = []
    for start in range(0, len(queries), 50):
        scores = queries[start : start + 50] @ vectors.T
        if allowed is not None:
            scores[:, ~allowed] = -np.inf
        best = np.argpartition(-scores, k, axis=1)[:, :k]
        ordered = np.take_along_axis(best, np.argsort(-np.take_along_axis(scores, best, 1), 1), 1)
        top += [[int(row) for row in rows] for rows in ordered]
    return top


@dataclass(frozen=True)
class Build:
    """How a set is built: its quantisation, build effort (``VADD ... EF``) and links per node (``M``)."""

    quantization: str
    ef: int
    m: int

    @classmethod
    def of(cls, result: dict[str, Any]) -> "Build":
        """The build a report entry of :func:`run_index` measured (pure)."""
        return cls(result["quantization"], result["build_ef"], result["build_m"])

    def label(self) -> str:
        """How reports and plots name this build (pure)."""
        return f"{self.quantization} EF {self.ef} M {self.m}"


def _vadd(vector: FloatArray, row: int, category: int, build: Build, cas: bool) -> list[Any]:
    options = ["CAS"] if cas else []
    return [
        "VADD", KEY, "FP32", vector.astype("<f4").tobytes(), f"v{row}", *options, build.quantization,
        "EF", build.ef, "M", build.m, "SETATTR", attribute_json(category, row),
    ]  # fmt: skip


def insert_sequential(
    redis: Redis,
    vectors: FloatArray,
    cats: NDArray[np.int64],
    build: Build,
    progress: Progress,
    first_row: int = 0,
) -> float:
    """Add ``vectors`` (rows from ``first_row``; ``cats`` aligned with them) one ``VADD`` per round trip (the
    naive baseline); return the seconds taken."""
    started = time.perf_counter()
    for offset, vector in enumerate(vectors):
        command = _vadd(vector, first_row + offset, int(cats[offset]), build, cas=False)
        redis.execute_command(*command)  # type: ignore[no-untyped-call]
        progress(1)
    return time.perf_counter() - started


def insert_pipelined(
    connect: Callable[[], Redis],
    vectors: FloatArray,
    cats: NDArray[np.int64],
    plan: IndexPlan,
    build: Build,
    threads: int,
    progress: Progress,
    first_row: int = 0,
) -> float:
    """Add ``vectors`` (rows from ``first_row``; ``cats`` aligned with them) in pipelines of ``plan.chunk`` from ``threads`` connections at once, with ``CAS`` (the
    neighbour search runs in Redis's threads, outside its main loop) when ``threads`` > 1; return seconds."""
    chunks = [
        range(start, min(start + plan.chunk, len(vectors))) for start in range(0, len(vectors), plan.chunk)
    ]
    clients = [connect() for _ in range(threads)]

    def send(index: int) -> None:
        pipe = clients[index % threads].pipeline(transaction=False)
        for offset in chunks[index]:
            command = _vadd(vectors[offset], first_row + offset, int(cats[offset]), build, threads > 1)
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        pipe.execute()
        progress(len(chunks[index]))

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, range(len(chunks))))
    seconds = time.perf_counter() - started
    for client in clients:
        client.close()
    return seconds


def vsim_options(ef: int, filter_expression: str | None = None, filter_ef: int = 0) -> list[str | int]:
    """The ``VSIM`` options of a search, as the store passes them: ``EF`` always, ``FILTER-EF`` with the
    filter (pure)."""
    if filter_expression is None:
        return ["EF", ef]
    return ["EF", ef, "FILTER", filter_expression, "FILTER-EF", filter_ef]


def search(
    redis: Redis, queries: FloatArray, k: int, extra: list[str | int]
) -> tuple[list[float], list[list[int]]]:
    """``VSIM`` top-``k`` for each query with the options ``extra`` (:func:`vsim_options`), one at a time;
    return each call's seconds and the rows found."""
    latencies, found = [], []
    for query in queries:
        started = time.perf_counter()
        command = ["VSIM", KEY, "FP32", query.astype("<f4").tobytes(), "COUNT", k, *extra]
        reply = redis.execute_command(*command)  # type: ignore[no-untyped-call]
        latencies.append(time.perf_counter() - started)
        found.append([int(element.decode()[1:]) for element in reply])
    return latencies, found


def _search_cases(
    redis: Redis, vectors: FloatArray, queries: FloatArray, cats: NDArray[np.int64], plan: IndexPlan
) -> dict[str, Any]:
    """Latency and recall at each swept effort, without the filter by ``EF`` and with it by ``FILTER-EF`` (at
    the served ``EF``); each case's headline is the served effort's point of its sweep."""
    served_ef, served_filter_ef, recall = plan.served.ef, plan.served_filter_ef(), f"recall@{plan.k}"

    def measure(extra: list[str | int], truth: list[list[int]]) -> dict[str, Any]:
        latencies, found = search(redis, queries, plan.k, extra)
        return {"latency": latency_summary(latencies), recall: recall_at_k(found, truth)}

    truth = exact_top_k(vectors, queries, plan.k)
    by_ef = {ef: measure(vsim_options(ef), truth) for ef in plan.swept_efs()}
    truth = exact_top_k(vectors, queries, plan.k, cats == 3)
    by_filter_ef = {
        filter_ef: measure(vsim_options(served_ef, FILTER, filter_ef), truth)
        for filter_ef in plan.swept_filter_efs()
    }
    return {
        "served": {"ef": served_ef, "filter_ef": served_filter_ef},
        "unfiltered": {
            "filter": None,
            "ef": served_ef,
            **by_ef[served_ef],
            "sweep": [{"ef": ef, **point} for ef, point in by_ef.items()],
        },
        "filtered": {
            "filter": FILTER,
            "ef": served_ef,
            "filter_ef": served_filter_ef,
            **by_filter_ef[served_filter_ef],
            "sweep": [{"filter_ef": filter_ef, **point} for filter_ef, point in by_filter_ef.items()],
        },
    }


def _top_ups(
    connect: Callable[[], Redis],
    redis: Redis,
    vectors: FloatArray,
    cats: NDArray[np.int64],
    plan: IndexPlan,
    build: Build,
    progress: Progress,
) -> dict[str, float]:
    """Insert rate of each method adding ``plan.sequential`` new vectors (the rows after the set) to the built set."""

    def one_per_round_trip(start: int) -> float:
        added = vectors[start : start + plan.sequential]
        return insert_sequential(redis, added, cats[start:], build, progress, first_row=start)

    def pipelined(threads: int) -> Callable[[int], float]:
        def insert(start: int) -> float:
            added = vectors[start : start + plan.sequential]
            return insert_pipelined(connect, added, cats[start:], plan, build, threads, progress, start)

        return insert

    methods = {
        "one_per_round_trip": one_per_round_trip,
        "pipelined": pipelined(1),
        f"pipelined_{plan.threads}_connections_cas": pipelined(plan.threads),
    }
    starts = range(plan.size, plan.size + TOP_UP_METHODS * plan.sequential, plan.sequential)
    return {
        name: rate(plan.sequential, insert(start))
        for (name, insert), start in zip(methods.items(), starts, strict=True)
    }


def builds(plan: IndexPlan) -> list[Build]:
    """Every quantisation at every build effort and number of links, in the plan's order (pure)."""
    return [
        Build(quantization, ef, m)
        for quantization in plan.quantizations
        for ef in plan.build_efs
        for m in plan.build_ms
    ]


def run_index(connect: Callable[[], Redis], plan: IndexPlan, progress: Progress) -> dict[str, Any]:
    """Build, top up and search a fresh ``KEY`` for each of :func:`builds` (deleted afterwards); the report
    section."""
    rows = plan.size + TOP_UP_METHODS * plan.sequential  # the set, then a batch of top-ups per method
    vectors = catalog_vectors(rows + plan.queries, plan.dims, plan.seed)
    queries = vectors[rows:]  # listings of the same products, never inserted
    cats = categories(rows, plan.seed)
    redis = connect()
    report: dict[str, Any] = {"plan": asdict(plan), "builds": []}
    try:
        for build in builds(plan):
            redis.delete(KEY)
            seconds = insert_pipelined(
                connect, vectors[: plan.size], cats, plan, build, plan.threads, progress
            )
            memory = redis.memory_usage(KEY) or 0
            searched = _search_cases(redis, vectors[: plan.size], queries, cats[: plan.size], plan)
            top_ups = _top_ups(connect, redis, vectors, cats, plan, build, progress)
            report["builds"].append(
                {
                    "quantization": build.quantization,
                    "build_ef": build.ef,
                    "build_m": build.m,
                    "build_inserts_per_s": rate(plan.size, seconds),
                    "top_up_inserts_per_s": top_ups,
                    "bytes_per_vector": memory / plan.size,
                    "search": searched,
                }
            )
    finally:
        redis.delete(KEY)
        redis.close()
    return report


def index_work(plan: IndexPlan) -> int:
    """How many inserts :func:`run_index` makes, for its progress bar (pure)."""
    return len(builds(plan)) * (plan.size + TOP_UP_METHODS * plan.sequential)
