"""shifts.py: each shift does what it says to a test picture, and the subtle
faces are the ones the FER+ votes name."""
import numpy as np
import pytest

from ferkit.data import shifts


def dot(row=24, col=24, size=48):
    """A black face with one white 2x2 square whose top-left corner is (row, col)."""
    image = np.zeros((1, size, size, 1), np.uint8)
    image[0, row : row + 2, col : col + 2] = 255
    return image


def centre_of_mass(image):
    grey = image[0, :, :, 0].astype(np.float64)
    rows, cols = np.indices(grey.shape)
    return (rows * grey).sum() / grey.sum(), (cols * grey).sum() / grey.sum()


def test_every_shift_keeps_the_shape_and_type_and_changes_a_face():
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 1), dtype=np.uint8)
    for name, (_, change) in shifts.SHIFTS.items():
        out = change(faces)
        assert out.shape == faces.shape and out.dtype == np.uint8, name
        assert not np.array_equal(out, faces), name


def test_framing_moves_and_scales_about_the_centre():
    # A tighter crop pushes an off-centre point outwards, a looser one pulls it in.
    y, x = centre_of_mass(dot(10, 10))
    ty, tx = centre_of_mass(shifts.reframe(dot(10, 10), scale=0.85))
    ly, lx = centre_of_mass(shifts.reframe(dot(10, 10), scale=1.15))
    assert ty < y < ly and tx < x < lx
    assert ty == pytest.approx(23.5 + (y - 23.5) / 0.85, abs=0.3)
    # The crop moved 10% right and down: the face moves 4.8 px left and up.
    sy, sx = centre_of_mass(shifts.reframe(dot(), shift=(0.1, 0.1)))
    assert (sy, sx) == (pytest.approx(24.5 - 4.8, abs=0.3), pytest.approx(24.5 - 4.8, abs=0.3))


def test_turn_rotates_anticlockwise_about_the_centre():
    y, x = centre_of_mass(shifts.turn(dot(23, 40), 90))  # Right of centre -> above it.
    assert x == pytest.approx(24, abs=1) and y < 10


def test_small_and_blur_smooth_an_edge_and_keep_the_mean():
    edge = np.zeros((1, 48, 48, 1), np.uint8)
    edge[:, :, 24:] = 200
    for out in (shifts.small(edge, 24), shifts.blur(edge, 1.5)):
        assert 0 < out[0, 10, 23, 0] < 200 and out[0, 10, 0, 0] == 0 and out[0, 10, 47, 0] == 200
        assert abs(out.mean() - edge.mean()) < 2


def test_contrast_gamma_noise_and_jpeg_change_the_greys_as_named():
    face = np.random.default_rng(1).integers(40, 216, (2, 48, 48, 1), dtype=np.uint8)
    low = shifts.contrast(face, 0.5)
    assert low.std() == pytest.approx(face.std() / 2, rel=0.02)
    assert abs(low.mean() - face.mean()) < 1
    assert shifts.gamma(face, 1.8).mean() < face.mean() - 20  # Darker.
    noisy = shifts.noise(face, 12)
    assert (noisy.astype(float) - face).std() == pytest.approx(12, rel=0.1)
    np.testing.assert_array_equal(noisy, shifts.noise(face, 12))  # The same draw for the same seed.
    assert 0 < np.abs(shifts.jpeg(face, 30).astype(int) - face).mean() < 40


def test_bands_cover_exactly_their_rows():
    face = np.full((1, 48, 48, 1), 200, np.uint8)
    for rows, change in ((shifts.EYE_ROWS, shifts.SHIFTS["eyes"][1]), (shifts.MOUTH_ROWS, shifts.SHIFTS["mouth"][1])):
        out = change(face)
        covered = np.flatnonzero((out[0, :, :, 0] == 0).all(axis=1))
        assert covered.tolist() == list(range(*rows))
        assert (out[0, : rows[0]] == 200).all() and (out[0, rows[1] :] == 200).all()
    assert shifts.EYE_ROWS[1] <= shifts.MOUTH_ROWS[0]  # The eyes above the mouth.


def test_subtle_faces_are_expressions_some_annotators_called_neutral():
    # FER+'s columns: neutral, happiness, surprise, ...; majority in this project's order (Happy 3, Neutral 6).
    votes = np.zeros((4, 10))
    votes[0, [0, 1]] = [2, 8]  # Happy, two Neutral votes: subtle.
    votes[1, [0, 1]] = [1, 9]  # Happy, one Neutral vote: not.
    votes[2, [0, 1]] = [8, 2]  # Neutral itself: not.
    votes[3, [0, 1]] = [5, 5]  # No majority (-1): not.
    majority = np.array([3, 3, 6, -1])
    assert shifts.subtle_faces(votes, majority).tolist() == [True, False, False, False]
