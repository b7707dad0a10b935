"""List the typed numbers in a chapter's prose, as tests/test_prose_numbers.py flags them.

    .venv/bin/python tools/prose_numbers.py chapters/07_fully_convolutional.md [more.md ...]
    .venv/bin/python tools/prose_numbers.py            # every chapter and intro.md

Exit status 1 if any number is flagged. How to glue or allow-list a number: the docstring of
tests/test_prose_numbers.py.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _checker():
    spec = importlib.util.spec_from_file_location("test_prose_numbers", ROOT / "tests" / "test_prose_numbers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    checker = _checker()
    paths = [pathlib.Path(a).resolve() for a in argv] or checker.FILES
    flagged = 0
    for path in paths:
        hits, _ = checker.scan(path)
        flagged += len(hits)
        print(checker.report(path, hits))
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
