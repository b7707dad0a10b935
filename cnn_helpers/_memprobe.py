"""Child process of :func:`cnn_helpers.memory.measure_peak`. Prints one JSON line; not for direct use."""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
import re
import sys
import time


def _status_bytes(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        match = re.search(rf"^{key}:\s+(\d+) kB", status.read(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {key}; the CPU measurement needs Linux")
    return int(match.group(1)) * 1024


def _release_freed_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def main(request: dict) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    module_name, function_name = request["builder"].split(":")
    model = getattr(importlib.import_module(module_name), function_name)()
    batch = request["batch_size"]
    x = tf.constant(np.zeros((batch, *model.inputs[0].shape[1:]), dtype="float32"))

    if request["mode"] == "predict":

        def step() -> None:
            model(x, training=False)

    else:
        optimizer = keras.optimizers.get(request["optimizer"])

        def step() -> None:
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(x, training=True)))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)

    gpus = tf.config.list_logical_devices("GPU")
    step()  # warm-up: kernels, optimizer slots, one-time allocations
    _release_freed_memory()
    if gpus:
        device = gpus[0].name
        tf.config.experimental.reset_memory_stats(device)
        baseline = tf.config.experimental.get_memory_info(device)["current"]
    else:
        device = "CPU"
        baseline = _status_bytes("VmRSS")
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")  # reset the peak resident size (VmHWM) to the current one
    start = time.perf_counter()
    step()
    seconds = time.perf_counter() - start
    peak = tf.config.experimental.get_memory_info(device)["peak"] if gpus else _status_bytes("VmHWM")
    return {
        "mode": request["mode"],
        "batch_size": batch,
        "device": device,
        "baseline_bytes": int(baseline),
        "peak_bytes": int(peak),
        "seconds": round(seconds, 3),
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
