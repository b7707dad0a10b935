"""Test accuracy against training time on MNIST: our time-budgeted recipe and the baseline (not run in CI).

For each budget (default 2, 5, 10 and 20 minutes of training), in one run on one machine, one after the other:

* **the baseline**, Géron's solution recipe (``cnn_helpers.mnist.baseline_model`` with his He-normal
  initializer: Nadam with Keras's defaults, batch 32, a constant learning rate): it trains until the budget is spent
  (``budget.TimeBudget``) and keeps its last weights, i.e. its epochs are scaled to the budget;
* **ours** (``mnist.our_model``, AdamW, batch 128, augmentation), with its one-cycle schedule sized to the
  budget: on a throw-away copy, the fixed cost of a fit call (tracing its training function) and one training
  step are timed (``budget.calibrate``), the budget less that fixed cost is turned into a number of
  steps (``Calibration.plan``), the schedule anneals over exactly those steps and ``budget.StepLimit`` stops
  the fit on the last one (``TimeBudget`` at 1.25 × the budget is only a safety net).

Then our recipe again at the largest budget with more seeds (default 43 and 44, besides the frontier's 42),
for a mean ± standard deviation over three seeds.

Both train on ``train[:55000]``; neither watches the validation split during training (no choice is made on
it: each model keeps its last weights), so that the budget is spent on training steps only. Each model is
evaluated once on the 10,000 test images. Training time is the wall time of the fit call (tracing included,
for both recipes); it excludes our calibration and the evaluation, which are reported separately. Images per
second are reported because wall times drift on shared machines.

Written to ``--out`` (default ``benchmarks/results/``): ``mnist_frontier.json`` (every number),
``mnist_frontier.md`` (the tables) and ``mnist_frontier.png`` (the frontier). ``--quick`` (tiny data, budgets
of seconds, two seeds) writes ``mnist_frontier_quick.*``; its numbers mean nothing.

Usage (from the repository root, on an otherwise idle machine: about 2 h with the defaults)::

    TFDS_DATA_DIR=/work/shared/tensorflow_datasets TF_CPP_MIN_LOG_LEVEL=3 \\
        .venv/bin/python benchmarks/mnist_frontier.py
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnn_helpers import runtime  # noqa: E402

runtime.import_tensorflow_quietly()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from cnn_helpers import budget, mnist  # noqa: E402

BASELINE = "baseline (Géron's solution recipe: Nadam, batch 32, constant rate)"
OURS = "ours (one-cycle AdamW sized to the budget, batch 128, augmentation)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[2, 5, 10, 20],
                        help="training budgets in minutes (default: 2 5 10 20)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the frontier runs (default 42)")
    parser.add_argument("--extra-seeds", type=int, nargs="*", default=[43, 44],
                        help="more seeds for our recipe at the largest budget (default: 43 44)")
    parser.add_argument("--batch-ours", type=int, default=128)
    parser.add_argument("--max-lr", type=float, default=3e-3, help="peak of our one-cycle schedule")
    parser.add_argument("--calibration-steps", type=int, default=30,
                        help="timed training steps of the throw-away copy (after 5 warm-up steps)")
    parser.add_argument("--quick", action="store_true",
                        help="sanity run: 2,000/1,000 images, budgets of 30 and 60 s, one extra seed")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.budgets, args.extra_seeds, args.calibration_steps = [0.5, 1.0], [43], 10
    if any(b <= 0 for b in args.budgets):
        parser.error("--budgets must be positive numbers of minutes")
    if args.batch_ours < 1 or args.calibration_steps < 1:
        parser.error("--batch-ours and --calibration-steps must be at least 1")
    return args


def batches(dataset: tf.data.Dataset) -> int:
    """Batches per epoch of a finite dataset whose length TensorFlow knows."""
    n = int(dataset.cardinality())
    if n < 1:
        raise ValueError(f"dataset: unknown or empty cardinality ({n})")
    return n


def evaluate(model: keras.Model, test) -> tuple[float, float]:
    start = time.perf_counter()
    _, accuracy = model.evaluate(test, verbose=0)
    return float(accuracy), time.perf_counter() - start


def run_baseline(seconds: float, *, seed: int, splits, test) -> dict[str, Any]:
    keras.utils.set_random_seed(seed)
    train = mnist.make_dataset(splits["train"], batch_size=32, training=True, seed=seed, augment=False)
    model = mnist.baseline_model(kernel_initializer="he_normal")  # as in Géron's notebook
    stop = budget.TimeBudget(seconds)
    print(f"\n=== {BASELINE}: budget {seconds / 60:.2f} min, seed {seed}", flush=True)
    model.fit(train, epochs=10_000, callbacks=[stop], verbose=2)
    accuracy, eval_seconds = evaluate(model, test)
    return {
        "recipe": "baseline", "seed": seed, "budget_seconds": seconds, "train_seconds": stop.elapsed,
        "steps": stop.batches, "batch_size": 32, "images_per_second": stop.batches * 32 / stop.elapsed,
        "epochs": stop.batches / batches(train), "test_accuracy": accuracy, "eval_seconds": eval_seconds,
        "parameters": int(model.count_params()),
    }


def run_ours(seconds: float, *, seed: int, splits, test, batch_size: int, max_lr: float,
             calibration_steps: int) -> dict[str, Any]:
    keras.utils.set_random_seed(seed)
    train = mnist.make_dataset(splits["train"], batch_size=batch_size, training=True, seed=seed, augment=True)
    steps_per_epoch = batches(train)
    # On a throw-away copy (its weights are discarded): the fixed cost of a fit call (building and tracing
    # its training function) and one training step; the budget less the fixed cost becomes a number of steps.
    calibration = budget.calibrate(
        lambda: mnist.compile_ours(mnist.our_model(seed=seed), total_steps=10_000, max_lr=max_lr),
        train, steps=calibration_steps, warmup=5)
    step_seconds, trace_seconds = calibration.step_seconds, calibration.trace_seconds
    plan = calibration.plan(seconds, steps_per_epoch)
    keras.utils.set_random_seed(seed)
    train = mnist.make_dataset(splits["train"], batch_size=batch_size, training=True, seed=seed, augment=True)
    model = mnist.compile_ours(mnist.our_model(seed=seed), total_steps=plan.total_steps, max_lr=max_lr)
    limit, safety = budget.StepLimit(plan.total_steps), budget.TimeBudget(1.25 * seconds + trace_seconds)
    print(f"\n=== {OURS}: budget {seconds / 60:.2f} min, seed {seed}: {step_seconds * 1000:.1f} ms/step "
          f"+ {trace_seconds:.1f} s of tracing -> {plan.total_steps} steps "
          f"({plan.total_steps / steps_per_epoch:.2f} epochs)", flush=True)
    model.fit(train, epochs=plan.epochs, callbacks=[limit, safety], verbose=2)
    accuracy, eval_seconds = evaluate(model, test)
    return {
        "recipe": "ours", "seed": seed, "budget_seconds": seconds, "train_seconds": safety.elapsed,
        "steps": limit.batches, "planned_steps": plan.total_steps, "batch_size": batch_size,
        "images_per_second": limit.batches * batch_size / safety.elapsed,
        "epochs": limit.batches / steps_per_epoch, "test_accuracy": accuracy, "eval_seconds": eval_seconds,
        "calibration_seconds": calibration.seconds, "calibrated_step_seconds": step_seconds,
        "calibrated_trace_seconds": trace_seconds,
        "stopped_by_safety_net": safety.stopped and limit.batches < plan.total_steps,
        "parameters": int(model.count_params()),
    }


def seed_statistics(runs: list[dict[str, Any]]) -> dict[str, Any]:
    accuracies = [r["test_accuracy"] for r in runs]
    return {
        "seeds": [r["seed"] for r in runs],
        "test_accuracies": accuracies,
        "mean": statistics.fmean(accuracies),
        "sd": statistics.stdev(accuracies) if len(accuracies) > 1 else None,
        "train_seconds": [r["train_seconds"] for r in runs],
    }


def markdown(record: dict[str, Any]) -> str:
    kind = "QUICK sanity run: numbers mean nothing" if record["quick"] else "full run"
    lines = [f"# MNIST: test accuracy against training time ({kind})", "",
             f"{record['finished_utc']} UTC, {record['machine']}; load average at start "
             f"{record['load_average_start'][0]:.2f}, at end {record['load_average_end'][0]:.2f}", "",
             "| budget (min) | recipe | seed | training (min) | steps | epochs | images/s | test accuracy |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in record["runs"]:
        lines.append(f"| {r['budget_seconds'] / 60:g} | {r['recipe']} | {r['seed']} | "
                     f"{r['train_seconds'] / 60:.2f} | {r['steps']:,} | {r['epochs']:.2f} | "
                     f"{r['images_per_second']:,.0f} | {100 * r['test_accuracy']:.2f} % |")
    s = record["seed_statistics"]
    sd = "n/a" if s["sd"] is None else f"{100 * s['sd']:.3f}"
    lines += ["", f"Ours at {record['largest_budget_seconds'] / 60:g} min over seeds {s['seeds']}: "
              f"mean {100 * s['mean']:.3f} % ± {sd} (sample SD, percentage points).", ""]
    return "\n".join(lines)


def figure(record: dict[str, Any], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = budget.frontier_figure(record, title="MNIST: test accuracy for a given training time (2-core CPU)")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    tf.config.experimental.enable_op_determinism()
    limits = {"train": 2000, "validation": 1000, "test": 1000} if args.quick else dict.fromkeys(mnist.SPLITS)
    splits = {k: mnist.load_split(k, limit=limits[k]) for k in ("train", "test")}
    test = mnist.make_dataset(splits["test"], batch_size=1000, training=False)
    load_start = os.getloadavg()
    runs: list[dict[str, Any]] = []

    def done(run: dict[str, Any]) -> None:  # each run is printed as it ends, so a crash loses only the current one
        runs.append(run)
        print("RUN " + json.dumps(run), flush=True)

    for minutes in sorted(args.budgets):
        seconds = 60 * minutes
        done(run_baseline(seconds, seed=args.seed, splits=splits, test=test))
        done(run_ours(seconds, seed=args.seed, splits=splits, test=test, batch_size=args.batch_ours,
                             max_lr=args.max_lr, calibration_steps=args.calibration_steps))
    largest = 60 * max(args.budgets)
    for seed in args.extra_seeds:
        done(run_ours(largest, seed=seed, splits=splits, test=test, batch_size=args.batch_ours,
                             max_lr=args.max_lr, calibration_steps=args.calibration_steps))
    record = {
        "quick": args.quick,
        "args": {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in vars(args).items()},
        "seed": args.seed,
        "finished_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                   f"TensorFlow {tf.__version__}, Keras {keras.__version__}",
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "train_images": int(splits["train"].cardinality()),
        "test_images": int(splits["test"].cardinality()),
        "runs": runs,
        "largest_budget_seconds": largest,
        "seed_statistics": seed_statistics(
            [r for r in runs if r["recipe"] == "ours" and r["budget_seconds"] == largest]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "mnist_frontier_quick" if args.quick else "mnist_frontier"
    (args.out / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(record))
    figure(record, args.out / f"{stem}.png")
    print("\n" + markdown(record))
    print(f"Wrote {args.out / stem}.json, .md and .png")
    return record


if __name__ == "__main__":
    main()
