"""Settings: the bounds of the tuning knobs that Redis would otherwise refuse at query time."""

import pytest
from pydantic import ValidationError

from stream.config import Settings


@pytest.mark.parametrize("field", ["vsim_ef", "vsim_filter_ef_per_result"])
def test_search_effort_must_be_positive(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: 0})
