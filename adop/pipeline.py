"""The options of the main job (``adop run``, the Prefect flow in ``adop.flows``): the library's configs, nested,
plus what only the pipeline decides.

Defaults live on the library configs; ``adop run`` and the Prefect deployments read them from here, so a default is
declared once. A deployment passes the options as a JSON object with the same nesting (``{"sfm": {"mapper":
"incremental"}, "render": {"ev": 11.5}}``); unknown fields and bad values are refused with one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from adop.config import Config, require
from adop.dense import DenseConfig
from adop.ingest import IngestConfig
from adop.model.config import TrainConfig
from adop.paths.fly_through import FlyThroughConfig
from adop.reconstruct.config import CleanupConfig, SfmConfig
from adop.render import RenderConfig
from adop.train.presets import PRESETS, preset

LastStage = Literal["ingest", "reconstruct", "train", "render", "deliver"]
"""Where a run may stop: after ingest, after the scene (SfM, dense, cleanup), after training, after rendering, or at the end."""
LAST_STAGES: tuple[str, ...] = ("ingest", "reconstruct", "train", "render", "deliver")


Runner = Literal["serial", "threads", "dask"]


@dataclass(frozen=True)
class ScaleOutConfig(Config):
    """How the render chunks of a run are spread out. Frames are the same however they are spread (each chunk is
    its own cached artifact, rendered by the same code), so none of this is part of any artifact's key."""

    runner: Runner = "threads"
    """``serial``: one chunk after the other; ``threads``: ``workers`` chunks at once in this process (Prefect's
    thread-pool task runner); ``dask``: chunks on a Dask cluster (``prefect-dask``'s ``DaskTaskRunner``), the one at
    ``dask_address`` or, without one, a local cluster of ``workers`` processes."""
    workers: int = 2
    """Chunks at once with ``threads``, worker processes of a local Dask cluster with ``dask``. Where rendering holds
    a ``gpu`` slot (a studio server), the slots, not this number, decide how many chunks render at once."""
    dask_address: str | None = None
    """The scheduler of a running Dask cluster (``tcp://render-scheduler:8786``). Its workers must run the same adop
    and see the workspace at the same path (a shared file system)."""

    def validate(self) -> None:
        require(self.workers >= 1, f"ScaleOutConfig.workers must be at least 1, got {self.workers}")
        require(self.dask_address is None or self.runner == "dask",
                "ScaleOutConfig.dask_address needs runner='dask'")


@dataclass(frozen=True)
class PipelineOptions(Config):
    """Everything ``capture_to_deliverable`` can be told."""

    ingest: IngestConfig = field(default_factory=IngestConfig)
    """Which photos are accepted and how they enter the workspace."""
    sfm: SfmConfig = field(default_factory=SfmConfig)
    """Structure from motion."""
    dense: DenseConfig = field(default_factory=DenseConfig)
    """Dense stereo on the SfM model."""
    cleanup: CleanupConfig = field(default_factory=CleanupConfig)
    """Point cleanup and ADOP's point preprocessing."""
    train_preset: str = "cpu-fast"
    """Training preset (``adop.train.PRESETS``)."""
    max_steps: int | None = None
    """Training steps instead of the preset's."""
    fly_through: FlyThroughConfig = field(default_factory=FlyThroughConfig)
    """The camera path to render."""
    render: RenderConfig = field(default_factory=RenderConfig)
    """Exposure, naming and chunking of the rendered frames."""
    scale_out: ScaleOutConfig = field(default_factory=ScaleOutConfig)
    """How render chunks are spread over threads or a Dask cluster."""
    stop_after: LastStage = "deliver"
    """The last stage to run."""

    def validate(self) -> None:
        require(self.train_preset in PRESETS,
                f"unknown training preset {self.train_preset!r}; choose one of {', '.join(PRESETS)}")
        require(self.max_steps is None or self.max_steps >= 1, "max_steps must be at least 1")

    def train_config(self) -> TrainConfig:
        """The preset with ``max_steps`` applied."""
        config = preset(self.train_preset)
        return config if self.max_steps is None else config.replace(max_steps=self.max_steps)

    def runs(self, stage: str) -> bool:
        """Whether the run goes as far as ``stage`` (one of ``LAST_STAGES``)."""
        return LAST_STAGES.index(stage) <= LAST_STAGES.index(self.stop_after)
