"""Errors of `toyfuse status`'s probes; the command shows each as a fact, never as a traceback.

FeatureServiceError (stream.errors)
└── StatusError
    └── Unreachable
"""

from stream.errors import FeatureServiceError


class StatusError(FeatureServiceError):
    """A fact of `toyfuse status` could not be gathered."""


class Unreachable(StatusError):
    """A server did not answer, or answered something that cannot be read."""
