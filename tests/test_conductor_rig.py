"""The default conductor: a skinned, dressed humanoid of a conductor's size with a baton in the
right hand, built by one call from the committed data; and the baton on any rig, at its scale."""

import bpy
import mathutils
import numpy as np
import pytest

from baton_rigs import conductor_rig
from baton_rigs.bonemap import detect
from baton_rigs.conductor_rig import attach_baton, create_default_conductor
from baton_rigs.errors import RigError
from baton_rigs.keyframes import apply_take


@pytest.fixture(scope="module")
def conductor():
    coll = bpy.data.collections.new("conductor test")
    bpy.context.scene.collection.children.link(coll)
    return create_default_conductor(coll, name="Maestro")


def _world_verts(obj):
    dg = bpy.context.evaluated_depsgraph_get()
    mesh = obj.evaluated_get(dg).to_mesh()
    v = np.zeros(len(mesh.vertices) * 3)
    mesh.vertices.foreach_get("co", v)
    m = np.array(obj.matrix_world)
    return v.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]


def test_one_call_builds_a_dressed_skinned_conductor(conductor):
    assert conductor.type == "ARMATURE" and conductor.name == "Maestro"
    body = next(c for c in conductor.children if c.type == "MESH" and "body" in c.name)
    baton = next(c for c in conductor.children if "baton" in c.name)
    assert body.modifiers["Armature"].object == conductor and len(body.vertex_groups) > 40
    assert {m.name for m in body.data.materials} == {f"Baton {n}" for n in ("suit", "skin", "shirt", "shoes", "eyes", "hair")}
    used = np.zeros(len(body.data.polygons), np.int32)
    body.data.polygons.foreach_get("material_index", used)
    assert set(used.tolist()) == set(range(6))
    assert baton.parent_type == "BONE" and baton.parent_bone == "hand_r"
    assert detect(b.name for b in conductor.data.bones).bonemap.convention == "ue4"
    v = _world_verts(body)
    assert v[:, 2].min() == pytest.approx(0.0, abs=0.01) and v[:, 2].max() == pytest.approx(1.78, abs=0.04)
    shoulders = np.linalg.norm(np.array(conductor.data.bones["upperarm_l"].head_local)
                               - np.array(conductor.data.bones["upperarm_r"].head_local))
    assert 0.30 < shoulders < 0.42


def test_the_baton_and_the_body_follow_the_take(conductor, rules_take):
    body = next(c for c in conductor.children if c.type == "MESH" and "body" in c.name)
    baton = next(c for c in conductor.children if "baton" in c.name)
    rest_hand = np.array(conductor.matrix_world @ conductor.data.bones["hand_r"].head_local)
    wrist_vertex = np.argmin(np.linalg.norm(_world_verts(body) - rest_hand, axis=1))
    apply_take(conductor, rules_take["keypoints_3d"], 30.0, 0.0, scene_fps=30.0, frame_offset=1, verify_frames=0)
    hands = []
    for f in (40, 120, 300):
        bpy.context.scene.frame_set(f)
        hand = np.array(conductor.matrix_world @ conductor.pose.bones["hand_r"].head)
        assert np.linalg.norm(np.array(baton.matrix_world.translation) - hand) < 0.12  # held in the hand
        assert np.linalg.norm(_world_verts(body)[wrist_vertex] - hand) < 0.05  # the skin goes with it
        hands.append(hand)
    assert np.linalg.norm(hands[0] - rest_hand) > 0.2 and np.ptp(np.array(hands), axis=0).max() > 0.1


def test_a_baton_fits_any_rigs_scale(blender_rigs):
    rig = blender_rigs["mixamo"]  # centimetre bones under a 0.01-scaled object
    baton = attach_baton(rig)
    bpy.context.view_layer.update()
    z = np.array([c[2] for c in baton.bound_box])
    ends = [baton.matrix_world @ mathutils.Vector((0.0, 0.0, float(v))) for v in (z.min(), z.max())]
    assert 0.3 < (ends[1] - ends[0]).length < 0.5  # about 40 cm in the world
    bpy.data.objects.remove(baton)


def test_missing_conductor_data_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(conductor_rig, "conductor_dir", lambda: tmp_path)
    with pytest.raises(RigError, match="the default conductor's data is missing from"):
        create_default_conductor()
