"""Text descriptions of the synthetic actions, written from their motion programs.

Nothing here is free text about an action: each part description is assembled from

* the program's degrees of freedom of that body part (:data:`~llmskel.data.synthetic_motion.DOFS`
  gives each one a part and its verbs): the sequence of excursions of the nominal curve
  ("bends to about 70 degrees, then straightens"), repetitions ("repeatedly, about 4 times"),
  left/right pairs merged ("both knees ...", "... alternately");
* facts measured on the noise-free canonical motion (:func:`~llmskel.data.synthetic.canonical_motion`):
  where the hands go (above the head, to the mouth, forward...), whether the hands meet, whether
  and how the feet leave the ground, how far the hips drop.

A part with no movement gets its "still" sentence ("the legs stay straight and still"), so the
text of an action that does not use the legs says so. :func:`moving_parts` exposes that decision.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from .layouts import PART_NAMES, get_layout
from .synthetic_motion import ACTIONS, ANKLE_HEIGHT, DOFS, Action, Osc

STILL = {
    "head": "the head stays upright and still",
    "hand": "the hands stay relaxed at the sides",
    "arm": "the arms hang relaxed at the sides",
    "hip": "the trunk stays upright and still",
    "leg": "the legs stay straight and still",
    "foot": "the feet stay flat on the ground",
}
_NUMBERS = {2: "twice", 3: "three times", 4: "four times", 5: "five times", 6: "six times"}
_ANGLE_MIN, _METRE_MIN = 10.0, 0.08  # excursions smaller than this are not described


# ----------------------------------------------------------------------------------------------
# grammar helpers


def _plural_verb(word: str) -> str:
    core, punct = word.rstrip(",;."), word[len(word.rstrip(",;.")) :]
    if not core.endswith("s") or core in ("across", "towards"):
        return word
    if core.endswith(("xes", "sses", "shes", "ches")):
        return core[:-2] + punct
    return core[:-1] + punct


def _pluralize(phrase: str) -> str:
    """Conjugate a singular verb phrase for a plural subject ("bends and straightens" -> "bend and
    straighten"): the first word and every word right after "and" or "then"."""
    words = phrase.split(" ")
    out = []
    for i, w in enumerate(words):
        head = i == 0 or words[i - 1] in ("and", "then")
        out.append(_plural_verb(w) if head else w)
    return " ".join(out)


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _amount(value: float, unit: str) -> str:
    if unit == "m":
        return f"{int(round(abs(value) * 20) * 5)} cm"
    return f"{int(round(abs(value) / 5.0) * 5)} degrees"


# ----------------------------------------------------------------------------------------------
# degrees of freedom -> verb phrases


def _episodes(curve: np.ndarray, thr: float) -> list[tuple[int, int, float]]:
    """Runs where |curve| > thr, split where the sign changes: (start, stop, peak value)."""
    sig = np.where(np.abs(curve) > thr, np.sign(curve), 0.0)
    out, start = [], None
    for i in range(len(sig) + 1):
        s = sig[i] if i < len(sig) else 0.0
        if start is not None and s != sig[start]:
            seg = curve[start:i]
            out.append((start, i, float(seg[np.argmax(np.abs(seg))])))
            start = None
        if start is None and s != 0.0:
            start = i
    return out


def _dof_phrase(action: Action, dof: str, u: np.ndarray) -> str | None:
    """Verb phrase (no subject) for one DOF of the nominal program, or None when it barely moves."""
    info = DOFS[dof]
    prims = action.program.get(dof, ())
    thr = _METRE_MIN if info.unit == "m" else _ANGLE_MIN
    uu = 1.0 - u if action.reverse else u
    base = sum((p(uu) for p in prims if not isinstance(p, Osc)), np.zeros_like(u))
    oscs = [p for p in prims if isinstance(p, Osc) and abs(p.amp) > thr / 2]
    word = "by about" if info.unit == "m" or dof == "root_yaw" else "to about"
    pieces: list[str] = []
    said: set[str] = set()
    for start, stop, peak in _episodes(base, thr):
        if start == 0:
            pieces.append(f"{info.back} from about {_amount(peak, info.unit)}")
            continue
        piece = f"{info.pos if peak > 0 else info.neg} {word} {_amount(peak, info.unit)}"
        pieces.append(piece + (" again" if piece in said else ""))
        said.add(piece)
        pieces.append(info.back if stop < len(base) else "stays there")
    if oscs:
        cycles = int(round(max(p.cycles for p in oscs)))
        rep = f"{info.osc} repeatedly" + (
            f", about {_NUMBERS.get(cycles, f'{cycles} times')}" if cycles > 1 else ""
        )
        if pieces and pieces[-1] == info.back:
            pieces.insert(len(pieces) - 1, rep)
        else:
            pieces.append(rep)
    if not pieces:
        return None
    return ", then ".join(pieces).replace(", then stays there", " and stays there")


def _osc_phase(action: Action, dof: str) -> float | None:
    ph = [p.phase for p in action.program.get(dof, ()) if isinstance(p, Osc)]
    return ph[0] if ph else None


def _part_dof_phrases(action: Action, part: str, u: np.ndarray) -> list[str]:
    """Clauses "subject verb phrase" for the DOFs of one part, left/right pairs merged."""
    clauses, done = [], set()
    for dof, info in DOFS.items():
        if info.part != part or dof in done or dof not in action.program:
            continue
        phrase = _dof_phrase(action, dof, u)
        if phrase is None:
            continue
        if dof[:2] in ("l_", "r_"):
            other = ("r_" if dof[:2] == "l_" else "l_") + dof[2:]
            other_phrase = _dof_phrase(action, other, u) if other in action.program else None
            if other_phrase == phrase:
                done.add(other)
                a, b = _osc_phase(action, dof), _osc_phase(action, other)
                if a is not None and b is not None and abs(a - b) > 1.0:
                    phrase = phrase.replace("repeatedly", "alternately")
                clauses.append(f"{info.plural} {_pluralize(phrase)}")
                continue
        clauses.append(f"{info.subject} {phrase}")
    return clauses


# ----------------------------------------------------------------------------------------------
# facts measured on the canonical motion


def _body_frame(joints: np.ndarray, yaw_deg: np.ndarray) -> np.ndarray:
    """Floor-frame joints (T, 25, 3) -> spine-base-relative positions with the body's yaw undone."""
    a = np.deg2rad(-yaw_deg)
    c, s = np.cos(a)[:, None], np.sin(a)[:, None]
    rel = joints - joints[:, :1]
    x, y, z = rel[..., 0], rel[..., 1], rel[..., 2]
    return np.stack([c * x + s * z, y, -s * x + c * z], axis=-1)


def _side_dofs(action: Action, side: str, parts: tuple[str, ...]) -> list[str]:
    return [d for d in action.program if d.startswith(side[0] + "_") and DOFS[d].part in parts]


def _hand_location(rel: np.ndarray, frames: np.ndarray, hand: int, shoulder: int) -> str:
    lay = get_layout("ntu25")
    p, sh = rel[frames, hand].mean(axis=0), rel[frames, shoulder].mean(axis=0)
    head = rel[frames, lay.index("head")].mean(axis=0)
    neck = rel[frames, lay.index("neck")].mean(axis=0)
    chest = rel[frames, lay.index("spine shoulder")].mean(axis=0)
    near_head = np.linalg.norm(p - head) < 0.25
    out = abs(p[0]) - abs(sh[0])
    if near_head and p[1] >= head[1] - 0.03:
        return "onto the head"
    if near_head:
        return "up to the mouth"
    if p[1] >= head[1]:
        return "up above the head"
    if p[1] >= neck[1] - 0.2 and p[2] - chest[2] > 0.35:
        return "forward at shoulder height"
    if out > 0.35:
        return "out to the side"
    if p[1] >= chest[1] - 0.35 and p[2] - chest[2] > 0.1:
        return "in front of the chest"
    if p[2] > 0.2:
        return "down in front of the body"
    if out > 0.08:
        return "a little out to the side"
    return "along the side of the body"


def _hand_clauses(action: Action, rel: np.ndarray) -> list[str]:
    """Where each hand goes, in the body frame (``rel`` from :func:`_body_frame`)."""
    lay = get_layout("ntu25")
    hands = {"left": lay.index("left hand"), "right": lay.index("right hand")}
    shoulders = {"left": lay.index("left shoulder"), "right": lay.index("right shoulder")}
    where: dict[str, tuple[str, bool]] = {}
    for side, h in hands.items():
        disp = np.linalg.norm(rel[:, h] - rel[:1, h], axis=-1)
        if disp.max() < 0.15:
            continue
        arm = _side_dofs(action, side, ("arm", "hand"))
        prims = [p for d in arm for p in action.program[d]]
        rep = any(isinstance(p, Osc) for p in prims)
        if prims and all(isinstance(p, Osc) for p in prims):
            where[side] = ("back and forth at the side of the body", False)
            continue
        frames = np.flatnonzero(disp >= 0.92 * disp.max())
        where[side] = (_hand_location(rel, frames, h, shoulders[side]), rep)
    gap = np.linalg.norm(rel[:, hands["left"]] - rel[:, hands["right"]], axis=-1)
    if len(where) == 2 and gap.min() < 0.12 and gap[0] > 0.3:
        rep = where["left"][1] or where["right"][1]
        t = int(np.argmin(gap))
        spot = (
            "above the head"
            if rel[t, hands["left"], 1] > rel[t, lay.index("head"), 1]
            else "in front of the chest"
        )
        return [f"the hands {'meet and part repeatedly' if rep else 'cross over each other'} {spot}"]
    if len(where) == 2 and where["left"] == where["right"]:
        loc, rep = where["left"]
        verb = "swing" if loc.startswith("back and forth") else "move"
        return [f"both hands {verb} {loc}" + (" and move back and forth repeatedly there" if rep else "")]
    out = []
    for side, (loc, rep) in where.items():
        verb = "swings" if loc.startswith("back and forth") else "moves"
        out.append(
            f"the {side} hand {verb} {loc}" + (" and moves back and forth repeatedly there" if rep else "")
        )
    return out


def _sole_heights(joints: np.ndarray) -> np.ndarray:
    """(T, 2) height of the lowest point of the left and right foot above the floor."""
    lay = get_layout("ntu25")
    ankle = joints[:, [lay.index("left ankle"), lay.index("right ankle")], 1] - ANKLE_HEIGHT
    foot = joints[:, [lay.index("left foot"), lay.index("right foot")], 1]
    return np.minimum(ankle, foot)


def _foot_clauses(action: Action, joints: np.ndarray, rel: np.ndarray) -> list[str]:
    sole = _sole_heights(joints)  # (T, 2)
    lifted = sole > 0.06
    if not lifted.any():
        return ["the feet turn on the spot with the body"] if "root_yaw" in action.program else []
    rep = any(
        isinstance(p, Osc) for d, ps in action.program.items() if DOFS[d].part in ("leg", "hip") for p in ps
    )
    phrases = {}
    for k, side in enumerate(("left", "right")):
        if not lifted[:, k].any():
            continue
        t = int(np.argmax(sole[:, k]))
        fwd = rel[t, (15, 19)[k], 2]
        text = "stays raised off the ground" if lifted[:, k].mean() > 0.5 else "lifts off the ground"
        if fwd > 0.3:
            text += " and swings forward"
        elif fwd < -0.1:
            text += " behind the body"
        phrases[side] = text
    if len(phrases) == 2 and phrases["left"] == phrases["right"]:
        how = " together" if (sole > 0.04).all(axis=1).any() else " in turn"
        return [f"both feet {_pluralize(phrases['left'])}{how}" + (" repeatedly" if rep else "")]
    return [
        f"the {side} foot {p}" + (" repeatedly" if rep and "stays" not in p else "")
        for side, p in phrases.items()
    ]


def _hip_clauses(joints: np.ndarray) -> list[str]:
    y = joints[:, 0, 1]
    drop = max(y[0], y[-1]) - y.min()
    if drop < 0.12:
        return []
    if y[0] - y[-1] > 0.12:
        return [f"the hips lower by about {_amount(drop, 'm')} and stay low"]
    if y[-1] - y[0] > 0.12:
        return [f"the hips rise by about {_amount(drop, 'm')}"]
    return [f"the hips lower by about {_amount(drop, 'm')} and rise again"]


def _part_energy(joints: np.ndarray, rel: np.ndarray) -> dict[str, float]:
    """How much each part moves by itself (metres): the mean temporal spread of its bone vectors
    (joint minus parent joint, body frame), so a hand carried along by a bending trunk counts
    little; the trunk adds the spread of its joints and the shoulders in the floor frame, so that
    a jump, a step or a turn counts."""
    lay = get_layout("ntu25")
    bones = rel - rel[:, lay.parents]  # (T, 25, 3)
    out = {}
    for part in PART_NAMES:
        idx = list(lay.parts[part])
        out[part] = float(np.linalg.norm(bones[:, idx].std(axis=0), axis=-1).mean())
        if part == "hip":
            idx += [lay.index("left shoulder"), lay.index("right shoulder")]
            out[part] += float(np.linalg.norm(joints[:, idx].std(axis=0), axis=-1).mean())
    return out


# ----------------------------------------------------------------------------------------------
# per action

_PART_NOUN = {"head": "head", "hand": "hands", "arm": "arms", "hip": "trunk", "leg": "legs", "foot": "feet"}
_RELATED = {"hand": ("arm", "hand"), "arm": ("arm", "hand"), "leg": ("leg", "foot"), "foot": ("leg", "foot")}


def _sentence(text: str) -> str:
    text = text.strip()
    return text[0].upper() + text[1:] + "." if text else text


def _noun(action: Action, part: str) -> str:
    """The part's noun, e.g. "right arm" when only right-side DOFs of a limb move, else "arms"."""
    if part == "hip" and any(d in action.program for d in ("root_yaw", "root_x", "lift")):
        return "whole body"
    if part not in _RELATED:
        return _PART_NOUN[part]
    sides = {d[0] for d in action.program if d[:2] in ("l_", "r_") and DOFS[d].part in _RELATED[part]}
    if len(sides) == 1:
        return ("left " if "l" in sides else "right ") + {
            "hands": "hand",
            "arms": "arm",
            "legs": "leg",
            "feet": "foot",
        }[_PART_NOUN[part]]
    return _PART_NOUN[part]


@cache
def _describe(name: str) -> tuple[tuple[tuple[str, str, bool, float], ...], tuple[str, ...]]:
    from .synthetic import canonical_motion

    action = ACTIONS[name]
    motion = canonical_motion(name, 240)
    u, joints = motion["u"], motion["joints"]
    rel = _body_frame(joints, motion["angles"].get("root_yaw", np.zeros(len(u))))
    energy = _part_energy(joints, rel)
    parts = []
    for part in PART_NAMES:
        clauses = _part_dof_phrases(action, part, u)
        if part == "hand":
            clauses = _hand_clauses(action, rel) + clauses
        elif part == "foot":
            clauses = _foot_clauses(action, joints, rel) + clauses
        elif part == "hip":
            clauses = _hip_clauses(joints) + clauses
        elif part == "head" and not clauses:
            if action.dof_curve("trunk_flex", u).max() > 30:
                clauses = ["the head goes down and up with the trunk"]
            elif "root_yaw" in action.program:
                clauses = ["the head turns with the body and stays upright"]
        moving = bool(clauses)
        parts.append((part, _join(clauses) if moving else STILL[part], moving, energy[part]))
    ranked = sorted((p for p in parts if p[2]), key=lambda p: -p[3])
    nouns = tuple(dict.fromkeys(_noun(action, p[0]) for p in ranked))
    return tuple(parts), nouns


def moving_parts(name: str) -> dict[str, bool]:
    """Which body parts the description of ``name`` says move."""
    parts, _ = _describe(name)
    return {part: moving for part, _, moving, _ in parts}


def describe_action(name: str) -> dict[str, str | list[str]]:
    """Part descriptions, one sentence and synonyms of a synthetic action (see the module docstring).

    The sentence names the two parts that move most (by the canonical motion's spread) and the
    parts that stay still; the synonyms are the action's other names from its program definition
    plus "moving the ..." with the moving parts, most moving first.
    """
    if name not in ACTIONS:
        raise KeyError(f"unknown synthetic action {name!r}; valid actions: {', '.join(ACTIONS)}")
    parts, nouns = _describe(name)
    out: dict[str, str | list[str]] = {part: _sentence(text) for part, text, _, _ in parts}
    ranked = sorted((p for p in parts if p[2]), key=lambda p: -p[3])
    still = [_PART_NOUN[part] for part, _, moving, _ in parts if not moving]
    body = "; ".join(text for _, text, _, _ in ranked[:2])
    tail = ""
    if still:
        verb = "stays" if len(still) == 1 and still[0] in ("head", "trunk") else "stay"
        tail = f", while the {_join(still)} {verb} still"
    out["sentence"] = f'In "{name}" {body}{tail}.'
    out["synonyms"] = list(ACTIONS[name].aliases) + [f"moving the {_join(list(nouns[:3]))}"]
    return out
