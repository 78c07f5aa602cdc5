"""The ``data:`` section of an experiment config (see :mod:`llmskel.config` for loading rules)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import bounded
from ..errors import ConfigError
from .joint_space import ProjectConfig

# a registered dataset name or alias (llmskel.data.datasets: synthetic, cache, hf, ntu, utkinect, nw-ucla,
# utd-mhad, penn-action, pyskl, folder, and any registered later); checked by DataConfig.validate
DatasetName = str
StreamName = Literal["joint", "bone", "joint_motion", "bone_motion"]
PadMode = Literal["resize", "zero", "loop", "edge"]


@dataclass
class AugmentConfig:
    """Training-time augmentation; every value 0 / false disables that augmentation."""

    # max |angle| in degrees, drawn per axis: one number for every axis (x, y, z in 3D; the in-plane
    # angle in 2D), or a list [x, y, z] of per-axis bounds, e.g. [30, 60, 0] for strong changes of
    # viewpoint about the vertical axis without rolling the body over
    rotate: float | list[float] = 0.0
    scale: float = bounded(0.0, ge=0, lt=1)  # isotropic scale drawn from [1 - scale, 1 + scale]
    shear: float = bounded(0.0, ge=0)  # off-diagonal shear coefficients drawn from [-shear, shear]
    noise: float = bounded(0.0, ge=0)  # std of Gaussian noise added to every coordinate
    joint_dropout: float = bounded(0.0, ge=0, lt=1)  # probability that a joint is zeroed for the whole sample
    # probability that a frame is dropped before temporal resampling
    frame_dropout: float = bounded(0.0, ge=0, lt=1)
    # probability of a left-right mirror (x negated, left/right joints swapped)
    flip: float = bounded(0.0, ge=0, le=1)
    # joint space only: probability that a sample keeps only the joints one of `layout_dropout_to` has
    # (e.g. a Kinect recording cut down to what COCO-17 gives), so which joints are present does not tell
    # the model which dataset (or sensor) a sample came from
    layout_dropout: float = bounded(0.0, ge=0, le=1)
    layout_dropout_to: list[str] = field(default_factory=lambda: ["coco17"])
    # 2D input only: each present joint's score (confidence, visibility) is multiplied by a factor drawn
    # from [1 - score_jitter, 1] per frame, for every source alike, so scores do not tell sources apart
    # (Penn Action's visibility is exactly 0 or 1; a projected 3D joint gets data.project.score)
    score_jitter: float = bounded(0.0, ge=0, lt=1)


@dataclass
class SyntheticConfig:
    """The procedural action set (llmskel.data.synthetic), the embedded default."""

    num_classes: int = bounded(20, ge=1)  # the first N actions of the generator's catalogue
    samples_per_class: int = bounded(24, ge=1)
    num_subjects: int = bounded(8, ge=1)  # subjects 1..S; even subjects go to test under the default protocol
    num_frames: int = bounded(64, ge=1)  # mean length; lengths vary per subject speed
    layout: str = "ntu25"  # generated in NTU-25 and converted if another layout is named
    seed: int = 0


SourceUse = Literal["train+test", "train", "test"]


@dataclass
class SourceConfig:
    """One entry of ``data.sources``: a dataset that joins a multi-source experiment."""

    dataset: DatasetName
    root: str | None = None
    protocol: str = "default"  # the dataset's own split rule (see DataConfig.protocol)
    # how often each training sample of this source is drawn, relative to the other sources' samples
    # (1 everywhere: every sample once per epoch; 2: this source's samples twice as often)
    weight: float = 1.0
    use: SourceUse = "train+test"  # which of the protocol's splits join the experiment
    layout: str | None = None  # for folder / pyskl / hf sources that do not say it
    classes: list[str] | None = None  # class names, when the source has numbers only
    name: str | None = None  # shown in logs and metrics (default: the dataset name)

    def validate(self) -> None:
        from .datasets import get_dataset

        try:
            rec = get_dataset(self.dataset)
        except ConfigError as e:
            raise ConfigError(f"config key 'data.sources': {e}") from None
        self.dataset = rec.name
        if not self.weight > 0:
            raise ConfigError(
                f"config key 'data.sources' ({self.dataset}): weight must be > 0, got {self.weight}"
            )
        if rec.needs_root and not self.root:
            raise ConfigError(
                f"config key 'data.sources' ({self.dataset}): 'root' is required for this dataset"
            )

    def spatial_dims(self) -> int | None:
        """3 or 2 when the source's layout says (its record's or its own), else None."""
        from .datasets import get_dataset
        from .layouts import get_layout

        name = self.layout or get_dataset(self.dataset).layout
        if self.dataset == "synthetic" and not name:
            return 3
        return None if not name else (3 if get_layout(name).three_d else 2)


@dataclass
class DataConfig:
    dataset: DatasetName = "synthetic"
    root: str | None = None  # folder / file of the dataset (not used for synthetic)
    # split rule; per dataset: synthetic "xsub"; nw-ucla "xview"; utkinect "xsub" or "loso-<subject>";
    # ntu "ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset"; utd-mhad "xsub"; penn-action
    # "official"; cache/folder/hf "split" (a split column) or "xsub"; "none" puts everything in train
    # and test (for inference-only data); see llmskel.data.protocols
    protocol: str = "default"
    layout: str | None = None  # required for folder / pyskl / hf sources that do not say it
    classes: list[str] | None = None  # class names, when the source has numbers only
    num_frames: int = bounded(64, ge=1)  # frames fed to the model after temporal resampling
    num_bodies: int = bounded(2, ge=1)  # bodies kept (padded with zeros / cut)
    stream: StreamName = "joint"
    train_crop: tuple[float, float] = (0.5, 1.0)  # random crop of this fraction of the valid frames
    eval_crop: float = 1.0  # centre crop fraction at evaluation
    # a crop shorter than num_frames: "resize" stretches it (interpolation), "zero" pads absent
    # frames, "loop" repeats it from the start, "edge" repeats its last frame
    pad_mode: PadMode = "resize"
    # coordinate channels: 3 (x, y, z) or 2 (x, y, with channel 2 a score); None: 3 for the Kinect
    # layouts (ntu25, kinect20), 2 for the pose-estimator layouts (coco17, openpose18, mediapipe33)
    spatial_dims: int | None = None
    center: bool = True  # subtract the layout origin of the first valid frame
    align_view: bool = False  # rotate so the spine is +y ("up") and shoulders are +x
    normalize_scale: bool = False  # divide by the mean spine length
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    allow_pickle: bool = False  # pyskl/mmaction2 annotation files are pickles: opt in explicitly
    num_workers: int = bounded(0, ge=0)  # DataLoader worker processes
    # hold out this fraction of the training samples (stratified by class, seeded) as a validation
    # set: it picks the best model and feeds methods that adapt during training, so the test set
    # is never looked at before the end
    val_fraction: float = 0.0
    # restrict training / testing to these class names (zero-shot seen/unseen splits set this)
    train_classes: list[str] | None = None
    test_classes: list[str] | None = None
    # several datasets in one experiment (llmskel.data.multi): each with its root, protocol and sampling
    # weight; classes are merged by their normalised name; samples meet in the joint space
    sources: list[SourceConfig] | None = None
    # map every sample into one joint space (llmskel.data.joint_space: NTU-25 joints, absent ones
    # masked, a mask / score channel); null: on when ``sources`` is set
    joint_space: bool | None = None
    # joint space only: keep only the joints this layout provides (e.g. coco17) in training and at
    # inference (saved with the model), so samples of every sensor and dataset show the same joints
    joint_subset: str | None = None
    project: ProjectConfig = field(default_factory=ProjectConfig)  # 3D -> 2D cameras for a 2D model

    def validate(self) -> None:
        from .datasets import get_dataset

        try:
            rec = get_dataset(self.dataset)
        except ConfigError as e:
            raise ConfigError(f"config key 'data.dataset': {e}") from None
        self.dataset = rec.name  # an alias becomes the dataset's name
        rot = self.augment.rotate
        if isinstance(rot, list) and (len(rot) not in (1, 3) or any(a < 0 for a in rot)):
            raise ConfigError(
                f"config key 'data.augment.rotate' must be one angle or [x, y, z] angles >= 0, got {rot}"
            )
        self._validate_joint_options()
        lo, hi = self.train_crop
        if not (0.0 < lo <= hi <= 1.0):
            raise ConfigError(
                f"config key 'data.train_crop' must satisfy 0 < low <= high <= 1, got {self.train_crop}"
            )
        if not (0.0 < self.eval_crop <= 1.0):
            raise ConfigError(f"config key 'data.eval_crop' must be in (0, 1], got {self.eval_crop}")
        if not (0.0 <= self.val_fraction < 1.0):
            raise ConfigError(f"config key 'data.val_fraction' must be in [0, 1), got {self.val_fraction}")
        if self.spatial_dims not in (None, 2, 3):
            raise ConfigError(f"config key 'data.spatial_dims' must be 2, 3 or null, got {self.spatial_dims}")
        if self.num_frames < 1 or self.num_bodies < 1:
            raise ConfigError("config keys 'data.num_frames' and 'data.num_bodies' must be >= 1")
        if self.sources is not None:
            self._validate_sources()
        elif rec.needs_root and not self.root:
            raise ConfigError(f"config key 'data.root' is required for dataset {self.dataset!r}")
        if self.joint_space:
            self._joint_space_dims([] if self.sources else [SourceConfig(self.dataset, layout=self.layout)])

    def _validate_joint_options(self) -> None:
        from .joint_space import can_map

        needs_space = self.joint_space is False or (self.joint_space is None and not self.sources)
        if self.joint_subset is not None:
            if not can_map(self.joint_subset):
                raise ConfigError(f"config key 'data.joint_subset': layout {self.joint_subset!r} has no mapping "
                                  "into the joint space (see `llmskel layouts`)")  # fmt: skip
            if needs_space:
                raise ConfigError("config key 'data.joint_subset' needs the joint space "
                                  "(data.joint_space: true, or several data.sources)")  # fmt: skip
        aug = self.augment
        if aug.layout_dropout <= 0:
            return
        if not aug.layout_dropout_to:
            raise ConfigError(
                "config key 'data.augment.layout_dropout_to' is empty; name at least one layout"
            )
        bad = [n for n in aug.layout_dropout_to if not can_map(n)]
        if bad:
            raise ConfigError(f"config key 'data.augment.layout_dropout_to': {bad} have no mapping into the joint "
                              "space (see `llmskel layouts`)")  # fmt: skip
        if needs_space:
            raise ConfigError("config key 'data.augment.layout_dropout' needs the joint space "
                              "(data.joint_space: true, or several data.sources)")  # fmt: skip

    def _validate_sources(self) -> None:
        if not self.sources:
            raise ConfigError("config key 'data.sources' is an empty list; list at least one source")
        names = [s.name or s.dataset for s in self.sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"config key 'data.sources' lists {dup} twice; give each a distinct 'name'")
        if not any(s.use != "test" for s in self.sources):
            raise ConfigError(
                "config key 'data.sources': no source is used for training (every 'use' is 'test')"
            )
        if self.joint_space is None:
            self.joint_space = True
        if not self.joint_space and len({s.spatial_dims() for s in self.sources}) > 1:
            raise ConfigError("config key 'data.sources' mixes 2D and 3D sources: set data.joint_space: true")
        self._joint_space_dims(self.sources)

    def _joint_space_dims(self, sources: list[SourceConfig]) -> None:
        """The joint space needs data.spatial_dims; null: 2 if any source is 2D, else 3. A 3D model
        cannot learn from a 2D source (depth is not there): that is an error naming the source."""
        from .layouts import get_layout

        if not sources:
            return
        dims = [s.spatial_dims() for s in sources]
        two_d = [s.name or s.dataset for s, d in zip(sources, dims) if d == 2]
        if self.spatial_dims is None:
            self.spatial_dims = 2 if two_d else 3
        if self.spatial_dims == 3 and two_d:
            src = next(s for s in sources if (s.name or s.dataset) == two_d[0])
            lay = get_layout(src.layout).name if src.layout else self._record_layout(src.dataset)
            raise ConfigError(
                f"data source {two_d[0]!r} is 2D (layout {lay}) but data.spatial_dims is 3: a 3D model cannot be "
                "trained on 2D skeletons. Set data.spatial_dims: 2 (3D sources are then projected by random cameras)"
            )

    @staticmethod
    def _record_layout(dataset: str) -> str:
        from .datasets import get_dataset

        return str(get_dataset(dataset).layout)
