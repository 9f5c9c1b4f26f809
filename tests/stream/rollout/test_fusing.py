"""The in-process fusion of stored vectors: inputs, mask and output equal to the network's own forward."""

import numpy as np
import torch

from stream.model.fusion import FusionConfig, FusionModel
from stream.rollout.fusing import fuse, fusion_inputs


def dims_of(config: FusionConfig) -> dict[str, int]:
    return config.input_dims()


def test_absent_vectors_become_zeros_and_the_mask_follows_what_is_stored(layout_config: FusionConfig) -> None:
    dims = dims_of(layout_config)
    stored = [{"text": np.ones(dims["text"], np.float32)}, {"video": np.ones(dims["video"], np.float32)}]

    arrays, mask = fusion_inputs(stored, dims)

    assert [array.shape for array in arrays] == [(2, dims[name]) for name in dims]
    assert not arrays[1].any()  # text_multilingual stored by neither
    np.testing.assert_array_equal(mask, [[1, 0, 0, 0], [1, 0, 1, 0]])


def test_fuse_equals_the_network_on_the_same_inputs_in_any_chunking(layout_config: FusionConfig) -> None:
    torch.manual_seed(0)
    model = FusionModel(layout_config).eval()
    dims = dims_of(layout_config)
    rng = np.random.default_rng(0)
    stored = [
        {name: rng.normal(size=d).astype(np.float32) for name, d in dims.items() if (i + len(name)) % 3}
        for i in range(300)
    ]
    arrays, mask = fusion_inputs(stored, dims)
    with torch.inference_mode():
        expected, _ = model(*(torch.from_numpy(a) for a in (*arrays, mask)))

    np.testing.assert_allclose(fuse(model, stored, dims), expected.numpy(), atol=1e-6)
    assert fuse(model, [], dims).shape[0] == 0
