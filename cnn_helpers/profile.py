"""The execution profile: the one switch between a full run and a quick smoke run.

The profile is read from the environment variable ``CNN_COURSE_PROFILE``:

``full`` (the default)
    What readers get: the real data, all epochs, full image sizes. The stored notebook outputs come from it.
``smoke``
    What CPU continuous integration uses: tiny data, one epoch. It checks that every cell runs.

Chapters never branch on the profile themselves; they ask this module for each setting::

    EPOCHS = profile.epochs(20)                       # 20 in full, 1 in smoke
    N_TRAIN = profile.pick(full=55_000, smoke=2_000)  # any value, chosen per profile
"""

from __future__ import annotations

import os
from typing import TypeVar

ENV_VAR = "CNN_COURSE_PROFILE"
PROFILES = ("full", "smoke")
DEFAULT = "full"

T = TypeVar("T")


def name() -> str:
    """Return the active profile's name, ``"full"`` or ``"smoke"``.

    Raises:
        ValueError: if ``CNN_COURSE_PROFILE`` holds anything else.
    """
    value = os.environ.get(ENV_VAR, "").strip().lower() or DEFAULT
    if value not in PROFILES:
        raise ValueError(
            f"{ENV_VAR}={os.environ.get(ENV_VAR)!r} is not a profile; use one of {', '.join(PROFILES)} "
            f"(unset means {DEFAULT!r})"
        )
    return value


def pick(*, full: T, smoke: T) -> T:
    """Return ``full`` or ``smoke`` according to the active profile."""
    return full if name() == "full" else smoke


def epochs(full: int) -> int:
    """Number of training epochs: ``full`` in the full profile, 1 in the smoke profile."""
    if full < 1:
        raise ValueError(f"full={full!r}: the number of epochs must be at least 1")
    return pick(full=full, smoke=1)


def describe() -> str:
    """One line saying which profile is active, for a notebook's output."""
    if name() == "full":
        return "Profile: full (all data and epochs; the book's stored outputs come from this profile)."
    return (
        "Profile: smoke (tiny data, one epoch: a check that the code runs; "
        "its numbers are NOT the book's results)."
    )
