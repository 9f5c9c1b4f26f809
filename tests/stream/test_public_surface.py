"""What services import from ``stream``: a small, sorted, complete public surface."""

import inspect

import stream


def test_all_is_sorted_and_complete() -> None:
    assert stream.__all__ == sorted(stream.__all__)
    assert all(hasattr(stream, name) for name in stream.__all__)


def test_the_surface_holds_the_clients_settings_and_error_root() -> None:
    assert {"EmbeddingClient", "SyncEmbeddingClient", "Settings", "FeatureServiceError"} <= set(
        stream.__all__
    )


def test_every_exported_error_derives_from_the_root() -> None:
    errors = [
        getattr(stream, name)
        for name in stream.__all__
        if inspect.isclass(getattr(stream, name)) and issubclass(getattr(stream, name), BaseException)
    ]
    assert errors and all(issubclass(error, stream.FeatureServiceError) for error in errors)


def test_every_public_name_is_exported() -> None:
    public = {
        name
        for name, value in vars(stream).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(stream.__all__)
