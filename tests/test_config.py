from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from llmskel.config import from_dict, load_config, parse_overrides, save_config, to_dict
from llmskel.errors import ConfigError


@dataclass
class Inner:
    lr: float = 0.1
    schedule: Literal["cosine", "step"] = "cosine"
    milestones: list[int] = field(default_factory=lambda: [10, 20])


@dataclass
class Outer:
    name: str = "x"
    epochs: int = 3
    crop: tuple[float, float] = (0.5, 1.0)
    note: str | None = None
    optim: Inner = field(default_factory=Inner)


def test_unknown_key_names_it_and_lists_valid_keys():
    with pytest.raises(ConfigError) as e:
        from_dict(Outer, {"optim": {"lrr": 0.2}})
    msg = str(e.value)
    assert (
        "'optim.lrr'" in msg and "did you mean 'lr'" in msg and "valid keys: lr, schedule, milestones" in msg
    )


def test_invalid_literal_lists_valid_values():
    with pytest.raises(
        ConfigError, match="'optim.schedule' has invalid value 'linear'; valid values: 'cosine', 'step'"
    ):
        from_dict(Outer, {"optim": {"schedule": "linear"}})


def test_types_are_checked_and_converted():
    cfg = from_dict(Outer, {"epochs": 5, "crop": [0.6, 0.9], "optim": {"lr": "1e-3"}})
    assert cfg.crop == (0.6, 0.9) and cfg.optim.lr == pytest.approx(1e-3) and cfg.epochs == 5
    with pytest.raises(ConfigError, match="'epochs' must be an integer"):
        from_dict(Outer, {"epochs": "many"})
    with pytest.raises(ConfigError, match="'crop' needs 2 values"):
        from_dict(Outer, {"crop": [0.5]})


def test_yaml_overrides_and_round_trip(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: run\noptim:\n  lr: 0.05\n")
    cfg = load_config(Outer, p, ["optim.milestones=[3,4]", "epochs=7", "note=hello"])
    assert cfg.name == "run" and cfg.optim.lr == 0.05 and cfg.optim.milestones == [3, 4]
    assert cfg.epochs == 7 and cfg.note == "hello"
    out = tmp_path / "resolved.yaml"
    save_config(cfg, out)
    assert load_config(Outer, out) == cfg
    assert to_dict(cfg)["optim"]["milestones"] == [3, 4]


def test_base_inheritance_and_bad_files(tmp_path):
    (tmp_path / "base.yaml").write_text("epochs: 9\noptim:\n  lr: 0.2\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\noptim:\n  schedule: step\n")
    cfg = load_config(Outer, tmp_path / "child.yaml")
    assert cfg.epochs == 9 and cfg.optim.lr == 0.2 and cfg.optim.schedule == "step"
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Outer, tmp_path / "bad.yaml")
    # the safe loader refuses python object tags
    (tmp_path / "evil.yaml").write_text("name: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Outer, tmp_path / "evil.yaml")
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["epochs"])


def test_rotation_bounds_per_axis_from_yaml_and_overrides(tmp_path):
    from llmskel.engine.config import load_experiment

    p = tmp_path / "exp.yaml"
    p.write_text("data:\n  augment:\n    rotate: [30, 60, 0]\n")
    assert load_experiment(str(p)).data.augment.rotate == [30.0, 60.0, 0.0]
    assert load_experiment(str(p), ["data.augment.rotate=15"]).data.augment.rotate == 15.0
    with pytest.raises(ConfigError, match=r"data\.augment\.rotate"):
        load_experiment(str(p), ["data.augment.rotate=[10, 20]"])
