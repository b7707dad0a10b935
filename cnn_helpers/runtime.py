"""Start-up of a chapter's kernel: import TensorFlow without its C++ start-up notices.

TensorFlow writes notices such as "oneDNN custom operations are on" and "Could not find cuda drivers"
straight to file descriptor 2 while it loads, before any logging setting applies, and Jupyter captures them
into the notebook. :func:`import_tensorflow_quietly` sends them to a temporary file instead and shows them
only if the import fails.
"""

from __future__ import annotations

import os
import sys
import tempfile


def import_tensorflow_quietly() -> None:
    """Import ``tensorflow`` and ``keras`` with file descriptor 2 silenced (a no-op once imported).

    If the import fails, what TensorFlow wrote is printed to ``sys.stderr`` and the error is raised.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401  (imports tensorflow as its backend)
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
