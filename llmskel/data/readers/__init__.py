"""Readers for real skeleton formats; each returns :class:`~llmskel.data.sample.SkeletonSample`s or a
:class:`~llmskel.data.sample.SkeletonDataset`, and names the file, the place and the problem on bad input.

==============  ==========================================  =====================================
format          one file / record                           a whole dataset
==============  ==========================================  =====================================
NTU RGB+D       :func:`read_ntu_file`, :func:`read_ntu_skeleton`  :func:`load_ntu` (raw folder)
NW-UCLA         :func:`read_nwucla_file`                    :func:`load_nwucla`
UTKinect        :func:`cut_segments`                        :func:`load_utkinect`
pyskl pickle    :func:`annotation_to_sample`                :func:`load_pyskl` (opt-in pickle)
own arrays      :func:`read_array_file`                     :func:`load_folder` (+ labels CSV)
COCO-17 JSON    :func:`read_coco_json`                      :func:`load_folder`
==============  ==========================================  =====================================
"""

from .folder import load_folder, read_array_file, read_coco_json, track_persons
from .ntu import (
    NTU60_CLASSES,
    NTU120_CLASSES,
    NtuMissingSkeleton,
    denoise_ntu,
    load_ntu,
    ntu_missing_samples,
    parse_ntu_name,
    read_ntu_file,
    read_ntu_skeleton,
)
from .nwucla import NWUCLA_CLASSES, load_nwucla, read_nwucla_file
from .pyskl import PickleNotAllowedError, annotation_to_sample, infer_layout, load_pyskl
from .utkinect import UTKINECT_CLASSES, cut_segments, load_utkinect, parse_utkinect_labels

__all__ = [
    "NTU60_CLASSES",
    "NTU120_CLASSES",
    "NWUCLA_CLASSES",
    "UTKINECT_CLASSES",
    "NtuMissingSkeleton",
    "PickleNotAllowedError",
    "annotation_to_sample",
    "cut_segments",
    "denoise_ntu",
    "infer_layout",
    "load_folder",
    "load_ntu",
    "load_nwucla",
    "load_pyskl",
    "load_utkinect",
    "ntu_missing_samples",
    "parse_ntu_name",
    "parse_utkinect_labels",
    "read_array_file",
    "read_coco_json",
    "read_ntu_file",
    "read_ntu_skeleton",
    "read_nwucla_file",
    "track_persons",
]
