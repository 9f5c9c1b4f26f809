"""The shapes every part agrees on, read once from schemas/embedding_index.yaml (the one source of truth).

The worker, the training code and the Triton models import these names instead of writing numbers;
``tests/stream/contracts/test_shapes.py`` checks every ``config.pbtxt`` against them.
"""

from typing import Literal, get_args

from stream.config import REPO_ROOT
from stream.contracts.index import IndexSchema
from stream.errors import SettingsError

INDEX = IndexSchema.from_yaml(REPO_ROOT / "schemas" / "embedding_index.yaml")

Modality = Literal["text", "image", "video", "reviews"]
MODALITIES: tuple[Modality, ...] = get_args(Modality)
if INDEX.modalities != MODALITIES:
    raise SettingsError(
        f"schemas/embedding_index.yaml lists modalities {list(INDEX.modalities)}, the code knows {list(MODALITIES)}; "
        "change both together (the Modality type in stream/contracts/shapes.py and the trained fusion model)"
    )

DIMS: dict[str, int] = {name: field.dims for name, field in INDEX.vectors.items()}
IMAGE_SIZE = INDEX.media.image_size
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 3)
MAX_PHOTOS = INDEX.media.max_photos
FRAMES_PER_VIDEO = INDEX.media.frames_per_video
MAX_BATCH = INDEX.batching.max_batch
