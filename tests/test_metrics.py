"""Known answers for every measure in backend/metrics.py (../shared/metrics.md): each is computed
on motion or times built so that the right value is known by construction."""

import numpy as np
import pytest

from backend import metrics
from baton_core.skeleton import L_ELBOW, L_HIP, L_SHOULDER, L_WRIST, NOSE, R_ELBOW, R_HIP, R_SHOULDER, R_WRIST

FPS = 30.0


def still_figure(seconds: float, fps: float = FPS) -> np.ndarray:
    """(T, 13, 2) a figure standing still, shoulders one unit apart."""
    m = np.zeros((int(round(seconds * fps)), 13, 2))
    m[:, L_SHOULDER] = (1.0, 0.0)
    m[:, R_SHOULDER] = (0.0, 0.0)
    m[:, L_WRIST] = (1.0, 1.0)
    m[:, R_WRIST] = (0.0, 1.0)
    return m


def beating(beats: np.ndarray, seconds: float, depth: float = 0.5) -> np.ndarray:
    """The baton hand falls to its lowest point (largest image y) exactly on every beat."""
    m = still_figure(seconds)
    t = np.arange(len(m)) / FPS
    period = float(np.median(np.diff(beats)))
    m[:, R_WRIST, 1] = 1.0 + depth * np.cos(2 * np.pi * (t - beats[0]) / period)
    return m


def test_f_measure_counts_one_to_one_matches_inside_the_window():
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    assert metrics.f_measure(ref, ref) == 1.0
    assert metrics.f_measure(ref + 0.06, ref) == 1.0
    assert metrics.f_measure(ref + 0.08, ref) == 0.0
    # two hits of four estimates against four beats: P = R = 0.5
    assert metrics.f_measure(np.array([1.0, 2.0, 2.5, 3.5]), ref) == pytest.approx(0.5)
    # two estimates on one beat count once: P = 1/2, R = 1/4
    assert metrics.f_measure(np.array([1.0, 1.01]), ref) == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    assert metrics.f_measure(np.zeros(0), ref) == 0.0


def test_ictus_times_are_the_lowest_points_of_the_strokes():
    beats = np.arange(0.5, 10.0, 0.5)
    ictus = metrics.ictus_times(beating(beats, 10.0))
    assert np.allclose(ictus, beats, atol=1 / FPS + 1e-9)
    assert metrics.ictus_f(ictus, beats) == 1.0
    assert metrics.ictus_times(still_figure(10.0)).size == 0  # a hand at rest beats nothing


def test_ictus_f_takes_the_better_metrical_level_and_chance_is_low():
    beats = np.arange(0.5, 20.0, 0.5)
    half = beats[1::2]  # strokes on every other beat
    assert metrics.ictus_f(half, beats) == 1.0
    assert metrics.ictus_f_chance(beats, beats) < 0.3


def test_beat_align_score_is_one_on_the_beats_and_falls_with_distance():
    beats = np.arange(1.0, 10.0, 1.0)
    assert metrics.beat_align_score(beats, beats) == 1.0
    assert metrics.beat_align_score(beats + 0.1, beats) == pytest.approx(np.exp(-0.5))
    assert metrics.beat_align_score(np.zeros(0), beats) == 0.0


def test_seam_finds_a_restart_and_not_a_smooth_join():
    t = np.arange(300) / FPS
    m = np.zeros((300, 13, 2))
    m[:, :, 0] = np.sin(2 * np.pi * t)[:, None]
    assert metrics.seam(m, at=np.array([150])) == pytest.approx(1.0, abs=0.35)
    jumped = m.copy()
    jumped[150:] += 1.0  # the second window restarts one unit away
    assert metrics.seam(jumped, at=np.array([150])) > 5
    assert metrics.seam(m, at=np.zeros(0, int)) == 0.0


def test_jitter_and_ripple_separate_smooth_from_rippled_motion():
    t = np.arange(600) / FPS
    smooth = np.zeros((600, 13, 2))
    smooth[..., 0] = np.sin(2 * np.pi * t)[:, None]
    rippled = smooth.copy()
    rippled[..., 0] += 0.05 * np.sin(2 * np.pi * 10 * t)[:, None]
    assert metrics.jitter(smooth) < metrics.jitter(rippled)
    assert metrics.ripple_ratio(smooth) < 0.01 < metrics.ripple_ratio(rippled)


def test_seed_diversity_is_zero_for_the_same_motion():
    m = beating(np.arange(0.5, 10, 0.5), 10.0)
    assert metrics.seed_diversity(m, m) == 0.0
    assert metrics.seed_diversity(m, m + 1.0) > 1.0


def test_bars_from_downbeats_groups_beats_and_keeps_standard_counts():
    beats = np.arange(0.0, 8.0, 0.5)  # 16 beats
    bars = metrics.bars_from_downbeats(beats, np.array([0.0, 2.0, 4.0, 5.5]))
    assert [b.pattern for b in bars] == ["4", "4", "3"]
    assert np.allclose(bars[0].beats, [0.0, 0.5, 1.0, 1.5]) and bars[0].next_downbeat == 2.0
    assert metrics.bars_from_downbeats(beats, np.array([0.0, 4.0])) == []  # eight beats: no pattern


def four_four(bars: int, period: float = 0.5, size: float = 0.5, spots=None, jitter: float = 0.0,
              seed: int = 0) -> tuple[np.ndarray, list]:
    """A textbook 4/4 beaten at `size`: ictus down-centre, left, right, up-centre (or at `spots`,
    moved by `jitter` at random each beat), the hand rebounding a little after each ictus and high
    after the last, before the next downbeat; the bars as the judges read them."""
    spots = np.array([(0.0, 1.5), (1.0, 1.0), (-1.0, 1.0), (0.0, 0.6)]) if spots is None else np.asarray(spots)
    m = still_figure(bars * 4 * period + 2.0)
    t = np.arange(len(m)) / FPS
    beats = np.arange(bars * 4) * period + 2 * period
    times = np.concatenate([[period], beats, [beats[-1] + period]])  # a preparatory beat 4 first
    spot = (np.arange(len(times)) - 1) % 4
    rng = np.random.default_rng(seed)
    keys = (spots[spot] + jitter * rng.standard_normal((len(times), 2))) * size
    for axis in (0, 1):
        m[:, R_WRIST, axis] = np.interp(t, times, keys[:, axis])
    k = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    phase = np.clip((t - times[k]) / period, 0, 1)
    rebound = np.where(spot[k] == 3, 1.2, 0.3) * size  # image y falls as the hand rises
    m[:, R_WRIST, 1] -= rebound * np.sin(np.pi * phase) * (t >= times[0]) * (t <= times[-1])
    bar_list = [metrics.Bar(beats[4 * j:4 * j + 4], float(times[4 * j + 5]), "4") for j in range(bars)]
    return m, bar_list


def test_pattern_legibility_is_high_for_distinct_spots_and_chance_is_lower():
    m, bars = four_four(8)
    r2, chance = metrics.pattern_legibility(m, bars)
    assert r2 > 0.95 and chance < 0.5
    one_spot, _ = four_four(8, spots=[(0.0, 1.0)] * 4, jitter=0.1)  # every beat near one place
    r2_one, chance_one = metrics.pattern_legibility(one_spot, bars)
    assert r2_one < 0.3 and abs(r2_one - chance_one) < 0.2


def test_gesture_size_is_the_path_diagonal_in_shoulder_widths():
    m, bars = four_four(4, size=0.5)
    big, _ = four_four(4, size=1.0)
    small, large = metrics.gesture_sizes(m, bars), metrics.gesture_sizes(big, bars)
    assert np.allclose(large, 2 * small, rtol=0.05)
    # at size 0.5 the path spans 1.0 across and 0.825 from the downbeat (y 0.75) to the top of
    # the rebound after beat 4 (midway between 0.3 and 0.75, raised 0.6)
    assert np.allclose(small, np.hypot(1.0, 0.825), rtol=0.02)


def test_left_hand_use_counts_windows_where_it_travels():
    m = still_figure(8.1)  # four whole 2 s windows
    assert metrics.left_hand_use(m) == 0.0
    t = np.arange(len(m)) / FPS
    moving = m.copy()
    moving[:120, L_WRIST, 1] = 1.0 + 0.5 * np.sin(2 * np.pi * t[:120])  # the first two windows
    assert metrics.left_hand_use(moving) == pytest.approx(0.5)


def test_a_cue_is_the_left_hand_lifting_in_the_beat_before_an_entrance():
    m = still_figure(10.0)
    t = np.arange(len(m)) / FPS
    m[:, L_WRIST, 1] -= 0.5 * np.clip((t - 4.2) / 0.4, 0, 1) * np.clip((5.6 - t) / 0.4, 0, 1)  # up just before 5 s
    entries, periods = np.array([2.0, 5.0, 8.0, 0.3]), np.full(4, 0.6)
    assert metrics.cues_given(m, entries, periods).tolist() == [False, True, False, False]  # 0.3 s: too early to judge
    early = still_figure(10.0)
    early[:, L_WRIST, 1] -= 0.5 * (t > 3.0)  # lifted two beats before, then held: not a cue for 5 s
    assert not metrics.cues_given(early, entries[1:2], periods[1:2]).any()


def test_left_hand_shaping_follows_the_loudness():
    m = still_figure(20.0)
    t = np.arange(len(m)) / FPS
    loud = -20 + 10 * np.sin(2 * np.pi * t / 10)
    m[:, L_WRIST, 1] = 1.0 - 0.2 * np.sin(2 * np.pi * t / 10)  # rises (image y falls) when loud
    assert metrics.left_hand_shaping(m, loud) > 0.99
    m[:, L_WRIST, 1] = 1.0 + 0.2 * np.sin(2 * np.pi * t / 10)
    assert metrics.left_hand_shaping(m, loud) < -0.99


def test_preparation_and_release_need_a_stroke_into_the_first_sound_and_a_cut_off_after_the_last():
    m = still_figure(6.0)
    t = np.arange(len(m)) / FPS
    loud = np.where((t >= 2.0) & (t < 4.0), -10.0, -80.0)  # silence, two seconds of sound, silence
    assert metrics.preparation(m, loud) is False and metrics.release(m, loud) is False  # a hand that never moves
    prep = (t >= 1.4) & (t < 2.0)
    m[prep, R_WRIST, 1] = 1.0 - 0.4 * np.sin(np.pi * (t[prep] - 1.4) / 0.6)  # up and back down onto the sound
    cut = (t >= 4.0) & (t < 4.6)
    m[cut, R_WRIST, 0] = 0.5 * np.sin(np.pi * (t[cut] - 4.0) / 0.6)  # a cut-off, then still
    assert metrics.preparation(m, loud) is True and metrics.release(m, loud) is True
    moving = m.copy()
    late = t >= 4.8
    moving[late, R_WRIST, 1] = 1.0 + 0.3 * np.cos(2 * np.pi * (t[late] - 5.0) / 0.5)  # still beating: no release
    assert metrics.release(moving, loud) is False
    assert metrics.preparation(m, np.full(len(m), -10.0)) is None  # starts in sound: nothing to prepare from
    assert metrics.release(m, np.full(len(m), -10.0)) is None


def test_rms_db_and_dynamics_follow_a_crescendo():
    sr = 8000
    t = np.arange(30 * sr) / sr
    gain = np.linspace(0.01, 1.0, len(t))
    db = metrics.rms_db(gain * np.sin(2 * np.pi * 440 * t), sr)
    assert len(db) == 900 and db[-1] - db[0] == pytest.approx(40, abs=1)
    m = still_figure(30.0)
    speed = np.linspace(0.1, 2.0, len(m))  # the hand speeds up with the music
    m[:, R_WRIST, 0] = np.cumsum(speed * np.sign(np.sin(2 * np.pi * np.arange(len(m)) / FPS))) / FPS
    r, chance = metrics.dynamics_correlation(m, gain * np.sin(2 * np.pi * 440 * t), sr)
    assert r > 0.9 and chance < r


def test_pattern_and_downbeat_accuracy_read_a_textbook_four():
    m, bars = four_four(6)
    assert metrics.bar_labels(m, bars[1].beats, bars[1].next_downbeat) == "DLRU"
    assert metrics.pattern_accuracy(m, bars) == 1.0
    assert metrics.downbeat_accuracy(m, bars) == 1.0
    shifted = [metrics.Bar(b.beats + 0.5, b.next_downbeat + 0.5, "4") for b in bars[:-1]]
    assert metrics.downbeat_accuracy(m, shifted) == 0.0


def test_rde_sce_sdp_of_a_motion_against_itself():
    m = beating(np.arange(0.5, 40, 0.5), 40.0)
    assert metrics.rde(m, m) == 0.0 and metrics.sce(m, m) == 0.0
    assert metrics.sdp(m, m) == pytest.approx(100.0)
    assert metrics.sdp(m, 0.5 * m) == pytest.approx(50.0)
    assert metrics.rde(m, 3 * m) > 0 and metrics.sce(m, 3 * m) > 0


def test_bone_length_cv_is_zero_for_a_rigid_figure():
    m = np.zeros((10, 13, 3))
    m[:, :, 0] = np.arange(13)
    assert metrics.bone_length_cv(m + np.arange(10)[:, None, None]) == pytest.approx(0.0)


def test_face_covered_counts_the_frames_with_either_hand_before_the_face():
    """Shoulders one unit apart, the nose half a unit above their middle; a hand's centre lies
    HAND_REACH on from the wrist along the forearm. Before the eyes, either hand covers the face; as
    high but half a unit to the side, or before the chest, it does not."""
    m = still_figure(4.0)
    m[:, NOSE] = (0.5, -0.5)
    m[:, R_ELBOW] = (0.0, 0.2)
    m[:, L_ELBOW] = (1.0, 0.2)
    wrist = lambda elbow, x, y: np.array([x, y]) - metrics.HAND_REACH * (np.array([x, y]) - elbow) / np.hypot(x - elbow[0], y - elbow[1])
    m[:, L_WRIST] = wrist((1.0, 0.2), 1.0, 0.5)  # the left hand before the left shoulder
    m[:30, R_WRIST] = wrist((0.0, 0.2), 0.5, -0.6)  # before the eyes
    m[30:60, R_WRIST] = wrist((0.0, 0.2), 0.0, -0.6)  # beside the face, at its height
    m[60:, R_WRIST] = wrist((0.0, 0.2), 0.5, 0.5)  # before the chest
    m[90:, L_WRIST] = wrist((1.0, 0.2), 0.6, -0.4)  # and then the left hand before the face
    assert np.allclose(metrics.hand_centre(m, 1.0)[[0, 30, 60]], [(0.5, -0.6), (0.0, -0.6), (0.5, 0.5)])
    assert np.allclose(metrics.hand_centre(m, 1.0, L_ELBOW, L_WRIST)[[0, 90]], [(1.0, 0.5), (0.6, -0.4)])
    assert metrics.face_covered(m) == pytest.approx(2 / 4)


def test_left_hand_on_hip_counts_the_frames_with_the_left_hand_at_the_hip_s_side():
    """Shoulders one unit apart, the hip joints 1.5 below them and 0.7 apart. A left hand at the
    waist's outline, just above the joint, is on the hip; before the belly, hanging below the joint
    or before the chest, it is not."""
    m = still_figure(4.0)
    m[:, L_HIP] = (0.85, 1.5)
    m[:, R_HIP] = (0.15, 1.5)
    m[:, L_ELBOW] = (1.2, 0.9)
    wrist = lambda x, y: np.array([x, y]) - metrics.HAND_REACH * (np.array([x, y]) - (1.2, 0.9)) / np.hypot(x - 1.2, y - 0.9)
    for k, (x, y) in enumerate([(1.0, 1.3), (0.6, 1.2), (1.1, 1.7), (0.9, 0.6)]):  # hip, belly, hanging, chest
        m[30 * k: 30 * (k + 1), L_WRIST] = wrist(x, y)
    assert np.allclose(metrics.hand_centre(m, 1.0, L_ELBOW, L_WRIST)[[0, 30, 60, 90]], [(1.0, 1.3), (0.6, 1.2), (1.1, 1.7), (0.9, 0.6)])
    assert metrics.left_hand_on_hip(m) == pytest.approx(1 / 4)
