"""A material's declared symmetry: which plane's micrographs stand for a plane without its own.

The network is conditioned on the plane (METHOD.md Sec. 2), so a plane without micrographs
has a condition the network never learned; sampling it silently makes wrong sections. A
plane's micrographs may be left out only when a symmetry says which trained plane stands
for it:

- ``like={"yz": "xz"}`` (``micro3d train --like yz=xz``): yz sections look like xz ones,
  x and y are alike and z is special (transversely isotropic about z: fibres along z,
  layers normal to z);
- ``isotropic=True`` (``--isotropic``): one plane's micrographs serve all three planes.

How a declaration is trained and sampled (the one definition, used by training, sampling,
the fidelity monitor and the self-check):

- Only the planes with micrographs are trained, each with its own label; a stand-in plane
  gets no label of its own. Sampling denoises a stand-in plane's slices with the label of
  the plane that stands for it, and the self-check compares them with that plane's
  micrographs. (Training the stand-in's label on copies of the other plane's images would
  spend the network's capacity on learning one distribution twice.)
- Orientation: a stand-in slice is taken row for row as an image of its source plane
  (METHOD.md's table): for ``yz`` like ``xz``, the yz slice's rows (z) play the xz
  images' rows (z) and its columns (y) their columns (x). For ``xz`` like ``xy``, z plays y.
- Isotropic: the source plane's training crops are also transposed (with the flips, all
  8 symmetries of the square), since in an isotropic material rows and columns are
  alike. Without it (from xy micrographs), y would have to look like the micrographs'
  rows in xy sections and like their columns in yz sections, so any difference between
  their rows and columns would be built into the volume inconsistently. ``--like`` never
  transposes: its planes keep an axis apart.

Plain data, no torch: :meth:`Symmetry.to_dict` is what a checkpoint keeps (``symmetry``);
a checkpoint without it was trained before declarations and maps every plane to itself.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import DatasetError
from .planes import PLANE_LABELS, PLANES

#: How messages name the ways on, per face (``{plane}``, ``{other}``): the command line's
#: options and the app's Data panel controls.
CLI_WORDS = {"give": "--{plane} PATH", "like": "--like {plane}={other}",
             "isotropic": "--isotropic"}
APP_WORDS = {"give": "drop {plane} micrographs on the {plane} target",
             "like": "set the {plane} target to 'same as {other}'",
             "isotropic": "tick 'Isotropic material'"}

# The plane suggested as a stand-in: the one sharing the image rows (z for xz and yz).
_PARTNER = {"xy": ("xz", "yz"), "xz": ("yz", "xy"), "yz": ("xz", "xy")}


@dataclass(frozen=True)
class Symmetry:
    """``like`` ``{plane: source}``: the source plane's micrographs stand for ``plane``;
    ``isotropic``: one plane's micrographs stand for all three (before :meth:`resolve`,
    ``like`` may be empty; after it, it holds every stand-in)."""

    like: Mapping[str, str] = field(default_factory=dict)
    isotropic: bool = False

    @property
    def declared(self) -> bool:
        return bool(self.like) or self.isotropic

    def sources(self) -> dict[str, str]:
        """``{plane: the plane whose micrographs and label stand for it}``, all planes."""
        return {p: self.like.get(p, p) for p in PLANES}

    def labels(self) -> dict[str, int]:
        """The network condition each plane's slices are sampled with."""
        return {p: PLANE_LABELS[s] for p, s in self.sources().items()}

    def resolve(self, given: Iterable[str], words: Mapping[str, str] = CLI_WORDS
                ) -> "Symmetry":
        """This declaration for micrographs of the planes ``given``: every stand-in
        spelled out in ``like``. :class:`DatasetError` (``words`` name the ways on) for a
        plane with neither micrographs nor a stand-in, a stand-in without micrographs, a
        plane both given and declared like another, or ``isotropic`` with other than one
        plane given."""
        given = [p for p in PLANES if p in set(given)]
        if not given:
            raise DatasetError("no micrographs in any plane")
        iso = words["isotropic"]
        if self.isotropic:
            if self.like and dict(self.like) != {p: given[0] for p in PLANES if p != given[0]}:
                raise DatasetError(f"{iso} already makes every plane like the one given; "
                                   f"drop {_like(words, *next(iter(self.like.items())))}")
            if len(given) != 1:
                raise DatasetError(
                    f"{iso}: one plane's micrographs serve all three, but "
                    f"{_join(given)} have micrographs; keep one plane's, or drop {iso} to "
                    "train each plane on its own")
            return Symmetry({p: given[0] for p in PLANES if p != given[0]}, True)
        for plane, source in self.like.items():
            declared = _like(words, plane, source)
            if plane not in PLANES or source not in PLANES or plane == source:
                raise DatasetError(f"{declared}: name two different planes of "
                                   f"{', '.join(PLANES)}")
            if plane in given:
                raise DatasetError(f"{declared}: {plane} has micrographs of its own; drop "
                                   f"them or the declaration")
            if source not in given:
                raise DatasetError(f"{declared}: {source} has no micrographs to stand for "
                                   f"{plane}; " + words["give"].format(plane=source))
        absent = [p for p in PLANES if p not in given and p not in self.like]
        if absent:
            raise DatasetError(_absent_message(absent, given, words))
        return Symmetry(dict(self.like), False)

    def to_dict(self) -> dict:
        return {"like": {p: self.like[p] for p in PLANES if p in self.like},
                "isotropic": bool(self.isotropic)}

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "Symmetry":
        """A checkpoint's or project's ``symmetry`` (None: none declared); ValueError
        when it is not one (planes unknown, a chain, a plane like itself)."""
        if d is None:
            return cls()
        if not isinstance(d, Mapping) or set(d) - {"like", "isotropic"}:
            raise ValueError(f"not a plane symmetry: {d!r}")
        like = d.get("like") or {}
        iso = d.get("isotropic", False)
        if (not isinstance(like, Mapping) or not isinstance(iso, bool)
                or any(p not in PLANES or s not in PLANES or p == s or s in like
                       for p, s in like.items())):
            raise ValueError(f"not a plane symmetry: {dict(d)!r}")
        return cls(dict(like), iso)

    def describe(self) -> str:
        """One line for a person, e.g. ``isotropic: the xy micrographs stand for xz and
        yz`` or ``yz like xz``."""
        if not self.declared:
            return "none declared: every plane trained on its own micrographs"
        if self.isotropic and self.like:
            source = next(iter(self.like.values()))
            return (f"isotropic: the {source} micrographs stand for "
                    f"{_join(list(self.like))}")
        if self.isotropic:
            return "isotropic"
        return ", ".join(f"{p} like {s}" for p, s in self.to_dict()["like"].items())


def parse_like(texts: Sequence[str]) -> dict[str, str]:
    """``["yz=xz"]`` (the ``--like`` options) -> ``{"yz": "xz"}``; DatasetError naming
    the bad one."""
    out: dict[str, str] = {}
    for text in texts:
        plane, sep, source = text.strip().partition("=")
        plane, source = plane.strip(), source.strip()
        if not sep or plane not in PLANES or source not in PLANES or plane == source:
            raise DatasetError(f"--like {text}: write PLANE=PLANE with two of "
                               f"{', '.join(PLANES)}, e.g. --like yz=xz (yz sections look "
                               "like xz ones)")
        if out.get(plane, source) != source:
            raise DatasetError(f"--like {plane}={out[plane]} and --like {text}: one plane "
                               "stands for another at most once")
        out[plane] = source
    return out


def fill_stand_ins(images: Mapping[str, Sequence], symmetry: "Symmetry") -> dict:
    """``{plane: images}`` with each plane that has none given its source's (e.g. the
    micrographs a self-check compares a stand-in plane's slices with)."""
    out = {p: ims for p, ims in images.items() if len(ims)}
    for plane, source in symmetry.sources().items():
        if plane not in out and source in out:
            out[plane] = out[source]
    return {p: out[p] for p in PLANES if p in out}


def _like(words: Mapping[str, str], plane: str, other: str) -> str:
    return words["like"].format(plane=plane, other=other)


def _join(planes: Sequence[str], word: str = "and") -> str:
    return planes[0] if len(planes) == 1 else f"{', '.join(planes[:-1])} {word} {planes[-1]}"


def _absent_message(absent: Sequence[str], given: Sequence[str],
                    words: Mapping[str, str]) -> str:
    """The refusal of planes without micrographs: which, and the two ways on."""
    ways = []
    for plane in absent:
        other = next((q for q in _PARTNER[plane] if q in given), given[0])
        ways.append(f"{_like(words, plane, other)} if its sections look like {other} ones")
    gives = ", ".join(words["give"].format(plane=p) for p in absent)
    text = (f"no {_join(absent, 'or')} micrographs, so the network would never learn what "
            f"{'that plane looks' if len(absent) == 1 else 'those planes look'} like: "
            f"give them ({gives}) or declare the symmetry that stands for them ("
            + "; ".join(ways))
    if len(given) == 1:
        text += f"; or {words['isotropic']} if the material looks the same in every direction"
    return text + ")"
