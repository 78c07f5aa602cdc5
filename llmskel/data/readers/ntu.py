"""NTU RGB+D 60/120 raw ``.skeleton`` files: a fast parser, denoising, names, missing samples.

File format (text, one record per line)::

    <frame count>
    per frame:  <body count>
      per body: <body id> <clipped edges> <hand L conf> <hand L state> <hand R conf> <hand R state>
                <restricted> <lean x> <lean y> <tracking state>            (10 numbers)
                <joint count>                                              (25)
                25 x: x y z depthX depthY colorX colorY orientW orientX orientY orientZ trackingState

File names ``SsssCcccPpppRrrrAaaa`` give setup, camera, performer (subject), replication and
action (1-based).

**Parsing.** :func:`read_ntu_skeleton` reads the whole file once, finds every token's byte range
with a few numpy passes, walks only the frame / body headers in Python (a handful of integers per
frame) and converts the selected columns of all joint lines at once with vectorised decimal
arithmetic (exact: the integer mantissa divided by a power of ten, the same double a ``float()``
call gives). Any file that is not in the canonical shape (a non-numeric character, a line with
the wrong number of fields, a truncated frame, blank lines...) is handed to a line-by-line parser
that either reads it anyway or raises :class:`~llmskel.errors.SkeletonFormatError` naming the line,
the frame and the problem. Columns that are not converted are checked for their characters only.

**Denoising** (:func:`denoise_ntu`), our implementation of the heuristics commonly applied to NTU
(the description in the NTU preprocessing of 2s-AGCN / CTR-GCN / SGN): frames with no body are
dropped; when a file has several body ids, ids seen in at most ``length_threshold`` frames are
dropped, then ids whose frames are mostly "spread" (x extent larger than ``spread_threshold`` times
the y extent: a lying or fragmentary skeleton, usually furniture) are dropped; the rest are ranked
by motion (sum over x, y, z of the variance of all their joints) and packed into at most
``num_bodies`` actor tracks: an id joins the first track whose frames it does not overlap, or is
dropped. Frames where no actor remains are dropped and counted.

**Missing skeletons.** The dataset authors list 302 NTU-60 and 535 NTU-120 samples whose skeletons
are missing or incomplete; :func:`ntu_missing_samples` returns them (our compact transcription of
the published names, expanded at call time).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import SkeletonFormatError
from ..sample import SkeletonDataset, SkeletonSample
from .files import dataset_files

log = logging.getLogger(__name__)

NUM_JOINTS = 25
NTU_NAME_RE = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})", re.IGNORECASE)

# The 120 action classes in label order (A001 = index 0). Short forms as commonly used in the
# literature (and as keys of published per-class description files); A001-A060 are NTU-60.
# fmt: off
NTU120_CLASSES: list[str] = [
    "drink water", "eat meal", "brush teeth", "brush hair", "drop", "pick up", "throw", "sit down",
    "stand up", "clapping", "reading", "writing", "tear up paper", "put on jacket", "take off jacket",
    "put on a shoe", "take off a shoe", "put on glasses", "take off glasses", "put on a hat/cap",
    "take off a hat/cap", "cheer up", "hand waving", "kicking something", "reach into pocket",
    "hopping", "jump up", "phone call", "play with phone/tablet", "type on a keyboard",
    "point to something", "taking a selfie", "check time (from watch)", "rub two hands",
    "nod head/bow", "shake head", "wipe face", "salute", "put palms together",
    "cross hands in front", "sneeze/cough", "staggering", "falling down", "headache", "chest pain",
    "back pain", "neck pain", "nausea/vomiting", "fan self", "punch/slap", "kicking", "pushing",
    "pat on back", "point finger", "hugging", "giving object", "touch pocket", "shaking hands",
    "walking towards", "walking apart",
    # NTU-120 additions (A061-A120)
    "put on headphone", "take off headphone", "shoot at basket", "bounce ball", "tennis bat swing",
    "juggle table tennis ball", "hush", "flick hair", "thumb up", "thumb down", "make OK sign",
    "make victory sign", "staple book", "counting money", "cutting nails", "cutting paper",
    "snap fingers", "open bottle", "sniff/smell", "squat down", "toss a coin", "fold paper",
    "ball up paper", "play magic cube", "apply cream on face", "apply cream on hand", "put on bag",
    "take off bag", "put object into bag", "take object out of bag", "open a box",
    "move heavy objects", "shake fist", "throw up cap/hat", "capitulate", "cross arms",
    "arm circles", "arm swings", "run on the spot", "butt kicks", "cross toe touch", "side kick",
    "yawn", "stretch oneself", "blow nose", "hit with object", "wield knife", "knock over",
    "grab stuff", "shoot with gun", "step on foot", "high-five", "cheers and drink",
    "carry object", "take a photo", "follow", "whisper", "exchange things", "support somebody",
    "rock-paper-scissors",
]
# fmt: on
NTU60_CLASSES: list[str] = NTU120_CLASSES[:60]

# Samples with missing or incomplete skeletons, as listed by the dataset authors (302 in setups
# 1-17 = NTU-60; 535 in all = NTU-120). Our compact transcription: one line per setup,
# "S<setup>" then "<camera>.<performer>.<replication>:<actions>" groups; "a-b" is a run of actions.
_MISSING_COMPACT = """
S1 2.5.2:8 2.6.1:8 3.2.1:55 3.2.2:12 3.5.2:4-6 3.6.2:8
S2 2.11.2:30 3.8.1:20 3.10.2:10 3.11.2:7,11 3.14.2:7
S3 1.19.1:55 2.2.2:55 2.18.2:55 3.2.1:55 3.16.1:55 3.18.2:24
S4 2.3.1:13 2.8.1:9 2.20.1:3,4,12,20,21,36
S5 2.4.1:1,3 2.10.1:16,17,48,49 2.16.1:9,10 2.18.1:3,28,29 3.16.2:9 3.18.2:13 3.21.2:57
S6 1.1.2:55 2.7.1:5,6 2.16.1:43,51,52 2.22.1:12 2.23.1:20-23 2.24.1:18,19 3.1.2:13 3.7.2:9,10,25
   3.16.1:60 3.17.1:55 3.17.2:13-15 3.22.2:13
S7 1.18.2:50 1.25.2:51 1.28.1:50-52 2.8.2:8 2.15.2:55 2.26.1:8-12,50 2.27.1:11,13 2.28.2:55 3.7.1:2,4
   3.19.1:60 3.27.2:1-13
S8 2.1.1:9,10,14-16,18,19 2.8.2:59 2.25.1:60 2.29.1:4 2.31.1:5,6 2.32.1:18 2.34.1:18,19 2.35.1:59
   2.35.2:2,5 3.7.1:9,16-23,25,26,28,29 3.7.2:3 3.8.2:50 3.25.2:2,11,12,16,20,22,23,30-33,49,60
   3.31.1:1 3.31.2:4,14-17 3.32.2:13 3.33.2:1,11,12 3.34.2:1,12,22-24,44,45 3.35.2:16-21
S9 2.7.1:1,3,14 2.8.1:14 2.15.2:50 2.16.1:2 2.17.1:28,29 3.17.2:30 3.25.2:54
S10 1.7.2:20 2.16.2:55 2.17.1:5,18,19 2.19.1:1 2.25.1:12 3.7.2:43 3.8.2:3 3.16.1:55 3.17.2:55
S11 1.2.1:8 1.18.2:50 2.8.2:59 2.16.2:55 2.17.1:20,21 2.18.2:55 2.27.1:9,10,37 3.1.1:55 3.2.1:55
   3.8.2:12 3.15.1:55 3.16.1:55 3.19.1:55 3.25.1:55 3.28.2:55
S12 1.19.1:60 1.19.2:60 2.15.1:55 2.17.2:12 2.25.1:60 3.8.1:57 3.15.1:55 3.15.2:55 3.16.1:55
   3.17.2:55 3.18.1:55,57 3.19.2:11,12 3.25.1:55 3.27.1:55 3.27.2:9 3.28.1:35 3.28.2:55
S13 1.15.1:54 1.17.2:54 1.18.1:16 1.28.1:40 2.15.1:54 2.17.2:54 2.28.1:40 3.8.2:59 3.15.1:54
   3.17.2:54 3.25.2:22 3.27.1:55 3.28.1:40
S14 1.27.2:40 2.15.1:3 2.19.1:29 2.25.2:59 2.27.2:40 2.39.1:50 3.7.2:59 3.15.2:55 3.19.2:55
   3.25.1:48 3.27.2:40
S15 1.8.2:40 1.16.1:55 1.17.1:55 1.17.2:55 2.7.1:59 2.8.1:3,4 2.8.2:40 2.15.1:2 2.16.1:1 2.16.2:55
   3.8.2:7,11,12,28,40 3.25.2:12,17,20,21,30,33,34,36,37,44
S16 1.19.2:40 1.25.1:11,12,60 1.40.1:55 1.40.2:55 2.8.1:11 2.19.2:40 2.25.2:12 3.8.1:11 3.8.2:2-4,6,9
   3.19.2:40 3.39.2:16
S17 1.16.2:31 2.7.1:13 2.8.1:9 2.15.1:42 2.16.2:31,55 3.7.2:13 3.8.1:59 3.16.2:31 3.17.1:55 3.20.1:59
S19 1.46.1:75 2.42.1:94-102 2.49.2:74,79 2.51.1:61 3.46.1:61 3.46.2:61,62
S20 2.41.1:63,64 2.44.1:63,64,66,84 2.54.1:81
S21 1.59.1:108 2.55.1:65,92,93 2.57.1:64 2.58.1:63,64 2.59.1:74-79 3.57.2:78,79,94
S22 2.61.1:113 3.61.2:61,62 3.63.2:61-64,78 3.64.2:61,62 3.65.2:61,62,119 3.67.2:64
S23 2.55.1:114 2.55.2:92 2.59.1:75 2.63.1:75 3.55.2:93,94 3.61.2:61 3.64.1:92
S24 1.63.1:109 2.62.2:74 2.67.1:100-103 3.62.2:74 3.63.2:61,62
S25 1.55.2:119 3.56.2:119 3.59.2:115
S26 2.44.1:61,62 2.70.1:92 3.69.2:75 3.74.2:61,62 3.75.1:117,118
S27 1.82.1:63 2.44.2:92 2.79.1:61-64 2.82.1:92 2.84.1:61,62 2.86.1:61 3.41.2:87 3.80.2:61 3.82.2:61,62
   3.86.2:61,62
S28 1.87.1:61 2.41.1:91 2.87.1:61 3.42.2:64 3.46.2:63,66-72,74,75,77,81-84 3.48.2:61,62,73 3.73.2:73
   3.87.1:61 3.87.2:61,62
S29 1.43.2:92 1.44.2:92 1.48.1:73 1.89.1:63 2.41.1:74,84 2.44.1:91 2.48.1:75,81 2.74.1:81,95,96
   2.80.1:91 2.88.1:66 2.89.1:65 2.90.1:67 3.8.2:65,67 3.41.1:89 3.43.1:80,92,105 3.43.2:85,86
   3.44.2:106 3.48.1:65 3.48.2:73-76,92,94 3.51.2:73-86,110 3.67.1:98 3.74.2:110 3.80.2:66
   3.88.2:78 3.89.1:75 3.89.2:61-63 3.90.2:92,95
S30 2.91.2:91-105 3.44.2:65,81,84
S31 2.42.1:111 2.51.1:61,62 2.67.1:67-72 2.82.1:75 2.82.2:117 2.97.1:61,62 3.43.2:74,75 3.44.2:94
   3.82.2:67-73,75-77,84-86
S32 2.67.1:92 3.67.2:66,67,75-77
"""


def _expand_missing() -> list[str]:
    names: list[str] = []
    setup = 0
    for tok in _MISSING_COMPACT.split():
        if tok.startswith("S"):
            setup = int(tok[1:])
            continue
        cpr, acts = tok.split(":")
        cam, perf, rep = (int(x) for x in cpr.split("."))
        for part in acts.split(","):
            lo, _, hi = part.partition("-")
            for a in range(int(lo), int(hi or lo) + 1):
                names.append(f"S{setup:03d}C{cam:03d}P{perf:03d}R{rep:03d}A{a:03d}")
    return names


def ntu_missing_samples(version: int = 120) -> frozenset[str]:
    """Names (``S001C002P005R002A008`` style) of the samples with missing skeletons.

    ``version=60``: the 302 of NTU RGB+D 60 (setups 1-17); ``version=120``: all 535.
    """
    if version not in (60, 120):
        raise ValueError(f"NTU version must be 60 or 120, got {version!r}")
    names = _expand_missing()
    if version == 60:
        names = [n for n in names if int(n[1:4]) <= 17]
    return frozenset(names)


def parse_ntu_name(name: str | os.PathLike) -> dict[str, int]:
    """``S001C002P003R001A010.skeleton`` -> setup, camera, performer, replication, action (1-based)."""
    stem = Path(name).name
    m = NTU_NAME_RE.search(stem)
    if not m:
        raise SkeletonFormatError(
            name, "file name does not follow the NTU pattern SsssCcccPpppRrrrAaaa (e.g. S001C001P001R001A001)"
        )
    s, c, p, r, a = (int(g) for g in m.groups())
    return {"setup": s, "camera": c, "performer": p, "replication": r, "action": a}


class NtuMissingSkeleton(SkeletonFormatError):
    """A file with no frames or no body in any frame (one of the samples with missing skeletons)."""


@dataclass
class NtuSkeleton:
    """Everything a ``.skeleton`` file holds, one row per (frame, body) record.

    ``joints`` is (B, 25, 3) float32 camera-space metres for the B body records of the file;
    ``frame[b]`` is the frame of record b (0-based, in file order); ``body_id[b]`` its tracking id.
    ``color`` (B, 25, 2) pixel coordinates in the colour image, ``tracking`` (B, 25) joint tracking
    states (0 not tracked, 1 inferred, 2 tracked) and ``info`` (B, 9) the rest of the body line are
    filled when the file was read with ``full=True``.
    """

    path: str
    num_frames: int  # as declared in the file
    body_counts: np.ndarray  # (F,) bodies per frame
    frame: np.ndarray  # (B,) int64
    body_id: np.ndarray  # (B,) int64
    joints: np.ndarray  # (B, 25, 3) float32
    color: np.ndarray | None = None  # (B, 25, 2) float32
    tracking: np.ndarray | None = None  # (B, 25) uint8
    info: np.ndarray | None = None  # (B, 9) float32

    @property
    def num_records(self) -> int:
        return int(self.frame.size)


# ------------------------------------------------------------------------------------------
# fast path


class _NotCanonical(Exception):
    """Internal: the fast parser met something it does not handle; use the careful parser."""


_NUMERIC_AND_SPACE = b"0123456789.- \t\r\n"
_P10 = 10.0 ** np.arange(23)
_JOINT_COLS_XYZ = (0, 1, 2)
_JOINT_COLS_FULL = (0, 1, 2, 5, 6, 11)


_DIGIT = np.zeros(256, dtype=np.float64)  # byte -> digit value; 0 for '.', '-' and separators
_DIGIT[48:58] = np.arange(10)
_DOT = np.zeros(256, dtype=np.float64)  # byte -> 1 for '.'
_DOT[46] = 1.0
_CHUNK = 2048  # tokens per block: keeps temporaries small (large ones cost page faults per call)


def _parse_decimals(b: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Convert the plain decimal tokens ``b[s:e]`` ([-]digits[.digits]) to float64, vectorised.

    Each token's last K bytes are gathered at once (K = the longest token) and read as one
    K-digit number with '.' and '-' as 0 digits; ``mod 10**len`` drops the bytes of neighbouring
    tokens, the same sum over dot indicators gives 10**decimals. The value is then the integer
    mantissa over 10**decimals: the correctly rounded double, exactly what ``float(token)``
    gives. Raises _NotCanonical on tokens that are not plain decimals.
    """
    n = s.size
    if n == 0:
        return np.zeros(0)
    lens = e - s
    k = int(lens.max())
    if k > 15 or int(lens.min()) < 1:
        raise _NotCanonical  # 15 digits keep every sum below 2**53, hence exact
    if int(e.min()) < k:  # a token too close to the start of the buffer for a full window
        b = np.concatenate([np.full(k, 32, dtype=np.uint8), b])
        s, e = s + k, e + k
    windows = np.ndarray((b.size - k + 1,), dtype=f"V{k}", buffer=b, strides=(1,))  # every k-byte run
    place = _P10[k - 1 :: -1]  # (K,)
    raw = np.empty((2, n))  # digits as one number, dot indicators as one number
    for c0 in range(0, n, _CHUNK):
        ch = windows[e[c0 : c0 + _CHUNK] - k].view(np.uint8).reshape(-1, k)  # (m, K)
        raw[0, c0 : c0 + _CHUNK] = _DIGIT.take(ch) @ place
        raw[1, c0 : c0 + _CHUNK] = _DOT.take(ch) @ place
    scale = _P10[lens]
    digits = np.fmod(raw[0], scale)  # the token's digits, its dot read as a 0
    dot = np.fmod(raw[1], scale)  # 10**decimals, or 0 without a dot
    has_dot = dot > 0
    ndec = np.searchsorted(_P10, dot)
    neg = b[s] == 45
    if np.any(has_dot & (_P10[np.minimum(ndec, 22)] != dot)) or np.any(lens - has_dot - neg < 1):
        raise _NotCanonical  # two dots in a token, or a token that is only "-" or "."
    ndec[~has_dot] = 0
    low = np.fmod(digits, _P10[ndec])
    mant = np.where(has_dot, (digits - low) / 10.0 + low, digits)  # drop the dot's 0 digit
    val = mant / _P10[ndec]
    val[neg] = -val[neg]
    return val


def _parse_fast(text: bytes, path: str, full: bool) -> NtuSkeleton:
    if text.translate(None, _NUMERIC_AND_SPACE):
        raise _NotCanonical  # letters (nan, inf, exponents, garbage)
    b = np.frombuffer(text, dtype=np.uint8)
    n = b.size
    nonws = np.empty(n + 1, dtype=bool)  # nonws[i + 1]: byte i is part of a token
    nonws[0] = False
    np.greater(b, 32, out=nonws[1:])
    edges = np.flatnonzero(nonws[1:] != nonws[:-1])  # alternating token starts and ends
    if edges.size % 2:
        edges = np.concatenate([edges, [n]])  # the file ends inside a token (no final newline)
    starts, ends = edges[0::2], edges[1::2]  # (ntok,) byte range of every token
    ntok = starts.size
    if ntok == 0:
        raise _NotCanonical

    def tok_int(k: int) -> int:
        if k >= ntok:
            raise _NotCanonical
        try:
            return int(text[starts[k] : ends[k]])
        except ValueError:
            raise _NotCanonical from None

    num_frames = tok_int(0)
    k = 1
    counts: list[int] = []
    count_tok: list[int] = []  # token index of each frame's body count
    body_tok: list[int] = []  # token index of each body's info line
    for _ in range(num_frames):
        nb = tok_int(k)
        count_tok.append(k)
        counts.append(nb)
        k += 1
        for _ in range(nb):
            body_tok.append(k)
            if tok_int(k + 10) != NUM_JOINTS:
                raise _NotCanonical
            k += 11 + 12 * NUM_JOINTS
    if k != ntok or min(counts, default=0) < 0:
        raise _NotCanonical
    minus = np.flatnonzero(b == 45)  # every '-' must follow a separator (one at byte 0 reads itself)
    if minus.size and np.any(b[np.maximum(minus - 1, 0)] > 32):
        raise _NotCanonical  # a '-' inside a token
    bt = np.asarray(body_tok, dtype=np.int64)  # (B,)
    nbody = bt.size
    joint_line = bt[:, None] + 11 + 12 * np.arange(NUM_JOINTS)  # (B, 25) first token of joint lines
    # every line must hold exactly the tokens the structure says: each line's first token sits
    # after a newline, and the file has exactly as many lines
    line_starts = np.concatenate([np.asarray(count_tok, dtype=np.int64), bt, bt + 10, joint_line.ravel()])
    expected_lines = 1 + line_starts.size
    if line_starts.size and not np.all(b[starts[line_starts] - 1] == 10):
        raise _NotCanonical
    nl = text.count(b"\n")
    if not (nl == expected_lines or (nl == expected_lines - 1 and not text.endswith(b"\n"))):
        raise _NotCanonical
    cols = np.asarray(_JOINT_COLS_FULL if full else _JOINT_COLS_XYZ)
    jt = (joint_line[:, :, None] + cols).ravel()
    sel = jt if not full else np.concatenate([jt, (bt[:, None] + np.arange(1, 10)).ravel()])
    vals = _parse_decimals(b, starts[sel], ends[sel])
    jv = vals[: jt.size].reshape(nbody, NUM_JOINTS, cols.size)
    body_id = np.array([int(text[starts[t] : ends[t]]) for t in bt], dtype=np.int64)
    frame = np.repeat(np.arange(num_frames), counts)
    out = NtuSkeleton(
        path=path,
        num_frames=num_frames,
        body_counts=np.asarray(counts, dtype=np.int64),
        frame=frame,
        body_id=body_id,
        joints=jv[..., :3].astype(np.float32),
    )
    if full:
        out.color = jv[..., 3:5].astype(np.float32)
        out.tracking = jv[..., 5].astype(np.uint8)
        out.info = vals[jt.size :].reshape(nbody, 9).astype(np.float32)
    return out


# ------------------------------------------------------------------------------------------
# careful path: line by line, every problem named with its line and frame


def _parse_careful(text: bytes, path: str, full: bool) -> NtuSkeleton:
    raw_lines = text.decode("utf-8", errors="replace").splitlines()
    # (line number, fields) of non-blank lines
    lines = [(i + 1, ln.split()) for i, ln in enumerate(raw_lines) if ln.strip()]
    pos = 0

    def take(what: str, frame: int | None) -> tuple[int, list[str]]:
        nonlocal pos
        if pos >= len(lines):
            where = f"line {len(raw_lines) + 1}" + (f", frame {frame}" if frame else "")
            raise SkeletonFormatError(
                path, f"file is truncated: expected {what}, found the end of the file", where
            )
        item = lines[pos]
        pos += 1
        return item

    def as_int(ln: int, fields: list[str], what: str, frame: int | None) -> int:
        where = f"line {ln}" + (f", frame {frame}" if frame else "")
        if len(fields) != 1:
            raise SkeletonFormatError(path, f"expected {what} (one integer), got {len(fields)} fields", where)
        try:
            v = int(fields[0])
        except ValueError:
            raise SkeletonFormatError(
                path, f"expected {what} (an integer), got {fields[0]!r}", where
            ) from None
        if v < 0:
            raise SkeletonFormatError(path, f"{what} is negative ({v})", where)
        return v

    ln, f = take("the frame count", None)
    num_frames = as_int(ln, f, "the frame count", None)
    counts, frames, ids, joints, colors, tracks, infos = [], [], [], [], [], [], []
    for fi in range(num_frames):
        fr = fi + 1
        ln, f = take(f"the body count of frame {fr}", fr)
        nb = as_int(ln, f, "the body count", fr)
        counts.append(nb)
        for bi in range(nb):
            ln, f = take(f"the info line of body {bi + 1}", fr)
            where = f"line {ln}, frame {fr}"
            if len(f) != 10:
                raise SkeletonFormatError(
                    path, f"a body info line has 10 numbers (body id ... tracking state), got {len(f)}", where
                )
            try:
                bid = int(f[0])
                info = [float(x) for x in f[1:]]
            except ValueError:
                bad = next(x for x in f if not _is_number(x))
                raise SkeletonFormatError(
                    path, f"non-numeric value {bad!r} in a body info line", where
                ) from None
            ln, f = take("the joint count", fr)
            nj = as_int(ln, f, "the joint count", fr)
            if nj != NUM_JOINTS:
                raise SkeletonFormatError(
                    path,
                    f"body has {nj} joints; NTU RGB+D bodies have {NUM_JOINTS}",
                    f"line {ln}, frame {fr}",
                )
            rows = []
            for _ in range(nj):
                ln, f = take(f"a joint line of body {bi + 1}", fr)
                where = f"line {ln}, frame {fr}"
                if len(f) != 12:
                    raise SkeletonFormatError(
                        path,
                        f"a joint line has 12 numbers (x y z depthX depthY colorX colorY orientation w x y z "
                        f"trackingState), got {len(f)}",
                        where,
                    )
                try:
                    row = [float(x) for x in f]
                except ValueError:
                    bad = next(x for x in f if not _is_number(x))
                    raise SkeletonFormatError(
                        path, f"non-numeric value {bad!r} in a joint line", where
                    ) from None
                if not all(np.isfinite(row[:3])):
                    raise SkeletonFormatError(
                        path, f"non-finite joint coordinate in {' '.join(f[:3])!r}", where
                    )
                rows.append(row)
            arr = np.asarray(rows, dtype=np.float64)
            frames.append(fi)
            ids.append(bid)
            joints.append(arr[:, :3])
            colors.append(arr[:, 5:7])
            tracks.append(arr[:, 11])
            infos.append(info)
    if pos < len(lines):
        ln, _ = lines[pos]
        raise SkeletonFormatError(
            path,
            f"unexpected data after the last frame (the file declares {num_frames} frames)",
            f"line {ln}",
        )
    nbody = len(ids)
    out = NtuSkeleton(
        path=path,
        num_frames=num_frames,
        body_counts=np.asarray(counts, dtype=np.int64),
        frame=np.asarray(frames, dtype=np.int64),
        body_id=np.asarray(ids, dtype=np.int64),
        joints=np.asarray(joints, dtype=np.float32).reshape(nbody, NUM_JOINTS, 3),
    )
    if full:
        out.color = np.asarray(colors, dtype=np.float32).reshape(nbody, NUM_JOINTS, 2)
        out.tracking = np.asarray(tracks, dtype=np.uint8).reshape(nbody, NUM_JOINTS)
        out.info = np.asarray(infos, dtype=np.float32).reshape(nbody, 9)
    return out


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def read_ntu_skeleton(path: str | os.PathLike, *, full: bool = False) -> NtuSkeleton:
    """Parse one ``.skeleton`` file with all its bodies (see the module docstring).

    ``full=True`` also reads colour-image coordinates, joint tracking states and body info lines.
    Raises :class:`SkeletonFormatError` naming the line and frame for malformed files.
    """
    path = str(path)
    try:
        text = Path(path).read_bytes()
    except OSError as e:
        raise SkeletonFormatError(path, f"cannot read file: {e.strerror or e}") from None
    try:
        return _parse_fast(text, path, full)
    except _NotCanonical:
        return _parse_careful(text, path, full)


# ------------------------------------------------------------------------------------------
# denoising


@dataclass
class NtuDenoiseInfo:
    frames_declared: int
    frames_without_body: int  # frames of the file with no body at all (dropped)
    frames_dropped: int  # all frames dropped (without body, or with only dropped bodies)
    bodies: int  # distinct body ids in the file
    dropped_bodies: dict[str, str] = field(default_factory=dict)  # body id -> reason
    actors: list[list[str]] = field(default_factory=list)  # body ids packed into each actor track

    def as_dict(self) -> dict[str, Any]:
        return {
            "frames_declared": self.frames_declared,
            "frames_without_body": self.frames_without_body,
            "frames_dropped": self.frames_dropped,
            "bodies": self.bodies,
            "dropped_bodies": dict(self.dropped_bodies),
            "actors": [list(a) for a in self.actors],
        }


def denoise_ntu(
    skel: NtuSkeleton,
    num_bodies: int = 2,
    *,
    length_threshold: int = 11,
    spread_threshold: float = 0.8,
    noisy_ratio: float = 0.69754,
    channels: str = "xyz",
) -> tuple[np.ndarray, NtuDenoiseInfo]:
    """Clean a parsed file into a (T, num_bodies, 25, C) float32 array (see the module docstring).

    ``channels="xyz"`` gives camera-space metres; ``"color"`` gives colour-image pixels plus a
    confidence from the joint tracking state (x, y, score with score 1 tracked, 0.5 inferred, 0
    not tracked; needs a file read with ``full=True``).
    """
    nrec = skel.num_records
    if nrec == 0:
        raise NtuMissingSkeleton(
            skel.path, f"no body in any of its {skel.num_frames} frames (a sample with a missing skeleton)"
        )
    if channels == "color":
        if skel.color is None or skel.tracking is None:
            raise ValueError("channels='color' needs the file read with full=True")
        score = skel.tracking.astype(np.float32)[..., None] / 2.0
        values = np.concatenate([skel.color, score], axis=-1)  # (B, 25, 3)
    elif channels == "xyz":
        values = skel.joints
    else:
        raise ValueError(f"channels must be 'xyz' or 'color', got {channels!r}")

    # frames with no body are removed first; frame indices become compact
    present = np.zeros(skel.num_frames, dtype=bool)
    present[skel.frame] = True
    compact = np.cumsum(present) - 1
    frame = compact[skel.frame]  # (B,)
    num_kept_frames = int(present.sum())

    ids, inv = np.unique(skel.body_id, return_inverse=True)  # inv: (B,) id index of each record
    nid = ids.size
    length = np.bincount(inv, minlength=nid)
    alive = np.ones(nid, dtype=bool)
    dropped: dict[str, str] = {}
    if nid > 1:
        short = length <= length_threshold
        if short.all():
            short[np.argmax(length)] = False  # never drop every body
        for i in np.flatnonzero(short):
            dropped[str(ids[i])] = f"length {int(length[i])} <= {length_threshold} frames"
        alive &= ~short

    j = skel.joints  # (B, 25, 3)
    ext = j.max(axis=1) - j.min(axis=1)  # (B, 3)
    noisy = ext[:, 0] > spread_threshold * ext[:, 1]  # (B,) lying / fragmentary skeletons
    motion = _motion_per_id(j, inv, nid)
    motion_valid = _motion_per_id(j[~noisy], inv[~noisy], nid)
    noisy_frac = np.bincount(inv, weights=noisy, minlength=nid) / np.maximum(length, 1)
    if alive.sum() > 1:
        first_frame = np.full(nid, np.iinfo(np.int64).max)
        np.minimum.at(first_frame, inv, frame)
        for i in np.argsort(first_frame, kind="stable"):
            if alive.sum() == 1:
                break
            if not alive[i] or noisy_frac[i] == 0:
                continue
            if noisy_frac[i] >= noisy_ratio:
                alive[i] = False
                dropped[str(ids[i])] = f"spread: {noisy_frac[i]:.0%} of its frames are wider than tall"
            else:
                motion[i] = min(motion[i], motion_valid[i])

    # rank by motion, pack into actor tracks by non-overlapping frame intervals
    start = np.full(nid, np.iinfo(np.int64).max)
    end = np.full(nid, -1)
    np.minimum.at(start, inv, frame)
    np.maximum.at(end, inv, frame)
    order = [int(i) for i in np.argsort(-motion, kind="stable") if alive[i]]
    actor = np.full(nid, -1)
    tracks: list[list[int]] = [[] for _ in range(num_bodies)]
    for i in order:
        for a in range(num_bodies):
            if all(end[o] < start[i] or start[o] > end[i] for o in tracks[a]):
                tracks[a].append(i)
                actor[i] = a
                break
        else:
            dropped[str(ids[i])] = "overlaps every kept actor"

    rec_actor = actor[inv]  # (B,)
    keep = rec_actor >= 0
    out = np.zeros((num_kept_frames, num_bodies, NUM_JOINTS, values.shape[-1]), dtype=np.float32)
    out[frame[keep], rec_actor[keep]] = values[keep]
    filled = np.zeros(num_kept_frames, dtype=bool)
    filled[frame[keep]] = True
    out = out[filled]
    info = NtuDenoiseInfo(
        frames_declared=skel.num_frames,
        frames_without_body=int(skel.num_frames - num_kept_frames),
        frames_dropped=int(skel.num_frames - out.shape[0]),
        bodies=int(nid),
        dropped_bodies=dropped,
        actors=[[str(ids[i]) for i in t] for t in tracks if t],
    )
    return out, info


def _motion_per_id(j: np.ndarray, inv: np.ndarray, nid: int) -> np.ndarray:
    """Sum over x, y, z of the variance of all joints of each body id: (nid,)."""
    n = np.bincount(inv, minlength=nid).astype(np.float64) * j.shape[1]
    s1 = np.stack([np.bincount(inv, weights=j[:, :, c].sum(1), minlength=nid) for c in range(3)], 1)
    s2 = np.stack(
        [
            np.bincount(inv, weights=(j[:, :, c].astype(np.float64) ** 2).sum(1), minlength=nid)
            for c in range(3)
        ],
        1,
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        var = s2 / n[:, None] - (s1 / n[:, None]) ** 2
    return np.where(n > 0, np.maximum(var, 0).sum(1), 0.0)


# ------------------------------------------------------------------------------------------
# samples and datasets


def ntu_classes_for(actions: Iterable[int]) -> list[str]:
    """NTU-60 names when every action id is <= 60, else the 120."""
    return NTU60_CLASSES if max(actions, default=0) <= 60 else NTU120_CLASSES


def read_ntu_file(
    path: str | os.PathLike,
    *,
    denoise: bool = True,
    num_bodies: int = 2,
    channels: str = "xyz",
    classes: list[str] | None = None,
) -> SkeletonSample:
    """Read one NTU file into a sample: (T, num_bodies, 25, 3) ``ntu25``, label = action - 1.

    ``denoise=False`` keeps the ``num_bodies`` longest-tracked body ids as they are (no length /
    spread filtering), dropping only frames without any body. Raises :class:`NtuMissingSkeleton`
    for a file without any body and :class:`SkeletonFormatError` for malformed files.
    """
    path = str(path)
    meta = parse_ntu_name(path)
    skel = read_ntu_skeleton(path, full=channels == "color")
    if denoise:
        data, info = denoise_ntu(skel, num_bodies, channels=channels)
    else:
        data, info = denoise_ntu(
            skel, num_bodies, length_threshold=-1, spread_threshold=np.inf, channels=channels
        )
    if data.shape[0] == 0:
        raise NtuMissingSkeleton(path, "no frame left after denoising")
    classes = classes or NTU120_CLASSES
    label = meta["action"] - 1
    if label >= len(classes):
        raise SkeletonFormatError(
            path, f"action A{meta['action']:03d} is beyond the {len(classes)} classes given"
        )
    name = NTU_NAME_RE.search(Path(path).name).group(0).upper()
    return SkeletonSample(
        data=data,
        layout="ntu25",
        label=label,
        label_name=classes[label],
        subject=meta["performer"],
        view=meta["camera"],
        setup=meta["setup"],
        source=path,
        extra={"name": name, "replication": meta["replication"], "denoise": info.as_dict()},
    )


LARGE_RAW_NTU = 2000  # raw folders above this many files: load_ntu suggests preparing a cache


def find_ntu_files(root: str | os.PathLike) -> list[Path]:
    """All ``*.skeleton`` files under ``root`` (recursively), sorted by name; an error if none."""
    return dataset_files(root, "NTU", "*.skeleton", what=".skeleton")


def load_ntu(
    root: str | os.PathLike,
    *,
    ignore: Iterable[str] | None = None,
    denoise: bool = True,
    num_bodies: int = 2,
    skipped: list[dict[str, str]] | None = None,
) -> SkeletonDataset:
    """Read every ``.skeleton`` file under ``root`` into memory (for small folders; prepare a cache
    with ``llmskel data prepare --format ntu`` for the full dataset).

    Files named in ``ignore`` (names without extension) and files with missing skeletons are
    skipped; malformed files too. Each skipped file is appended to ``skipped`` as
    ``{"file", "error"}`` and logged. Above ``LARGE_RAW_NTU`` files a warning suggests preparing a
    cache instead; the folder is listed once.
    """
    files = find_ntu_files(root)
    if len(files) > LARGE_RAW_NTU:
        log.warning(
            "reading %d raw NTU files into memory; `llmskel data prepare --format ntu --src %s --out CACHE` "
            "once, then data.root: CACHE, is much faster",
            len(files),
            root,
        )
    ignore_set = {n.upper() for n in (ignore or ())}
    classes = ntu_classes_for(parse_ntu_name(f)["action"] for f in files if NTU_NAME_RE.search(f.name))
    samples = []
    skipped = skipped if skipped is not None else []
    for f in files:
        m = NTU_NAME_RE.search(f.name)
        if m and m.group(0).upper() in ignore_set:
            skipped.append({"file": str(f), "error": "in the ignore list"})
            continue
        try:
            samples.append(read_ntu_file(f, denoise=denoise, num_bodies=num_bodies, classes=classes))
        except SkeletonFormatError as e:
            skipped.append({"file": str(f), "error": str(e)})
            log.warning("skipped %s", e)
    if not samples:
        first = f"; first: {skipped[0]['error']}" if skipped else ""
        raise SkeletonFormatError(root, f"no readable NTU .skeleton file ({len(skipped)} skipped{first})")
    return SkeletonDataset(samples, classes, "ntu25", name="ntu")
