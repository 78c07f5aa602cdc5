"""Seen / unseen class splits for zero-shot recognition, and the NTU-120 one-shot protocol, as data.

A split names the classes held out of training; the rest are seen. Splits are stored as 1-based
action numbers of the dataset's class order (NTU ``A1``..``A120``, PKU-MMD 1..51) or as class names,
and resolved against a dataset's class list by :func:`resolve_zsl_split`.

Where the lists come from:

* NTU-60 55/5 and 48/12, NTU-120 110/10 and 96/24: the unseen classes of SynSE (Gupta et al.,
  ICIP 2021; its README lists the 55/5 classes: reading, writing, put on a hat/cap, jump up, touch
  pocket), used unchanged by SMIE (Zhou et al., ACM MM 2023), PURLS (Zhu et al., CVPR 2024) and
  STAR (Chen et al., ACM MM 2024), which publish them as 0-based class indices.
* PKU-MMD (phase 1, 51 classes) 46/5: the split used by PURLS and STAR.
* NW-UCLA and UTKinect (10 classes each): ours, 2 held-out classes rotating over 5 folds; fold
  ``k`` holds out classes ``k`` and ``k + 5`` (0-based), so every class is unseen exactly once and
  the two near-duplicates of NW-UCLA (pick up with one / two hands, donning / doffing) are never
  held out together.
* synthetic: ours, 5 of the first 20 actions of the generator, spread over the body parts.

The NTU-120 one-shot protocol (Liu et al., TPAMI 2020; the NTU RGB+D README): 20 novel classes, every
sixth action A1, A7, ..., A115; one exemplar each, performer 8, camera 3, replication 1, setup 1 for
A1-A60 and setup 18 for A61-A120 (``S001C003P008R001A001`` ...); the 100 other classes are auxiliary
(training) classes, and every novel-class sample but the exemplars is a query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class ZslSplit:
    name: str
    dataset: str  # the dataset family it applies to
    num_classes: int  # classes of the dataset it was defined on
    unseen: tuple[int | str, ...] = ()  # 1-based action numbers or class names
    folds: tuple[tuple[int, ...], ...] = ()  # rotating splits: 1-based unseen numbers per fold
    source: str = ""

    def unseen_for(self, fold: int = 0) -> tuple[int | str, ...]:
        if not self.folds:
            if fold not in (0, None):
                raise ConfigError(f"zero-shot split {self.name!r} has no folds; remove 'zeroshot.fold'")
            return self.unseen
        if not 0 <= fold < len(self.folds):
            raise ConfigError(
                f"config key 'zeroshot.fold' must be in 0..{len(self.folds) - 1} for split {self.name!r}, got {fold}"
            )
        return self.folds[fold]


def _rotating(num_classes: int, held_out: int, folds: int) -> tuple[tuple[int, ...], ...]:
    """Fold k holds out classes k, k + folds, ... (1-based numbers)."""
    return tuple(tuple(k + j * folds + 1 for j in range(held_out)) for k in range(folds))


SYNSE = "SynSE (Gupta et al. 2021), as published by SMIE / PURLS / STAR"
# fmt: off
ZSL_SPLITS: dict[str, ZslSplit] = {s.name: s for s in (
    ZslSplit("ntu60_55_5", "ntu", 60, (11, 12, 20, 27, 57), source=SYNSE),
    ZslSplit("ntu60_48_12", "ntu", 60, (4, 6, 10, 13, 16, 41, 43, 48, 52, 57, 59, 60), source=SYNSE),
    ZslSplit("ntu120_110_10", "ntu", 120, (5, 14, 38, 44, 50, 66, 89, 96, 100, 107), source=SYNSE),
    ZslSplit("ntu120_96_24", "ntu", 120,
             (6, 10, 12, 17, 19, 21, 23, 30, 36, 40, 46, 50, 60, 69, 71, 82, 85, 88, 94, 95, 105, 114, 115, 120),
             source=SYNSE),
    ZslSplit("pku51_46_5", "pku-mmd", 51, (2, 10, 21, 35, 51), source="PURLS / STAR (PKU-MMD phase 1)"),
    ZslSplit("nw-ucla_8_2", "nw-ucla", 10, folds=_rotating(10, 2, 5), source="llmskel: 5 rotating folds"),
    ZslSplit("utkinect_8_2", "utkinect", 10, folds=_rotating(10, 2, 5), source="llmskel: 5 rotating folds"),
    ZslSplit("synthetic_15_5", "synthetic", 20, ("clap", "kick", "bow", "point", "nod head"),
             source="llmskel"),
)}
# fmt: on
ALIASES = {
    "ntu60": "ntu60_55_5",
    "ntu120": "ntu120_110_10",
    "nw-ucla": "nw-ucla_8_2",
    "ucla": "nw-ucla_8_2",
    "utkinect": "utkinect_8_2",
    "synthetic": "synthetic_15_5",
    "pku": "pku51_46_5",
}  # fmt: skip


def get_zsl_split(name: str) -> ZslSplit:
    key = ALIASES.get(name, name)
    if key not in ZSL_SPLITS:
        raise ConfigError(
            f"unknown zero-shot split {name!r}; valid: {', '.join(sorted(ZSL_SPLITS))} (or set 'zeroshot.unseen')"
        )
    return ZSL_SPLITS[key]


def resolve_zsl_split(
    classes: Sequence[str], split: str | None = None, unseen: Sequence[str | int] | None = None, fold: int = 0
) -> tuple[list[str], list[str]]:
    """(seen, unseen) class names of ``classes``, in dataset order, from a named split or an explicit
    ``unseen`` list (class names or 1-based numbers). Unknown names / numbers are errors naming them."""
    classes = list(classes)
    if (split is None) == (unseen is None):
        raise ConfigError(
            "set exactly one of 'zeroshot.split' (a named split) and 'zeroshot.unseen' (a class list)"
        )
    if split is not None:
        s = get_zsl_split(split)
        items = s.unseen_for(fold)
        if isinstance(items[0], int) and len(classes) < max(items):
            raise ConfigError(
                f"zero-shot split {s.name!r} was defined on {s.num_classes} classes but the dataset has "
                f"{len(classes)}; pick a split of this dataset"
            )
        where = f"zero-shot split {s.name!r}"
    else:
        items = tuple(unseen or ())
        where = "config key 'zeroshot.unseen'"
    names = []
    for it in items:
        if isinstance(it, int) or (isinstance(it, str) and it.isdigit()):
            n = int(it)
            if not 1 <= n <= len(classes):
                raise ConfigError(f"{where}: class number {n} is outside 1..{len(classes)}")
            names.append(classes[n - 1])
        elif it in classes:
            names.append(it)
        else:
            raise ConfigError(f"{where}: unknown class {it!r}; classes: {', '.join(classes)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: a class is listed twice ({names})")
    if not names:
        raise ConfigError(f"{where}: no unseen class")
    if len(names) >= len(classes):
        raise ConfigError(f"{where}: every class is unseen; at least one class must be seen in training")
    held = set(names)
    return [c for c in classes if c not in held], [c for c in classes if c in held]


# ------------------------------------------------------------------------------ NTU-120 one-shot
NTU120_ONE_SHOT_NOVEL: tuple[int, ...] = tuple(range(1, 121, 6))  # A1, A7, ..., A115 (20 classes)
NTU120_ONE_SHOT_AUXILIARY: tuple[int, ...] = tuple(a for a in range(1, 121) if a not in NTU120_ONE_SHOT_NOVEL)


def ntu120_one_shot_exemplars() -> dict[int, str]:
    """Novel action number -> the file stem of its one exemplar (``S001C003P008R001A001`` ...)."""
    return {a: f"S{1 if a <= 60 else 18:03d}C003P008R001A{a:03d}" for a in NTU120_ONE_SHOT_NOVEL}


@dataclass
class OneShotSplit:
    auxiliary: list[int]  # dataset indices of the training samples (auxiliary classes)
    exemplars: list[int]  # one per novel class, in NTU120_ONE_SHOT_NOVEL order
    queries: list[int]  # every other novel-class sample
    novel_classes: list[str]


def ntu120_one_shot_split(
    classes: Sequence[str], labels: Sequence[int], names: Sequence[str]
) -> OneShotSplit:
    """Index lists of the NTU-120 one-shot protocol for a dataset with the 120 NTU classes.

    ``labels`` are 0-based class indices (A1 = 0) and ``names`` the sample file stems
    (``S001C003P008R001A001``; a path or extension is stripped). A missing exemplar is an error
    naming it."""
    if len(classes) != 120:
        raise ConfigError(f"the NTU-120 one-shot protocol needs the 120 NTU classes, got {len(classes)}")
    stems = [str(n).replace("\\", "/").rsplit("/", 1)[-1].split(".", 1)[0] for n in names]
    where = {s: i for i, s in enumerate(stems)}
    novel = {a - 1 for a in NTU120_ONE_SHOT_NOVEL}
    ex = ntu120_one_shot_exemplars()
    missing = [stem for stem in ex.values() if stem not in where]
    if missing:
        raise ConfigError(f"NTU-120 one-shot: exemplar sample(s) {', '.join(missing)} are not in the dataset")
    exemplars = [where[ex[a]] for a in NTU120_ONE_SHOT_NOVEL]
    taken = set(exemplars)
    aux = [i for i, y in enumerate(labels) if int(y) not in novel]
    queries = [i for i, y in enumerate(labels) if int(y) in novel and i not in taken]
    return OneShotSplit(aux, exemplars, queries, [classes[a - 1] for a in NTU120_ONE_SHOT_NOVEL])


__all__ = [
    "NTU120_ONE_SHOT_AUXILIARY", "NTU120_ONE_SHOT_NOVEL", "OneShotSplit", "ZSL_SPLITS", "ZslSplit", "get_zsl_split",
    "ntu120_one_shot_exemplars", "ntu120_one_shot_split", "resolve_zsl_split",
]  # fmt: skip
