"""The Data panel's state without Qt: micrographs per plane, their orientation options, the
segmentation settings and result, the reference volume, and the project data.

The napari ViewerModel pattern: :class:`DataModel` holds the data and does the work with the
same functions ``micro3d train`` / ``evaluate`` use
(:func:`~micro3d_gui.io.images.list_images` and :func:`~micro3d_gui.io.images.read_images`
to read, :func:`~micro3d_gui.preprocess.orientation.apply_plane_options` to orient,
:func:`~micro3d_gui.preprocess.segment.segment_planes` to segment,
:func:`~micro3d_gui.io.volume.read_volume` for a 3D stack), and ``qt.data_panel.DataPanel``
only draws it and forwards the user's edits. Nothing here asks a question or shows a message:
problems come back as exceptions or as lists of messages naming the file.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from ..core.planes import PLANES, check_plane, volume_plane_images
from ..core.symmetry import Symmetry
from ..errors import InputError, SegmentationError
from ..io.images import list_images, read_images
from ..io.volume import read_volume
from ..preprocess.orientation import PlaneOptions, apply_plane_options
from ..preprocess.segment import Segmentation, SegmentationConfig, segment_planes

#: A multipage TIFF with at least this many equal-shaped pages is taken as a 3D stack.
VOLUME_MIN_PAGES = 8
#: Segmentation methods: (SegmentationConfig.method, label in the Data panel).
METHODS = (("labelled", "Already labelled"), ("otsu", "Otsu (2 phases)"),
           ("multiotsu", "Multi-Otsu (K phases)"), ("manual", "Manual thresholds"))


@dataclass
class ImageSource:
    """Images (grey, as read) that came from one file; ``from_volume``: cut from a 3D stack."""

    path: Path
    images: list[np.ndarray]
    from_volume: bool = False


def is_volume_tiff(path: str | os.PathLike) -> bool:
    """True for a 3D stack: an ImageJ ZYX stack, or >= VOLUME_MIN_PAGES equal 2D pages."""
    p = Path(path)
    if p.suffix.lower() not in (".tif", ".tiff"):
        return False
    try:
        import tifffile

        with tifffile.TiffFile(p) as tif:
            series = tif.series[0]
            axes, shape = series.axes, series.shape
            if len(shape) != 3 or not axes.endswith("YX"):
                return False  # 2D, RGB pages or pages of different shapes
            return (tif.is_imagej and axes[0] == "Z") or shape[0] >= VOLUME_MIN_PAGES
    except Exception:  # unreadable: the image reader reports it with the file's name
        return False


def parse_thresholds(text: str) -> tuple[list[float], str | None]:
    """'90, 170' -> ([90.0, 170.0], None); the first bad token as the second item."""
    values = []
    for token in text.replace(";", ",").replace(" ", ",").split(","):
        token = token.strip()
        if not token:
            continue
        try:
            values.append(float(token))
        except ValueError:
            return values, token
    return values, None


def read_files(files: Iterable[Path]) -> list[tuple[Path, list[np.ndarray] | None, str | None]]:
    """Worker body: ``(path, images, None)`` per readable file, ``(path, None, why)`` per
    file that is not (the others are still read)."""
    out = []
    for f in files:
        try:
            out.append((Path(f), read_images(f), None))
        except InputError as exc:
            out.append((Path(f), None, str(exc)))
    return out


def segment_job(generation: int, images, config: SegmentationConfig, origins
                ) -> tuple[int, Segmentation, None]:
    """Worker body: the segmentation tagged with the :attr:`DataModel.generation` it was
    made for (an InputError when the images cannot be segmented so)."""
    return generation, segment_planes(images, config, origins=origins), None


class DataModel:
    """Micrographs per plane, orientation, segmentation and reference volume (no Qt).

    Every change bumps :attr:`generation` and drops the cached segmentation; a result
    computed elsewhere (a worker) is accepted by :meth:`segmentation_done` only when it is
    for the current generation.
    """

    def __init__(self) -> None:
        self.sources: dict[str, list[ImageSource]] = {p: [] for p in PLANES}
        #: Per plane, the files of its folders skipped as not images (said, never an error).
        self.skipped: dict[str, set[Path]] = {p: set() for p in PLANES}
        self.options: dict[str, PlaneOptions] = {p: PlaneOptions() for p in PLANES}
        self.volume: np.ndarray | None = None
        self.volume_path: Path | None = None
        self.volume_cut = False
        #: Segmentation controls as the user set them.
        self.method = "labelled"
        self.phases = 2
        self.thresholds_text = ""
        #: The material's symmetry as declared (core.symmetry), resolved when training.
        self.symmetry = Symmetry()
        self.generation = 0
        self._segmentation: Segmentation | None = None
        self._seg_error: str | None = None
        self._seg_valid = False

    # -- images ---------------------------------------------------------------------------
    def expand(self, paths: Iterable[str | os.PathLike], plane: str | None = None
               ) -> tuple[list[Path], list[str]]:
        """Files of the given files and folders (natural order) and the messages of those
        that are not images; the folders' other files join ``plane``'s :attr:`skipped`."""
        files, errors = [], []
        for src in paths:
            try:
                skipped: list[Path] = []
                files.extend(list_images(src, skipped))
                if plane is not None:
                    self.skipped[check_plane(plane)].update(skipped)
            except InputError as exc:
                errors.append(str(exc))
        return files, errors

    def has_file(self, plane: str, path: Path) -> bool:
        return path.resolve() in {s.path.resolve() for s in self.sources[check_plane(plane)]}

    def is_new_stack(self, path: Path) -> bool:
        """A 3D stack other than the reference volume already loaded (a project reload
        reads that one's pages as images)."""
        return is_volume_tiff(path) and not (self.volume_path is not None
                                             and path.resolve() == self.volume_path.resolve())

    def add_file(self, plane: str, path: Path) -> int:
        """Read one image file into ``plane``; the number of images (InputError if bad)."""
        return self.add_images(plane, path, read_images(path))

    def add_images(self, plane: str, path: Path, images: list[np.ndarray]) -> int:
        """Images read from ``path`` (:func:`read_files`) join ``plane``; their number."""
        self.sources[check_plane(plane)].append(ImageSource(Path(path), list(images)))
        self.invalidate()
        return len(images)

    def set_volume(self, path: str | os.PathLike, volume: np.ndarray, cut: bool,
                   plane: str | None = None, step: int = 1) -> None:
        """``volume [z, y, x]`` (read from ``path``) becomes the reference volume; ``cut``:
        its xy / xz / yz sections (every ``step``-th) become images of the three planes,
        else, with ``plane``, its pages become images of that plane."""
        path = Path(path)
        self.volume, self.volume_path, self.volume_cut = volume, path, bool(cut)
        for p in PLANES:  # a new volume replaces the images cut from an earlier one
            self.sources[p] = [s for s in self.sources[p] if not s.from_volume]
        if cut:
            for p, images in volume_plane_images(volume, step=step).items():
                self.sources[p].append(ImageSource(path, list(images), from_volume=True))
        elif plane is not None:
            self.sources[check_plane(plane)].append(ImageSource(path, list(volume)))
        self.invalidate()

    @staticmethod
    def read_volume(path: str | os.PathLike) -> np.ndarray:
        return read_volume(path)

    def clear(self, plane: str) -> None:
        self.sources[check_plane(plane)] = []
        self.skipped[plane] = set()
        self.invalidate()

    def clear_volume(self) -> None:
        for p in PLANES:
            self.sources[p] = [s for s in self.sources[p] if not s.from_volume]
        self.volume = self.volume_path = None
        self.volume_cut = False
        self.invalidate()

    def count(self, plane: str) -> int:
        return sum(len(s.images) for s in self.sources[check_plane(plane)])

    def raw_images(self, plane: str) -> list[np.ndarray]:
        """Images of ``plane`` as read (no orientation applied)."""
        return [im for s in self.sources[check_plane(plane)] for im in s.images]

    def images(self, plane: str, limit: int | None = None) -> list[np.ndarray]:
        """Grey images of ``plane`` with its orientation options applied (the first
        ``limit`` only, when given)."""
        options = self.options[check_plane(plane)]
        raw = (im for s in self.sources[plane] for im in s.images)
        return [apply_plane_options(im, options) for im in islice(raw, limit)]

    def image_origins(self, plane: str) -> list[Path]:
        """Per image of :meth:`images`, the file it came from."""
        return [s.path for s in self.sources[check_plane(plane)] for _ in s.images]

    def plane_paths(self) -> dict[str, list[Path]]:
        """Files per plane (each once, in the order added; a cut volume's path included)."""
        return {p: _unique(s.path for s in self.sources[p]) for p in PLANES}

    def set_options(self, plane: str, options: PlaneOptions) -> None:
        self.options[check_plane(plane)] = options
        self.invalidate()

    # -- symmetry -------------------------------------------------------------------------
    def set_symmetry(self, symmetry: Symmetry) -> None:
        """The declaration as the user made it; resolved (an absent plane refused in the
        panel's words, ``core.symmetry.APP_WORDS``) when training starts."""
        self.symmetry = symmetry

    # -- segmentation ---------------------------------------------------------------------
    def set_controls(self, method: str, phases: int, thresholds_text: str) -> None:
        if method not in {m for m, _ in METHODS}:
            raise ValueError(f"unknown segmentation method {method!r}; choose one of "
                             f"{', '.join(m for m, _ in METHODS)}")
        self.method, self.phases, self.thresholds_text = method, max(2, int(phases)), \
            thresholds_text
        self.invalidate()

    def thresholds(self) -> tuple[float, ...]:
        return tuple(parse_thresholds(self.thresholds_text)[0])

    def controls_problem(self) -> str | None:
        """Why the manual thresholds are not usable (None when they are)."""
        if self.method != "manual":
            return None
        values, bad = parse_thresholds(self.thresholds_text)
        if bad:
            return f"manual thresholds: '{bad}' is not a number; type e.g. 90, 170"
        if not values:
            return "manual thresholds: type at least one grey value, e.g. 128"
        return None

    def segmentation_config(self) -> SegmentationConfig:
        """The segmentation settings; :class:`SegmentationError` when the manual
        thresholds are missing, not numbers or not increasing."""
        problem = self.controls_problem()
        if problem:
            raise SegmentationError(problem)
        thresholds = self.thresholds() if self.method == "manual" else ()
        phases = (len(thresholds) + 1 if self.method == "manual"
                  else 2 if self.method == "otsu" else self.phases)
        return SegmentationConfig(method=self.method, phases=phases, thresholds=thresholds)

    def inputs(self) -> tuple[dict, dict]:
        """``(images per plane, origins per plane)`` of the planes that have images."""
        images = {p: self.images(p) for p in PLANES if self.sources[p]}
        return images, {p: self.image_origins(p) for p in images}

    def invalidate(self) -> None:
        self.generation += 1
        self._seg_valid = False

    @property
    def segmentation_valid(self) -> bool:
        return self._seg_valid

    def current_segmentation(self) -> Segmentation | None:
        """The cached result (None while it is being computed or when it failed)."""
        return self._segmentation if self._seg_valid else None

    def segmentation_error(self) -> str | None:
        return self._seg_error if self._seg_valid else None

    def segmentation_done(self, generation: int, seg: Segmentation | None,
                          error: str | None) -> bool:
        """Take a result computed for ``generation``; False when stale or already in."""
        if generation != self.generation or self._seg_valid:
            return False
        self._segmentation, self._seg_error, self._seg_valid = seg, error, True
        return True

    def segmentation(self) -> Segmentation | None:
        """Labelled images per plane ready for training; None without images. Computed
        now when not cached; InputError when the images cannot be segmented."""
        if self._seg_valid:
            if self._seg_error is not None:
                raise InputError(self._seg_error)
            return self._segmentation
        generation = self.generation
        images, origins = self.inputs()
        try:
            result = (segment_planes(images, self.segmentation_config(), origins=origins)
                      if images else None)
        except InputError as exc:
            self.segmentation_done(generation, None, str(exc))
            raise
        self.segmentation_done(generation, result, None)
        return result

    def reference_labels(self) -> np.ndarray | None:
        """The reference volume as phase labels ``[z, y, x]`` (uint8), segmented slice by
        slice exactly as the micrographs are; None without a volume or a segmentation."""
        if self.volume is None:
            return None
        try:
            seg = self.segmentation()
        except InputError:
            return None
        if seg is None:
            return None
        vol = self.volume
        if (seg.method == "labelled" and np.issubdtype(vol.dtype, np.integer)
                and int(vol.min()) >= 0 and int(vol.max()) < seg.num_phases):
            # Already phase labels 0..K-1 (as the demo's truth.tif), while the micrographs
            # store them as spread grey levels (0 / 127 / 255): taken as they are.
            return vol.astype(np.uint8)
        return np.stack([seg.apply(im) for im in vol])

    # -- projects -------------------------------------------------------------------------
    def state(self) -> dict:
        """Plain JSON-able data: files per plane, options, reference volume, segmentation,
        declared symmetry."""
        return {
            "planes": {p: {"paths": [str(path) for path in _unique(
                           s.path for s in self.sources[p] if not s.from_volume)],
                           "options": asdict(self.options[p])} for p in PLANES},
            "volume": (None if self.volume_path is None else
                       {"path": str(self.volume_path), "cut": self.volume_cut}),
            "segmentation": {"method": self.method, "phases": self.phases,
                             "thresholds_text": self.thresholds_text,
                             "thresholds": list(self.thresholds())},
            "symmetry": self.symmetry.to_dict(),
        }

    def reset(self, state: dict) -> tuple[dict, dict | None]:
        """Empty the model and take the options and segmentation settings of ``state``;
        returns ``(paths per plane, volume entry or None)`` for the caller to read."""
        for p in PLANES:
            self.sources[p] = []
            self.skipped[p] = set()
        self.volume = self.volume_path = None
        self.volume_cut = False
        planes = state.get("planes", {})
        for p in PLANES:
            self.options[p] = PlaneOptions(**planes.get(p, {}).get("options", {}))
        seg = state.get("segmentation", {})
        text = seg.get("thresholds_text")
        if text is None:
            text = ", ".join(f"{t:g}" for t in seg.get("thresholds", []))
        self.set_controls(seg.get("method", "labelled"), seg.get("phases", 2), text)
        try:  # absent in projects saved before declarations: none declared
            self.symmetry = Symmetry.from_dict(state.get("symmetry"))
        except ValueError:  # edited by hand: none declared, so training refuses absent planes
            self.symmetry = Symmetry()
        return {p: planes.get(p, {}).get("paths", []) for p in PLANES}, state.get("volume")


def _unique(items: Iterable) -> list:
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out
