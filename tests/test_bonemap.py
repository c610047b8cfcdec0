"""Bone maps: name normalisation, detection of every convention on real armatures, reports, a
user-supplied map, and clear errors for rigs no map fits."""

import json

import pytest

from baton_rigs.bonemap import (REQUIRED, SLOTS, BoneMap, detect, known_bonemaps, normalise, resolve)
from baton_rigs.errors import RigError

EXPECTED = {"rigify_metarig": "rigify_metarig", "rigify_fk": "rigify_fk", "makehuman": "makehuman", "ue4": "ue4",
            "ue5": "ue5", "mixamo": "mixamo", "vrm": "vrm", "cmu": "cmu", "conductor": "ue4",
            **{kind: kind for kind in ("autorig_pro", "autorig_pro_controls", "daz_genesis8", "daz_genesis9",
                                       "character_creator", "biped")}}


@pytest.mark.parametrize("a, b", [
    ("mixamorig:LeftForeArm", "LeftForeArm"), ("mixamorig1:LeftForeArm", "mixamorig_LeftForeArm"),
    ("upperarm_l", "UpperArm.L"), ("upper_arm.L", "upperArm_L"), ("leftUpperArm", "Left_UpperArm"),
    ("hand.R", "HAND_R"), ("Spine1", "spine-1"), ("J_Bip_L_Hand", "j_bip_l_hand"), ("LHipJoint", "L_HipJoint")])
def test_names_that_mean_the_same_bone_normalise_alike(a, b):
    assert normalise(a) == normalise(b)


@pytest.mark.parametrize("a, b", [("upper_arm.L", "upper_arm.R"), ("upper_arm.L", "ORG-upper_arm.L"),
                                  ("upper_arm_fk.L", "upper_arm.L"), ("Lower", "Lower.L"), ("LeftArm", "LeftForeArm")])
def test_different_bones_stay_apart(a, b):
    assert normalise(a) != normalise(b)


def test_every_map_file_loads_and_names_the_required_slots():
    maps = {m.name: m for m in known_bonemaps()}
    assert set(EXPECTED.values()) <= set(maps)
    for m in maps.values():
        assert set(m.bones) <= set(SLOTS)
        assert set(REQUIRED) <= set(m.bones), m.name


def test_each_test_rig_is_detected_as_its_convention(blender_rigs):
    for kind, obj in blender_rigs.items():
        found = detect(b.name for b in obj.data.bones)
        assert found.bonemap is not None, f"{kind}: {found.describe()}"
        assert found.bonemap.convention == EXPECTED[kind], (kind, found.scores[:3])
        assert set(REQUIRED) <= set(found.bonemap.bones)
        assert all(name in obj.data.bones for name in found.bonemap.bones.values())


def test_detection_reports_what_matched():
    names = ["Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "LeftArm", "LeftForeArm", "RightArm", "RightForeArm"]
    found = detect(names)
    assert found.bonemap.convention == "mixamo"
    assert "clavicle_l" in found.bonemap.missing and "hips" in found.bonemap.matched
    assert "10 of 16 slots matched" in found.describe() and "clavicle_l" in found.describe()


def test_mixamo_with_and_without_prefix_and_vrm_humanoid_names():
    base = ["Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "LeftShoulder", "LeftArm", "LeftForeArm",
            "LeftHand", "RightShoulder", "RightArm", "RightForeArm", "RightHand", "HeadTop_End"]
    for prefix in ("", "mixamorig:", "mixamorig7:"):
        bm = detect(prefix + n for n in base).bonemap
        assert bm.convention == "mixamo" and bm.bones["forearm_r"] == prefix + "RightForeArm"
    vrm = ["hips", "spine", "chest", "upperChest", "neck", "head", "leftShoulder", "leftUpperArm", "leftLowerArm",
           "leftHand", "rightShoulder", "rightUpperArm", "rightLowerArm", "rightHand", "leftUpperLeg", "rightUpperLeg"]
    bm = detect(vrm).bonemap
    assert bm.convention == "vrm" and bm.bones["upper_chest"] == "upperChest"


def test_an_unknown_rig_is_refused_with_the_closest_convention_named():
    names = ["Bone", "Bone.001", "Bone.002", "Bip01 Pelvis", "Bip01 Spine"]
    with pytest.raises(RigError, match=r"armature 'Robot': no known convention fits \(closest: biped, lacking head.*pass a bone map"):
        resolve("Robot", names)


def test_a_user_map_drives_a_rig_no_convention_knows(tmp_path):
    names = ["root", "torso_lo", "torso_hi", "skull", "arm_up_L", "arm_lo_L", "arm_up_R", "arm_lo_R", "paw_R"]
    user = {"hips": "root", "chest": "torso_hi", "head": "skull", "upper_arm_l": "arm_up_L",
            "forearm_l": "arm_lo_L", "upper_arm_r": "arm_up_R", "forearm_r": "arm_lo_R", "hand_r": "paw_R"}
    bm = resolve("Robot", names, user)
    assert isinstance(bm, BoneMap) and bm.bones == user and bm.convention == "user"
    path = tmp_path / "robot.json"
    path.write_text(json.dumps({"name": "robot", "bones": user}))
    assert resolve("Robot", names, str(path)).convention == "robot"
    # names are matched after normalisation, as in the shipped maps
    assert resolve("Robot", names, {**user, "head": "Skull"}).bones["head"] == "skull"


@pytest.mark.parametrize("bad, message", [
    ({"hips": "root", "head": "skull"}, r"no bone for upper_arm_l"),
    ({"hips": "root", "chest": "torso_hi", "head": "skull", "upper_arm_l": "nope", "forearm_l": "arm_lo_L",
      "upper_arm_r": "arm_up_R", "forearm_r": "arm_lo_R"}, r"no bone for upper_arm_l \(nope\)"),
    ({"hips": "root", "head": "skull", "upper_arm_l": "arm_up_L", "forearm_l": "arm_lo_L",
      "upper_arm_r": "arm_up_R", "forearm_r": "arm_lo_R"}, r"maps no bone for one of spine/chest/upper_chest"),
    ({"hips": "root", "tail": "x"}, r"unknown slot\(s\) tail"),
    ({"hips": 3}, r"slot 'hips' must name a bone"),
    ("no_such_convention", r"unknown bone map 'no_such_convention' \(known: .*mixamo"),
    (42, r"a bone map is a dict, a .json path or a convention name, not int"),
])
def test_bad_user_maps_give_one_line_reasons(bad, message):
    names = ["root", "torso_hi", "skull", "arm_up_L", "arm_lo_L", "arm_up_R", "arm_lo_R"]
    with pytest.raises(RigError, match=message) as e:
        resolve("Robot", names, bad)
    assert "\n" not in str(e.value)


def test_a_broken_map_file_is_named(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text("{not json")
    with pytest.raises(RigError, match="broken.json: not a JSON bone map"):
        resolve("Robot", ["root"], str(p))
    with pytest.raises(RigError, match="missing.json: cannot read the bone map"):
        resolve("Robot", ["root"], str(tmp_path / "missing.json"))
