"""The pins: requirements.txt is exact, and the Colab extra agrees with it."""

import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", line)
            assert match, f"requirements.txt: not an exact pin: {line!r}"
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_requirements_are_exact_and_cover_the_tools():
    pins = requirement_pins()
    for name in ("tensorflow", "tensorflow-datasets", "importlib-resources", "jupyter-book", "jupytext",
                 "nbval", "matplotlib", "myst-nb", "pytest", "hypothesis", "nbconvert"):
        assert name in pins, f"requirements.txt does not pin {name}"
    assert pins["jupyter-book"].startswith("1."), "the book's layout needs Jupyter Book 1.x"


def test_colab_extra_matches_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = requirement_pins()
    for spec in project["optional-dependencies"]["pinned"]:
        name, version = spec.split("==")
        assert pins[re.sub(r"[-_.]+", "-", name).lower()] == version, spec
