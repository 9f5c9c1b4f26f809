"""Loading exported fusion and video pooling weights: what the Triton models and the evaluation import."""

from pathlib import Path

from safetensors.torch import load_file

from stream.errors import SettingsError
from stream.model.fusion import FusionConfig, FusionModel, ListingModel, VideoPooling

FUSION = "fusion"
VIDEO_POOLING = "video_pooling"
WEIGHTS = "model.safetensors"
ARCHITECTURE = "fusion_config.json"


def load_fusion(folder: Path) -> FusionModel:
    """The exported fusion network in a model version folder, in evaluation mode."""
    model = FusionModel(FusionConfig.read_json(folder / ARCHITECTURE))
    model.load_state_dict(load_file(str(folder / WEIGHTS)))
    return model.eval()


def load_video_pooling(folder: Path) -> VideoPooling:
    """The exported video pooling network in a model version folder, in evaluation mode."""
    model = VideoPooling(FusionConfig.read_json(folder / ARCHITECTURE))
    model.load_state_dict(load_file(str(folder / WEIGHTS)))
    return model.eval()


def load_exported(repository: Path) -> ListingModel:
    """Video pooling and fusion as exported into ``repository``, joined again (for evaluation).

    Raises:
        SettingsError: the repository holds no exported fusion or video pooling.
    """
    folders = {name: repository / name / "1" for name in (FUSION, VIDEO_POOLING)}
    missing = [name for name, folder in folders.items() if not (folder / WEIGHTS).exists()]
    if missing:
        raise SettingsError(f"{repository} has no exported {', '.join(missing)}; run `toyfuse export` first")
    model = ListingModel(FusionConfig.read_json(folders[FUSION] / ARCHITECTURE))
    model.fusion = load_fusion(folders[FUSION])
    model.video_pooling = load_video_pooling(folders[VIDEO_POOLING])
    return model.eval()
