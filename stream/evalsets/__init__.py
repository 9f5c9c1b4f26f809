"""Evaluation catalogs built from real material in registry packages (see ``stream.evalsets.build``)."""
