"""Errors of the ONNX encoders.

FeatureServiceError (stream.errors)
└── EncoderError
    ├── ExportError
    └── AccuracyCheckFailed
"""

from stream.errors import FeatureServiceError


class EncoderError(FeatureServiceError):
    """An encoder could not be exported, loaded or checked."""


class ExportError(EncoderError):
    """A network could not be exported to ONNX or quantised, or a precision is unknown."""


class AccuracyCheckFailed(EncoderError):
    """A reduced-precision encoder strays too far from its fp32 reference; serve fp32 instead."""
