"""Preprocessing: from the user's micrographs to phase-label data sets.

Segmentation of grey micrographs (:mod:`.segment`), already-labelled images
(:mod:`.labels`), the orientation fixes of each plane's images (:mod:`.orientation`), labelled
data sets per plane or volume (:mod:`.dataset`) and synthetic materials with a known 3D
truth (:mod:`.synthetic`). It sits above ``io``, ``core`` and ``metrics`` (it reads files,
cuts volumes into planes and measures fractions) and below the faces (CLI, GUI); see
``tests/test_layering.py``.
"""
