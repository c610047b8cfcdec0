"""2D → 3D on synthetic 3D motion projected to 2D."""

import numpy as np
import pytest

from baton_core import skeleton as sk
from backend.lift3d import lift_to_3d
from backend.metrics import bone_length_cv
from synthetic_motion import synthetic_conducting


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lift_recovers_synthetic_motion(seed):
    truth = synthetic_conducting(seconds=20, seed=seed)
    lifted = lift_to_3d(sk.project_front(truth))
    err = np.linalg.norm(lifted - truth, axis=-1) / sk.SHOULDER_WIDTH_M
    assert err[:, [sk.L_WRIST, sk.R_WRIST]].mean() <= 0.15
    assert bone_length_cv(lifted) <= 0.02
    # the front view is kept: the lift only adds depth
    assert np.abs(sk.project_front(lifted) - sk.project_front(truth)).max() < 0.02


def test_lift_conventions_metres_z_up_facing_minus_y():
    lifted = lift_to_3d(sk.project_front(synthetic_conducting(seconds=5)))
    hips = lifted[:, [sk.L_HIP, sk.R_HIP]].mean(1)
    assert np.allclose(np.median(hips[:, [0, 2]], axis=0), [0.0, sk.HIP_HEIGHT], atol=0.02)
    assert (lifted[:, sk.NOSE, 2] > lifted[:, sk.L_SHOULDER, 2]).all()  # Z up
    assert (lifted[:, sk.L_SHOULDER, 0] > lifted[:, sk.R_SHOULDER, 0]).all()  # the person's left is +X
    shoulders_y = lifted[:, [sk.L_SHOULDER, sk.R_SHOULDER], 1].mean(1)
    assert (lifted[:, sk.R_WRIST, 1] < shoulders_y).all()  # hands in front, toward −Y
    sw = np.linalg.norm(lifted[:, sk.L_SHOULDER] - lifted[:, sk.R_SHOULDER], axis=1)
    assert np.ptp(sw) < 1e-6 and sw[0] == pytest.approx(sk.SHOULDER_WIDTH_M, rel=0.01)  # one rigid length


def test_lift_is_temporally_consistent_on_noisy_model_like_input():
    kp = sk.project_front(synthetic_conducting(seconds=10))
    kp = kp + np.random.default_rng(0).normal(0, 0.002, kp.shape)
    lifted = lift_to_3d(kp)
    depth_steps = np.abs(np.diff(lifted[:, sk.R_WRIST, 1]))
    assert np.percentile(depth_steps, 99) < 0.05  # no flips of the depth sign from frame to frame
    assert bone_length_cv(lifted) <= 0.02


def test_collapsed_2d_motion_is_a_clear_error():
    from baton_core.errors import BatonError
    with pytest.raises(BatonError, match="no shoulder width"):
        lift_to_3d(np.full((60, 13, 2), 0.5))
