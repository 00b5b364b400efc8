"""The types of a project folder's ``project.json`` fields, as the app writes them: the
schema (:mod:`.json_file`) it is checked against on opening, so a value of the wrong type
is refused with the file and the field named instead of failing inside the app. The Train
and Generate sections are the panels' settings dataclasses
(:func:`micro3d_gui.session.project.project_schema`).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _PlaneFile:
    paths: list[str]
    options: dict[str, bool]  # preprocess.orientation.PlaneOptions: transpose, flips


@dataclass
class _VolumeFile:
    path: str
    cut: bool


@dataclass
class _SegmentationFile:
    method: str
    phases: int
    thresholds_text: str | None
    thresholds: list[float]


@dataclass
class _DataFile:
    planes: dict[str, _PlaneFile]
    volume: _VolumeFile | None
    segmentation: _SegmentationFile
    symmetry: dict | None


@dataclass
class _ViewFile:
    mode: str
    volume: int
    voxel_size: float
    unit: str
    phase_names: list[str] | None
    phase_colours: list[str] | None
    phase_opacities: list[float] | None


@dataclass
class ProjectFile:
    """``project.json`` as :func:`save_project` writes it (``train`` and ``generate``:
    the panels' settings dataclasses)."""

    format: str
    version: int
    data: _DataFile
    train: dict
    generate: dict
    model_path: str
    volumes: list[str]
    num_phases: int | None
    view: _ViewFile
    analysis: str | None  # the saved analysis's file in the folder
