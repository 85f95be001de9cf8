"""The scene model: what training learns and rendering uses.

``SceneModel`` (``scene_model``) owns every learned tensor of a scene: points with descriptors, the neural renderer
(``adop.nn``), the tonemapper and refinable poses. ``TrainConfig`` (``config``) says how it is built and trained and
is saved with it. ``TrainedModel`` (``trained``) is a finished, exported model loaded for rendering and evaluation,
with no photos and no training code needed.
"""

from adop.model.config import TrainConfig
from adop.model.scene_model import SceneModel
from adop.model.trained import TrainedModel, export_model, load_trained_model

__all__ = ["SceneModel", "TrainConfig", "TrainedModel", "export_model", "load_trained_model"]
