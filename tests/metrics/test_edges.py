"""Where the 8 edge points and segments of a lesion lie."""

import numpy as np
import pytest

from advmri.metrics.edges import directions, edge_segments, sample_profiles


def square_mask(r0, c0, r1, c1, shape=(40, 40)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[r0:r1, c0:c1] = True
    return mask


def test_edge_points_lie_on_the_pixel_boundary_of_a_square_lesion():
    seg = edge_segments(square_mask(10, 12, 21, 23), step=0.01)  # 11 x 11, centre (15, 17)
    assert seg.centre == pytest.approx([15.0, 17.0])
    # 0 degrees: right, along the centre row, to the boundary at column 22.5
    assert seg.edge_points[0] == pytest.approx([15.0, 22.5], abs=0.01)
    # 90 degrees: up (towards row 0) to the boundary at row 9.5
    assert seg.edge_points[2] == pytest.approx([9.5, 17.0], abs=0.01)
    # 45 degrees: up-right, to the corner region
    assert seg.edge_points[1] == pytest.approx([9.5, 22.5], abs=0.01)
    assert seg.valid.all()


def test_segments_are_centred_on_edge_points_and_point_outwards():
    seg = edge_segments(square_mask(10, 12, 21, 23), segment_length=5.0, samples=21)
    assert seg.offsets[0] == -2.5 and seg.offsets[-1] == 2.5
    unit = directions()
    for d in range(8):
        np.testing.assert_allclose(seg.coords[d, 10], seg.edge_points[d])
        np.testing.assert_allclose(seg.coords[d, -1] - seg.coords[d, 0], 5.0 * unit[d])
        # the inner end lies nearer the centre than the outer end
        inner = np.linalg.norm(seg.coords[d, 0] - seg.centre)
        outer = np.linalg.norm(seg.coords[d, -1] - seg.centre)
        assert inner < outer


def test_profiles_sample_the_image_at_the_segment_points():
    rows, cols = np.mgrid[0:40, 0:40]
    ramp = 0.01 * rows + 0.02 * cols  # linear: every spline order reproduces it exactly
    seg = edge_segments(square_mask(10, 12, 21, 23))
    expected = 0.01 * seg.coords[..., 0] + 0.02 * seg.coords[..., 1]
    np.testing.assert_allclose(sample_profiles(ramp, seg, order=1), expected, atol=1e-12)
    # the cubic spline's boundary handling bends a ramp slightly near the image border only
    np.testing.assert_allclose(sample_profiles(ramp, seg, order=3), expected, atol=1e-6)


def test_ray_from_a_centre_outside_a_crescent_enters_then_leaves_the_mask():
    rows, cols = np.mgrid[0:60, 0:60]
    dist = np.hypot(rows - 30, cols - 30)
    crescent = (dist < 15) & (np.hypot(rows - 30, cols - 36) > 10)  # hole around the centre
    seg = edge_segments(crescent)
    assert not crescent[int(round(seg.centre[0])), int(round(seg.centre[1]))]
    # the 180-degree ray (to the left) crosses the crescent's thick left part, leaving at r=15
    assert seg.edge_points[4][1] == pytest.approx(30 - 15, abs=0.6)


def test_invalid_segments_have_nan_coordinates_and_profiles():
    mask = square_mask(0, 10, 8, 20)  # touches the top border
    seg = edge_segments(mask)
    assert not seg.valid.all()
    assert np.isnan(seg.coords[~seg.valid]).all()
    profiles = sample_profiles(np.random.default_rng(0).random((40, 40)), seg)
    assert np.isnan(profiles[~seg.valid]).all()
    assert np.isfinite(profiles[seg.valid]).all()
