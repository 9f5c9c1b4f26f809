"""Every model's canary request fits its config.pbtxt, so a failing canary means a sick model, not a bad canary."""

import re

import pytest

from stream.config import REPO_ROOT
from stream.inference.canaries import CANARIES, DATATYPES
from tests.stream.contracts.test_shapes import tensor_dims

MODELS = REPO_ROOT / "triton_models"
INPUT_BLOCK = re.compile(r"^input \[(.*?)^\]", re.MULTILINE | re.DOTALL)
DATATYPE = re.compile(r'name:\s*"(\w+)",\s*data_type:\s*TYPE_(\w+)')


def test_every_model_in_the_repository_has_a_canary() -> None:
    assert set(CANARIES) == {path.parent.name for path in MODELS.glob("*/config.pbtxt")}


@pytest.mark.parametrize("model", sorted(CANARIES))
def test_the_canary_matches_the_model_inputs(model: str) -> None:
    config = (MODELS / model / "config.pbtxt").read_text(encoding="utf-8")
    inputs = INPUT_BLOCK.search(config)
    assert inputs, f"{model} config.pbtxt has no input block"
    declared = tensor_dims(inputs.group(1))
    batched = "max_batch_size: 0" not in config
    required = {
        line.split('"')[1]
        for line in inputs.group(1).splitlines()
        if "name:" in line and "optional" not in line
    }
    canary = CANARIES[model]()

    assert required <= set(canary) <= set(declared)
    for name, array in canary.items():
        shape = list(array.shape[1:] if batched else array.shape)
        assert all(want in (-1, got) for want, got in zip(declared[name], shape, strict=True)), name
        wanted = dict(DATATYPE.findall(inputs.group(1)))[name]
        assert DATATYPES.get(array.dtype, "FP32") == {"STRING": "BYTES"}.get(wanted, wanted), name
