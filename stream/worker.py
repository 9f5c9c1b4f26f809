"""Runs the Faust worker process."""

import faust

from stream.agents import create_app
from stream.config import Settings


def run_worker(settings: Settings, loglevel: str = "INFO") -> None:
    """Start consuming with the app's agents until SIGTERM or Ctrl-C."""
    app = create_app(settings)
    faust.Worker(app, loglevel=loglevel).execute_from_commandline()
