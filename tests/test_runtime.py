"""TensorFlow's C++ start-up notices are kept out of notebooks, and import errors still show."""

import os
import subprocess
import sys

ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=300)


def test_plain_import_is_noisy_and_quiet_import_is_not():
    noisy = run("import tensorflow")
    quiet = run(
        "import sys; from cnn_helpers import runtime; runtime.import_tensorflow_quietly();"
        "print(sys.modules['tensorflow'].__name__)"
    )
    assert quiet.returncode == 0 and quiet.stdout.strip() == "tensorflow"
    assert "absl::InitializeLog" in noisy.stderr  # what the helper exists to hide
    assert "absl::InitializeLog" not in quiet.stderr


def test_failed_import_shows_its_error():
    code = (
        "import sys; sys.modules['keras'] = None\n"
        "from cnn_helpers import runtime\n"
        "runtime.import_tensorflow_quietly()\n"
    )
    done = run(code)
    assert done.returncode != 0 and "import of keras halted" in done.stderr
