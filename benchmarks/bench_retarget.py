"""Retarget + write a ten-minute take (18,000 frames at 30 fps) onto Rigify's generated rig.

    .venv/bin/python benchmarks/bench_retarget.py     → benchmarks/retarget_results.md and .json

Goals (issue 6): the keyframe write at ≥ 1 M keys/s and the whole step (retarget + write) within
3 s on the development machine. The yardstick, in the same run: Blender's own `keyframe_insert`,
the way add-ons usually key a pose (set the bone's rotation, insert, next frame), on a slice of
the same take onto the same bones — the slice is short because keyframe_insert slows as curves
grow. Also measured: the 'reduced' density on the full take (keys kept, worst angle, time).

The take is the rule-based engine's, conducting ten minutes of the bundled demo music (made once
and cached under out/bench/).
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "out" / "bench"
RESULTS = Path(__file__).resolve().parent / "retarget_results"
FRAMES = 18_000
SLICE = 600  # frames keyed with keyframe_insert
ROUNDS = 3


def ten_minute_take() -> dict:
    path = OUT / "take_10min.npz"
    if not path.exists():
        import soundfile as sf
        from backend.demo_music import demo_piece
        from backend.engine import generate_take
        OUT.mkdir(parents=True, exist_ok=True)
        piece = demo_piece(bars=244)  # 96 bpm, 4/4: 244 bars ≈ 610 s
        wav = OUT / "demo_10min.wav"
        sf.write(wav, piece.samples, piece.sr)
        generate_take(wav, engine="rules", seed=0, start=0.0, duration=FRAMES / 30).save(path)
    z = np.load(path)
    header = json.loads(str(z["header"]))
    kp = z["keypoints_3d"].astype(np.float64)[:FRAMES]
    assert len(kp) == FRAMES, len(kp)
    return {"keypoints_3d": kp, "beats": z["beats"], "fps": header["fps"]}


def keyframe_insert_rate(rig, quats: dict[str, np.ndarray], bones: dict[str, str]) -> tuple[int, float]:
    """(keys, seconds) keying SLICE frames of the same rotations with pose-bone keyframe_insert."""
    import bpy
    from mathutils import Euler, Quaternion
    rig.animation_data_create().action = None
    pbs = {s: rig.pose.bones[b] for s, b in bones.items()}
    keys = 0
    t0 = time.perf_counter()
    for i in range(SLICE):
        for s, pb in pbs.items():
            q = quats[s][i]
            if pb.rotation_mode == "QUATERNION":
                pb.rotation_quaternion = q
                pb.keyframe_insert("rotation_quaternion", frame=1 + i, group=pb.name)
                keys += 4
            else:
                pb.rotation_euler = Quaternion(q).to_euler(pb.rotation_mode, Euler(pb.rotation_euler, pb.rotation_mode))
                pb.keyframe_insert("rotation_euler", frame=1 + i, group=pb.name)
                keys += 3
    seconds = time.perf_counter() - t0
    bpy.data.actions.remove(rig.animation_data.action)
    return keys, seconds


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main() -> None:
    import bpy
    from baton_rigs.armature import bone_map_for, rig_rest
    from baton_rigs.keyframes import apply_take
    from baton_rigs.retarget import retarget
    from tools.rig_builder import build_rig

    take = ten_minute_take()
    rig = build_rig("rigify_fk")
    bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = 30, 1.0
    runs = []
    for _ in range(ROUNDS):
        r = apply_take(rig, take["keypoints_3d"], take["fps"], 0.0, take["beats"], frame_offset=1,
                       verify_frames=0, name="bench")
        runs.append(r)
        bpy.data.actions.remove(bpy.data.actions[r.action])
    best = min(runs, key=lambda r: r.timings["total_s"])
    write_s = statistics.median(r.timings["write_s"] for r in runs)
    total_s = statistics.median(r.timings["total_s"] for r in runs)
    retarget_s = statistics.median(r.timings["retarget_s"] for r in runs)
    bulk_rate = best.keys / write_s

    bm = bone_map_for(rig)
    quats = retarget(take["keypoints_3d"][:SLICE], rig_rest(rig, bm)).quats
    ins_keys, ins_s = keyframe_insert_rate(rig, quats, {s: bm.bones[s] for s in quats})
    ins_rate = ins_keys / ins_s

    reduced = apply_take(rig, take["keypoints_3d"], take["fps"], 0.0, take["beats"], frame_offset=1,
                         verify_frames=8, density="reduced", name="bench reduced")
    animator = apply_take(rig, take["keypoints_3d"], take["fps"], 0.0, take["beats"], frame_offset=1,
                          verify_frames=8, density="animator", name="bench animator")
    channels = sum(len(bag.fcurves) for layer in bpy.data.actions[animator.action].layers
                   for strip in layer.strips for bag in strip.channelbags)
    full = apply_take(rig, take["keypoints_3d"], take["fps"], 0.0, take["beats"], frame_offset=1,
                      verify_frames=8, name="bench checked")

    results = {
        "machine": {"cpu": _cpu(), "python": platform.python_version(),
                    "blender": bpy.app.version_string},
        "take": {"frames": FRAMES, "fps": take["fps"], "bones": len(best.bones), "rig": "Rigify generated (FK controls)"},
        "all": {"keys": best.keys, "retarget_s": round(retarget_s, 3), "write_s": round(write_s, 3),
                "total_s": round(total_s, 3), "write_keys_per_s": round(bulk_rate), "rounds": ROUNDS,
                "fk_evaluated_mean_deg": round(full.fk_evaluated_mean_deg, 4),
                "fk_evaluated_max_deg": round(full.fk_evaluated_max_deg, 3)},
        "keyframe_insert": {"frames": SLICE, "keys": ins_keys, "seconds": round(ins_s, 3),
                            "keys_per_s": round(ins_rate)},
        "speedup_write_vs_keyframe_insert": round(bulk_rate / ins_rate, 1),
        "reduced": {"keys": reduced.keys, "keys_every_frame": reduced.keys_every_frame,
                    "kept_fraction": round(reduced.keys / reduced.keys_every_frame, 4),
                    "max_error_deg": round(reduced.max_error_deg, 3), "tolerance_deg": 1.0,
                    "total_s": round(reduced.timings["total_s"], 2)},
        "animator": {"keys": animator.keys, "keys_every_frame": animator.keys_every_frame,
                     "kept_fraction": round(animator.keys / animator.keys_every_frame, 4),
                     "keys_per_channel_per_beat": round(animator.keys / channels / len(take["beats"]), 2),
                     "max_error_deg": round(animator.max_error_deg, 3), "tolerance_deg": 2.0,
                     "total_s": round(animator.timings["total_s"], 2)},
        "goals": {"write_keys_per_s_min": 1_000_000, "total_s_max": 3.0,
                  "met": bool(bulk_rate >= 1_000_000 and total_s <= 3.0)},
    }
    RESULTS.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    a, k, red, an = results["all"], results["keyframe_insert"], results["reduced"], results["animator"]
    md = f"""# Retarget + keyframe write: a ten-minute take onto a Rigify rig

Measured by `benchmarks/bench_retarget.py` (Blender {results['machine']['blender']}, Python {results['machine']['python']},
{results['machine']['cpu']}; 2 shared cores). The rule-based engine's take of ten minutes of the demo music,
{FRAMES:,} frames at 30 fps, onto Rigify's generated human rig keyed on its FK controls ({len(best.bones)}
bones, quaternion and Euler channels, plus the IK/FK settings and the bones held at rest). Median of {ROUNDS} rounds.

| step | result | goal |
|---|---|---|
| retarget (numpy) | {a['retarget_s']:.2f} s | |
| write {a['keys']:,} keys (slotted action, `keyframe_points.add` + `foreach_set`) | {a['write_s']:.2f} s = **{a['write_keys_per_s'] / 1e6:.2f} M keys/s** | ≥ 1 M keys/s |
| whole step (`apply_take`, density 'all') | **{a['total_s']:.2f} s** | ≤ 3 s |
| yardstick: `keyframe_insert` per bone and frame, {k['frames']} frames ({k['keys']:,} keys) | {k['seconds']:.2f} s = {k['keys_per_s'] / 1e3:.0f} k keys/s | |
| bulk write ÷ keyframe_insert, same run | **{results['speedup_write_vs_keyframe_insert']}×** | |

Goals met: **{'yes' if results['goals']['met'] else 'NO'}**. The rig then follows the take as Blender evaluates it
(constraints, drivers, IK/FK switch) within {a['fk_evaluated_mean_deg']:.3f}° on average (worst {a['fk_evaluated_max_deg']:.2f}°,
8 frames across the take).

Density 'reduced' (beats, wrist turning points, and Bézier keys refined until every keyed bone is within
{red['tolerance_deg']:g}° of the full take, checked by evaluating the written curves): {red['keys']:,} of
{red['keys_every_frame']:,} keys kept ({100 * red['kept_fraction']:.1f}%), worst angle {red['max_error_deg']:.2f}°,
in {red['total_s']:.1f} s.

Density 'animator' (the add-on's default: ictus, extremes and turning points, every keyed bone within
{an['tolerance_deg']:g}°): {an['keys']:,} of {an['keys_every_frame']:,} keys kept ({100 * an['kept_fraction']:.1f}%),
{an['keys_per_channel_per_beat']:.2f} keys per channel per beat over all {channels} channels (goal ≤ 3 per moving channel),
worst angle {an['max_error_deg']:.2f}°, in {an['total_s']:.1f} s.
"""
    RESULTS.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
