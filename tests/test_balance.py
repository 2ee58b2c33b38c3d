"""Training for every class (balance.py): the prior, the weights, the two
balanced losses, balanced sampling, and the corrections folded into a
model's last layer."""
import numpy as np
import pytest

from ferkit.train import balance


PRIOR = np.array([0.6, 0.3, 0.1])


def test_prior_from_labels_and_from_soft_targets():
    assert balance.class_prior(np.array([0, 0, 0, 1]), 3) == pytest.approx([0.75, 0.25, 0.0], abs=1e-5)
    soft = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    assert balance.class_prior(soft, 3) == pytest.approx([0.75, 0.25, 0.0], abs=1e-5)
    assert np.all(balance.class_prior(np.array([0, 1]), 3) > 0)  # A floor keeps log(prior) finite.


def test_weights_undo_the_prior_and_keep_the_mean_weight_one():
    w = balance.class_weights(PRIOR, tau=1.0)
    assert np.sum(PRIOR * w) == pytest.approx(1.0)
    assert PRIOR * w == pytest.approx(np.full(3, 1 / 3))  # Each class weighs the same in all.
    assert balance.class_weights(PRIOR, tau=0.0) == pytest.approx(np.ones(3))


def _loss(mode, y_true, y_pred, tau=1.0):
    import keras

    loss = balance.make_loss(mode, PRIOR, tau)
    return keras.ops.convert_to_numpy(loss.call(np.asarray(y_true, np.float32), np.asarray(y_pred, np.float32)))


def test_logit_adjusted_loss_is_crossentropy_of_the_shifted_softmax():
    p = np.array([[0.2, 0.3, 0.5]])
    shifted = np.log(p) + np.log(PRIOR)
    q = np.exp(shifted) / np.exp(shifted).sum()
    assert _loss("logit-adjust", [[0, 0, 1]], p)[0] == pytest.approx(-np.log(q[0, 2]), rel=1e-5)
    # tau 0 is plain cross-entropy; a rare class's loss is larger under the adjustment.
    assert _loss("logit-adjust", [[0, 0, 1]], p, tau=0.0)[0] == pytest.approx(-np.log(0.5), rel=1e-5)
    assert _loss("logit-adjust", [[0, 0, 1]], p)[0] > -np.log(0.5)
    assert _loss("logit-adjust", [[1, 0, 0]], p)[0] < -np.log(0.2)


def test_reweighted_loss_scales_each_face_by_its_class_weight():
    p = np.array([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]])
    w = balance.class_weights(PRIOR)
    got = _loss("reweight", [[1, 0, 0], [0, 0, 1]], p)
    assert got == pytest.approx([-w[0] * np.log(0.2), -w[2] * np.log(0.5)], rel=1e-5)


def test_losses_survive_a_save_and_load(tmp_path):
    import keras

    for mode in ("logit-adjust", "reweight"):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="softmax")])
        model.compile(loss=balance.make_loss(mode, PRIOR, 0.5))
        model.save(tmp_path / "m.keras")
        loaded = keras.saving.load_model(tmp_path / "m.keras")
        assert type(loaded.loss).__name__ == type(model.loss).__name__
        assert loaded.loss.get_config() == model.loss.get_config()


def test_balanced_sampling_draws_classes_equally_often():
    from ferkit.data import fer2013
    from ferkit.train.pipeline import make_dataset

    rng = np.random.default_rng(0)
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10, np.int8)
    data = fer2013.Dataset(rng.integers(0, 256, (1000, 48, 48), dtype=np.uint8), labels, np.arange(1000), None)
    drawn = np.concatenate([y.numpy().argmax(1) for _, y in make_dataset(data, 100, balanced=True)])
    assert len(drawn) == 1000  # An epoch is still len(data) faces.
    counts = np.bincount(drawn, minlength=3)
    assert counts.min() > 250 and counts.max() < 420, counts  # Expected 333 each; plain sampling gives 900/90/10.


def test_folding_into_the_last_layer_equals_adjusting_the_probabilities():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4), keras.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(1).normal(size=(20, 5)).astype(np.float32)
    before = model.predict(x, verbose=0)
    bias_before = balance.output_layer(model).get_weights()[1].copy()
    balance.fold_into_output(model, temperature=0.6, prior=PRIOR, tau=0.5)
    after = model.predict(x, verbose=0)
    np.testing.assert_allclose(after, balance.adjust_probabilities(before, 0.6, PRIOR, 0.5), atol=1e-5)
    # The bias moved by -tau log(prior), after the temperature's division.
    np.testing.assert_allclose(balance.output_layer(model).get_weights()[1],
                               (bias_before - 0.5 * np.log(PRIOR)) / 0.6, atol=1e-6)
    # The temperature alone never changes which class a face gets.
    model2 = keras.models.clone_model(model)
    model2.set_weights(model.get_weights())
    balance.fold_into_output(model2, temperature=3.0)
    np.testing.assert_array_equal(model2.predict(x, verbose=0).argmax(1), after.argmax(1))
    # A post-hoc prior shift moves predictions towards the rare class.
    assert np.sum(after.argmax(1) == 2) >= np.sum(before.argmax(1) == 2)


def test_fitted_temperature_recovers_the_one_that_made_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 5)) * 3
    true_p = np.exp(logits / 2.0) / np.exp(logits / 2.0).sum(1, keepdims=True)  # The truth is T = 2...
    labels = np.array([rng.choice(5, p=row) for row in true_p])
    over_confident = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)  # ...the model says T = 1.
    assert balance.fit_temperature(over_confident, labels) == pytest.approx(2.0, rel=0.1)


def test_output_layer_must_be_dense():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3), keras.layers.Softmax()])
    with pytest.raises(ValueError, match="not a Dense"):
        balance.output_layer(model)
