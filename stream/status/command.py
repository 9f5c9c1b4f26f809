"""``toyfuse status``: the whole stack on one screen, as JSON for scripts, or refreshed until Ctrl-C."""

import json
import time
from collections.abc import Callable

import click

from stream.config import Settings
from stream.status.render import render, to_json
from stream.status.snapshot import Snapshot, take_snapshot


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the facts as one JSON object (see below).")
@click.option(
    "--watch",
    type=click.FloatRange(min=0.5),
    metavar="SECONDS",
    help="Redraw every SECONDS until Ctrl-C (with --json: one object per line).",
)
@click.option(
    "--interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="Least seconds between the two reads of the worker's metrics that the rates come from.",
)
@click.pass_obj
def command(settings: Settings, as_json: bool, watch: float | None, interval: float) -> None:
    """One screen: servers and models up, lag, throughput, freshness, dead letters, model version.

    Also the worker's agents, its batches in flight and the last error; every fact is read from the
    servers themselves (no Prometheus needed).

    Exits 0 when every server is up (Prometheus is optional), every model ready and the worker ready with
    all its agents running; 1 otherwise, listing why under "last error" (problems in JSON). A server
    that is down shows as down; the rest still shows. With --watch, Ctrl-C exits with the status of the
    last screen.

    JSON keys: taken_at, healthy, problems, servers, models, worker, model_version, lag, lag_source,
    model_info, interval_s, throughput, freshness, batches_in_flight, deadletters (by_reason, on_topic,
    newest), unread; a section a server holds is null while that server does not answer. The lag comes
    from the worker's gauges, or from Kafka's offsets when the worker is down.
    """

    def show(snapshot: Snapshot) -> None:
        if as_json:
            click.echo(json.dumps(to_json(snapshot), ensure_ascii=False))
            return
        if watch is not None:
            click.clear()
        click.echo(render(snapshot))

    if watch is None:
        last = take_snapshot(settings, interval)
        show(last)
    else:
        last = refresh(lambda: take_snapshot(settings, interval), show, max(0.0, watch - interval))
    click.get_current_context().exit(0 if last.healthy else 1)


def refresh(
    take: Callable[[], Snapshot],
    show: Callable[[Snapshot], None],
    pause_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Snapshot:
    """Take and show snapshots, ``pause_s`` apart, until Ctrl-C; return the last one shown.

    Args:
        take: gathers one snapshot.
        show: draws it.
        pause_s: the wait after each.
        sleep: waits (a test passes its own).
    """
    last = take()
    show(last)
    try:
        while True:
            sleep(pause_s)
            snapshot = take()
            show(snapshot)
            last = snapshot
    except KeyboardInterrupt:
        return last
