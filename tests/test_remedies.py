"""Tests of cnn_helpers.remedies against Keras, TensorFlow and independent arithmetic."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnn_helpers import memory, models, remedies


def _tiny(checkpointed: bool) -> keras.Sequential:
    convs = [keras.layers.Conv2D(n, 3, strides=2, padding="same") for n in (4, 5, 6)]
    first = [convs[0], keras.layers.BatchNormalization(), keras.layers.ReLU(), convs[1]]
    if checkpointed:
        return keras.Sequential([keras.Input((20, 30, 3)), remedies.Checkpointed(first), convs[2]])
    return keras.Sequential([keras.Input((20, 30, 3)), *first, convs[2]])


def _grads(model: keras.Model, x: tf.Tensor) -> list[np.ndarray]:
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True)))
    return [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]


def test_checkpointed_gradients_equal_plain_gradients():
    keras.utils.set_random_seed(1)
    plain, ckpt = _tiny(False), _tiny(True)
    assert plain.count_params() == ckpt.count_params() == 573 + 4 * 4
    ckpt.set_weights(plain.get_weights())
    x = tf.random.normal((2, 20, 30, 3))
    np.testing.assert_allclose(plain(x).numpy(), ckpt(x).numpy(), rtol=1e-5, atol=1e-6)
    for a, b in zip(_grads(plain, x), _grads(ckpt, x)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_checkpointed_needs_layers():
    with pytest.raises(ValueError, match="inner"):
        remedies.Checkpointed([])


def test_builders_keep_question2_parameters():
    base = remedies.baseline_cnn().count_params()
    assert base == 903_400
    deep = remedies.deep_cnn()
    assert deep.count_params() == (27 + 1) * 32 + 11 * (288 + 1) * 32 + 12 * 4 * 32
    assert remedies.deep_checkpointed_cnn().count_params() == deep.count_params()
    assert len(deep.layers) == 36 and len(remedies.deep_checkpointed_cnn().layers) == 12
    assert remedies.mixed_float16_cnn().count_params() == base
    assert remedies.stride3_cnn().count_params() == base
    assert remedies.two_layer_cnn().count_params() == (27 + 1) * 100 + (900 + 1) * 200
    mixed = remedies.mixed_float16_cnn()
    assert {v.dtype for v in mixed.weights} == {"float32"}
    assert mixed.layers[0].compute_dtype == "float16"


def test_training_cost_matches_memory_estimate():
    model = models.question2_cnn()
    for optimizer in ("sgd", "momentum", "adam"):
        cost = remedies.training_cost(model, 50, optimizer)
        assert cost.total_bytes == memory.estimate(model, batch_size=50).training_bytes_with(optimizer)


def test_mixed_precision_cost_by_hand():
    model = models.question2_cnn()
    params = 903_400
    image = 200 * 300 * 3
    maps = 100 * 150 * 100 + 50 * 75 * 200 + 25 * 38 * 400
    cost = remedies.mixed_precision_cost(model, 10, "adam")
    assert cost.input_bytes == 10 * image * 4  # the batch is fed in float32
    assert cost.activation_bytes == 10 * maps * 2
    assert cost.extra_bytes == params * 2 + 10 * image * 2  # float16 copies of weights and input
    assert cost.total_bytes == 10 * (image * 6 + maps * 2) + params * (4 + 4 + 2 * 4 + 2)
    # Weight-dominated at batch 1: master weights, gradients, Adam state and copies exceed the float32 floor.
    dense = remedies.dense_head_cnn()
    assert (
        remedies.mixed_precision_cost(dense, 1, "adam").total_bytes
        > remedies.training_cost(dense, 1, "adam").total_bytes
    )


def test_cost_groups_add_up_and_count_only_trainable_parameters():
    deep = remedies.deep_cnn()
    trainable = (27 + 1) * 32 + 11 * (288 + 1) * 32 + 12 * 2 * 32
    assert remedies.trainable_params(deep) == trainable
    cost = remedies.training_cost(deep, 3, "adam")
    assert cost.gradient_bytes == trainable * 4 and cost.optimizer_bytes == 2 * trainable * 4
    assert cost.params_bytes == deep.count_params() * 4 > cost.gradient_bytes
    assert cost.state_bytes + cost.input_bytes + cost.step_bytes == cost.total_bytes == sum(cost.parts().values())
    # Batch norm's scale and offset stay float32 under mixed precision: only conv weights are cast.
    assert remedies.autocast_params(deep) == (27 + 1) * 32 + 11 * (288 + 1) * 32
    assert remedies.autocast_params(models.question2_cnn()) == 903_400


def test_flatten_is_a_view_in_the_dense_head():
    dense = remedies.dense_head_cnn()
    assert dense.count_params() == 903_400 + (25 * 38 * 400 + 1) * 64
    maps = 100 * 150 * 100 + 50 * 75 * 200 + 25 * 38 * 400
    cost = remedies.training_cost(dense, 2, "sgd")
    assert cost.activation_bytes == 2 * (maps + 64) * 4
    est = memory.estimate(dense, batch_size=2)
    assert est.activation_bytes - cost.activation_bytes == 2 * 25 * 38 * 400 * 4
    mixed = remedies.dense_head_mixed_float16_cnn()
    assert mixed.count_params() == dense.count_params() and mixed.layers[-1].compute_dtype == "float16"


def test_format_costs_rows_and_width():
    model = models.question2_cnn()
    costs = [remedies.training_cost(model, 50, "adam", remedy="as asked"), remedies.accumulation_cost(model, 10, 5)]
    lines = remedies.format_costs(costs).splitlines()
    assert len(lines) == 3 and all(len(line) <= 88 for line in lines)
    assert lines[1].split()[-1] == f"{costs[0].total_bytes / 1e6:.1f}"
    assert lines[2].split()[-2] == f"{costs[1].accumulator_bytes / 1e6:.1f}"
    with pytest.raises(ValueError, match="unit"):
        remedies.format_costs(costs, unit=0)


def test_checkpointed_cost_by_hand():
    model = models.question2_cnn()
    a1, a2, a3 = 100 * 150 * 100 * 4, 50 * 75 * 200 * 4, 25 * 38 * 400 * 4
    image = 200 * 300 * 3 * 4
    cost = remedies.checkpointed_cost(model, 2, (2, 1))
    assert cost.kept_bytes == 2 * (image + a2 + a3)
    assert cost.extra_bytes == 2 * a1
    no_cut = remedies.checkpointed_cost(model, 2, (1, 1, 1))
    assert no_cut.total_bytes == remedies.training_cost(model, 2).total_bytes
    with pytest.raises(ValueError, match="segments"):
        remedies.checkpointed_cost(model, 2, (2, 2))
    with pytest.raises(ValueError, match="segments"):
        remedies.checkpointed_cost(model, 2, (3, 0))


def test_accumulation_and_replica_costs():
    model = models.question2_cnn()
    acc = remedies.accumulation_cost(model, 10, 5)
    base10 = remedies.training_cost(model, 10)
    assert acc.total_bytes == base10.total_bytes + base10.params_bytes
    assert acc.state_bytes == base10.state_bytes + acc.accumulator_bytes and acc.step_bytes == base10.step_bytes
    rep = remedies.replica_cost(model, 50, 2)
    assert rep.total_bytes == remedies.training_cost(model, 25).total_bytes
    with pytest.raises(ValueError, match="steps"):
        remedies.accumulation_cost(model, 10, 0)


def test_split_batch_rule():
    assert remedies.split_batch(50, 2) == [25, 25]
    assert remedies.split_batch(10, 3) == [4, 4, 2]
    assert remedies.split_batch(5, 4) == [2, 2, 1, 0]
    for g in range(1, 30):
        for n in range(1, 6):
            assert sum(remedies.split_batch(g, n)) == g
    with pytest.raises(ValueError, match="replicas"):
        remedies.split_batch(10, 0)


def test_mirrored_replica_batches_rejects_bad_arguments():
    with pytest.raises(ValueError, match="replicas"):
        remedies.mirrored_replica_batches([(10, 0)])
    with pytest.raises(ValueError, match="cases"):
        remedies.mirrored_replica_batches([])


def test_accumulated_gradients_equal_full_batch():
    keras.utils.set_random_seed(2)
    # No BatchNormalization here: its batch statistics differ between a micro-batch and the full batch.
    model = keras.Sequential(
        [keras.Input((20, 30, 3))] + [keras.layers.Conv2D(n, 3, strides=2, padding="same") for n in (4, 5, 6)]
    )
    x = tf.random.normal((6, 20, 30, 3))
    y = tf.random.normal((6, 3, 4, 6))
    loss_fn = keras.losses.MeanSquaredError()
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    full = tape.gradient(loss, model.trainable_variables)
    acc = remedies.accumulated_gradients(model, loss_fn, x, y, steps=3)
    for a, b in zip(full, acc):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="steps"):
        remedies.accumulated_gradients(model, loss_fn, x, y, steps=4)


def test_conv_macs_by_hand():
    macs = remedies.conv_macs(models.question2_cnn())
    assert macs == [100 * 150 * 100 * 27, 50 * 75 * 200 * 900, 25 * 38 * 400 * 1800]


def test_measure_training_peak_rejects_bad_builder():
    with pytest.raises(ValueError, match="builder"):
        remedies.measure_training_peak("no_colon", 1)
    with pytest.raises(ValueError, match="accumulation_steps"):
        remedies.measure_training_peak("a:b", 1, 0)
    with pytest.raises(ValueError, match="optimizer"):
        remedies.StepRequest("a:b", 1, optimizer="lbfgs")
    with pytest.raises(ValueError, match="requests"):
        remedies.measure_training_peaks([])


def test_measured_step_sits_above_the_floor_of_the_same_configuration():
    # One child process, two configurations: plain Adam, then SGD with accumulation over two micro-batches.
    requests = [
        remedies.StepRequest("cnn_helpers.remedies:stride3_cnn", 2, 1, "adam"),
        remedies.StepRequest("cnn_helpers.remedies:stride3_cnn", 1, 2, "sgd"),
    ]
    adam, accum = remedies.measure_training_peaks(requests)
    model = remedies.stride3_cnn()
    floor_adam = remedies.training_cost(model, 2, "adam")
    floor_accum = remedies.accumulation_cost(model, 1, 2, "sgd")
    # State is counted from Keras's variables: the floor's, plus a few scalars (step counter, learning rate).
    assert 0 <= adam.state_bytes - floor_adam.state_bytes <= 64
    assert 0 <= accum.state_bytes - floor_accum.state_bytes <= 64
    assert adam.input_bytes == floor_adam.input_bytes and accum.input_bytes == floor_accum.input_bytes
    assert adam.delta_bytes >= floor_adam.step_bytes
    assert accum.delta_bytes >= floor_accum.step_bytes
    assert adam.total_bytes == adam.state_bytes + adam.input_bytes + adam.delta_bytes


def test_checkpointed_updates_batch_norm_statistics_once():
    def build(wrap: str) -> keras.Sequential:
        inner = [keras.layers.Conv2D(4, 3, padding="same"), keras.layers.BatchNormalization(momentum=0.5)]
        if wrap == "plain":
            return keras.Sequential([keras.Input((8, 8, 3)), *inner])
        return keras.Sequential([keras.Input((8, 8, 3)), remedies.Checkpointed(inner, restore_state=wrap == "restore")])

    keras.utils.set_random_seed(3)
    models_ = {w: build(w) for w in ("plain", "restore", "bare")}
    for m in models_.values():
        m.set_weights(models_["plain"].get_weights())
    x = tf.random.normal((4, 8, 8, 3)) + 2.0
    stats = {}
    for wrap, m in models_.items():
        _grads(m, x)
        stats[wrap] = [v.numpy() for v in m.non_trainable_weights]
    for a, b in zip(stats["plain"], stats["restore"]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not np.allclose(stats["plain"][0], stats["bare"][0])  # a bare recompute updates twice
    with pytest.raises(ValueError, match="restore_state"):
        remedies.Checkpointed([keras.layers.ReLU()], restore_state="yes")


def test_timers_return_one_time_per_repeat():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)])
    x = tf.zeros((1, 8, 8, 3))
    assert len(remedies.forward_seconds(model, x, 2)) == 2
    assert all(t > 0 for t in remedies.train_step_seconds(model, x, 2))
    with pytest.raises(ValueError, match="repeats"):
        remedies.forward_seconds(model, x, 0)


def test_compile_wraps_the_optimizer_only_under_a_model_wide_mixed_policy():
    # The chapter's builders set "mixed_float16" layer by layer: the model's own policy stays float32 and
    # compile leaves the optimizer unwrapped, which is why measure_training_peaks wraps it itself.
    per_layer = remedies.mixed_float16_cnn()
    assert per_layer.layers[0].dtype_policy.name == "mixed_float16"
    per_layer.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    assert not isinstance(per_layer.optimizer, keras.optimizers.LossScaleOptimizer)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model_wide = models.question2_cnn()
        model_wide.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert isinstance(model_wide.optimizer, keras.optimizers.LossScaleOptimizer)


def test_zero_smallest_weights_zeroes_the_smallest_kernel_entries_only():
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                              keras.layers.Dense(3, bias_initializer="ones")])
    before = [w.numpy().copy() for w in model.weights]
    zeroed = remedies.zero_smallest_weights(model, 0.5)
    conv_k, dense_k = model.layers[0].kernel.numpy(), model.layers[2].kernel.numpy()
    assert zeroed == 36 // 2 + 48 // 2
    assert (conv_k == 0).sum() == 18 and (dense_k == 0).sum() == 24
    kept = np.abs(before[0][conv_k != 0])
    assert kept.min() >= np.abs(before[0][conv_k == 0]).max()
    np.testing.assert_array_equal(model.layers[2].bias.numpy(), before[3])
    with pytest.raises(ValueError, match="fraction"):
        remedies.zero_smallest_weights(model, 1.0)


def test_to_tflite_quantized_is_smaller_and_close():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(32, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(64), keras.layers.Dense(4)])
    x = np.random.default_rng(0).random((5, 8, 8, 1)).astype("float32")
    plain, quant = remedies.to_tflite(model, quantize=False), remedies.to_tflite(model, quantize=True)
    assert quant.size_bytes < plain.size_bytes / 2
    np.testing.assert_allclose(plain.predict(x), model.predict(x, verbose=0), atol=1e-4)
    assert np.abs(quant.predict(x) - plain.predict(x)).max() < 0.1 * np.abs(plain.predict(x)).max()
