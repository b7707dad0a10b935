"""Glue computed values into the book's prose.

In the book, :func:`glue` stores a value under a name with myst-nb, and the prose shows it with
``{glue:text}`name```. Outside a book build where myst-nb is not installed (Colab, a plain Jupyter),
:func:`glue` does nothing, so the chapters run anywhere.
"""

from __future__ import annotations

import json
import pathlib
import urllib.request
from typing import Any

#: The course's repository on GitHub (``_config.yml``'s ``repository.url``; a test keeps them equal).
REPOSITORY = "https://github.com/cnn-course/cnn-course"

try:  # myst-nb is part of the book's tooling, not of the helpers' run-time dependencies.
    from myst_nb import glue as _myst_glue
except ImportError:  # pragma: no cover - exercised only where myst-nb is absent
    _myst_glue = None


def glue(name: str, value: Any, fmt: str | None = None) -> None:
    """Store ``value`` for the prose under ``name``, without displaying it.

    It returns ``None`` on purpose, so that a glue call ending a cell adds no ``Out[]`` to the notebook.

    Args:
        name: the glue key, ``snake_case`` and unique within the chapter.
        value: a number, a string, or a figure.
        fmt: an optional format spec; the text glued is then ``format(value, fmt)``, e.g. ``","`` gives
            ``903,400`` and ``".1f"`` gives ``12.6``.
    """
    if not name.isidentifier():
        raise ValueError(f"name={name!r}: glue names must be snake_case identifiers")
    shown = format(value, fmt) if fmt is not None else value
    if _myst_glue is not None:
        _myst_glue(name, shown, display=False)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def scientific(value: float, digits: int = 2, plain: tuple[float, float] = (1e-3, 1e4)) -> str:
    """A number as prose writes it: ``1.8 × 10⁻⁵`` rather than ``1.8e-05``.

    Values whose magnitude lies in ``[plain[0], plain[1])`` are written without a power of ten, rounded to
    ``digits`` significant digits (``176``, ``0.72``); zero is ``0``; the others get a mantissa of ``digits``
    significant digits and a superscript exponent. Pass ``plain=(0, 0)`` to always get the power of ten.
    Unit-free: the caller adds the unit.

    Args:
        value: a finite number.
        digits: significant digits (at least 1).
        plain: the half-open range of magnitudes written plainly.

    Raises:
        ValueError: for a non-finite ``value`` or ``digits < 1``.
    """
    import math

    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"value={value!r}: must be a finite number")
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
        raise ValueError(f"digits={digits!r}: must be a positive integer")
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    power = int(exponent)
    if plain[0] <= abs(value) < plain[1]:
        return f"{float(f'{value:.{digits - 1}e}'):.{max(digits - 1 - power, 0)}f}"
    return f"{mantissa} × 10{str(power).translate(_SUPERSCRIPT)}"


def setup_cell_source(repository_url: str, branch: str = "main") -> str:
    """The source of every chapter's first cell.

    In Colab only, it installs these helpers and the pinned packages from ``repository_url``; everywhere, it
    imports TensorFlow without its C++ start-up notices (:mod:`cnn_helpers.runtime`).
    ``tools/colab_cell.py`` writes it into the chapters from ``_config.yml``'s ``repository`` section, and a
    test checks that every chapter's first cell is exactly this text.
    """
    url = repository_url.rstrip("/")
    if not url.startswith("https://"):
        raise ValueError(f"repository_url={repository_url!r}: must be an https:// URL")
    if not branch or any(c.isspace() for c in branch):
        raise ValueError(f"branch={branch!r}: must be a non-empty name without spaces")
    return (
        "# Set-up. In Google Colab only: install the course's helpers and pinned packages.\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    subprocess.run(\n"
        '        [sys.executable, "-m", "pip", "install", "--quiet",\n'
        f'         "cnn-helpers[pinned] @ git+{url}@{branch}"],\n'
        "        check=True,\n"
        "    )\n"
        "\n"
        "# Everywhere: load TensorFlow without its C++ start-up notices.\n"
        "from cnn_helpers import runtime\n"
        "\n"
        "runtime.import_tensorflow_quietly()"
    )


def benchmark_result(name: str, *, branch: str = "main", root: pathlib.Path | None = None) -> dict[str, Any]:
    """The committed results of a benchmark, ``benchmarks/results/<name>.json``, as a dict.

    Read from the repository checkout these helpers sit in (``root``, by default the folder above the
    package); where the helpers were installed without the repository (Colab installs them with pip), the
    same file is fetched from the repository on GitHub at ``branch``.

    Raises:
        ValueError: ``name`` is not a plain file name.
        FileNotFoundError: the checkout has no such result.
        urllib.error.URLError: without a checkout, the file could not be fetched.
    """
    if not name or "/" in name or "\\" in name or name.startswith(".") or name.endswith(".json"):
        raise ValueError(f"name={name!r}: give the result's file name without folder or .json")
    root = pathlib.Path(__file__).resolve().parents[1] if root is None else pathlib.Path(root)
    if (root / "benchmarks").is_dir():
        path = root / "benchmarks" / "results" / f"{name}.json"
        if not path.is_file():
            raise FileNotFoundError(f"name={name!r}: {path} does not exist (run the benchmark that writes it)")
        return json.loads(path.read_text())
    raw = REPOSITORY.replace("https://github.com/", "https://raw.githubusercontent.com/")
    with urllib.request.urlopen(f"{raw}/{branch}/benchmarks/results/{name}.json", timeout=30) as response:
        return json.loads(response.read().decode())
