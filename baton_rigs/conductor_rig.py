"""The default conductor, for animators who bring no character of their own, and the baton prop.

`create_default_conductor` builds, from the small data files in baton_rigs/conductor/ (baked from
MakeHuman's CC0 base mesh by tools/build_conductor.py), an armature with the UE4 mannequin's bone
names (so the 'ue4' bone map drives it), a skinned body in simple materials (dark suit, white shirt
front, skin, black shoes, dark hair) and a baton in the right hand. `attach_baton` puts the same baton into any
rig's right hand.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .armature import bone_map_for
from .bonemap import BATON_HAND
from .errors import RigError

# viewport/Workbench colour and Principled base colour (linear RGB), roughness
_MATERIALS = {"suit": ((0.018, 0.018, 0.022), 0.6), "skin": ((0.62, 0.42, 0.32), 0.5),
              "shirt": ((0.85, 0.85, 0.83), 0.5), "shoes": ((0.01, 0.01, 0.01), 0.3),
              "eyes": ((0.75, 0.75, 0.75), 0.2), "hair": ((0.05, 0.04, 0.035), 0.7), "baton": ((0.92, 0.92, 0.9), 0.3),
              "cork": ((0.45, 0.3, 0.17), 0.8)}
BATON_LENGTH = 0.40  # metres, for a rig of the conductor's size (shaft and handle)
_GRIP = {"thumb": 0.35, "index": 0.55, "middle": 0.75, "ring": 0.85, "pinky": 0.9}  # curl per finger, radians


def conductor_dir() -> Path:
    """The default conductor's data (baked by tools/build_conductor.py), shipped inside this package."""
    return Path(__file__).resolve().parent / "conductor"


def _material(name: str):
    import bpy
    key = f"Baton {name}"
    mat = bpy.data.materials.get(key)
    if mat is None:
        colour, rough = _MATERIALS[name]
        mat = bpy.data.materials.new(key)
        mat.diffuse_color = (*colour, 1.0)
        mat.roughness = rough
        bsdf = mat.node_tree.nodes.get("Principled BSDF") if mat.node_tree else None  # 5.0: nodes by default
        if bsdf is not None:
            bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
            bsdf.inputs["Roughness"].default_value = rough
    return mat


@contextmanager
def edit_mode(obj):
    """`obj`'s edit bones, in edit mode with `obj` active; object mode and the previously active
    object come back afterwards, whatever happens."""
    import bpy
    view_layer = bpy.context.view_layer
    previous = view_layer.objects.active
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        yield obj.data.edit_bones
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = previous


def create_default_conductor(collection=None, *, name: str = "Conductor", baton: bool = True,
                             location=(0.0, 0.0, 0.0)):
    """Build the default conductor into `collection` (default: the current scene's) and return its
    armature object (the body mesh and the baton are its children). Facing −Y, feet at `location`."""
    import bpy
    folder = conductor_dir()
    try:
        skel = json.loads((folder / "skeleton.json").read_text(encoding="utf-8"))
        data = np.load(folder / "body.npz")
    except OSError as e:
        raise RigError(f"the default conductor's data is missing from {folder} ({e.strerror or e})") from None
    coll = collection if collection is not None else bpy.context.scene.collection

    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    coll.objects.link(obj)
    obj.location = location
    with edit_mode(obj) as eb:
        for n, b in skel["bones"].items():
            e = eb.new(n)
            e.head, e.tail, e.roll = b["head"], b["tail"], b["roll"]
        for n, b in skel["bones"].items():
            if b["parent"]:
                eb[n].parent = eb[b["parent"]]
    arm.display_type = "STICK"

    body = _body(name, data, obj, coll)
    body.parent = obj
    _grip(obj)
    if baton:
        attach_baton(obj)
    return obj


def _body(name: str, data, arm_obj, coll):
    import bpy
    verts, quads = data["verts"].astype(np.float64), data["quads"].astype(np.int64)
    mesh = bpy.data.meshes.new(f"{name} body")
    mesh.from_pydata(verts.tolist(), [], quads.tolist())
    mesh.polygons.foreach_set("use_smooth", np.ones(len(quads), dtype=bool))
    for m in data["materials"]:
        mesh.materials.append(_material(str(m)))
    mesh.polygons.foreach_set("material_index", data["material"].astype(np.int32))
    mesh.update()
    body = bpy.data.objects.new(f"{name} body", mesh)
    coll.objects.link(body)
    names = [str(n) for n in data["bone_names"]]
    wb, ww = data["weight_bone"], data["weight"].astype(np.float64) / 255.0
    for k, bone in enumerate(names):
        rows, cols = np.nonzero((wb == k) & (ww > 0))
        if not len(rows):
            continue
        vg = body.vertex_groups.new(name=bone)
        w = ww[rows, cols]
        for value in np.unique(w):  # one call per distinct weight: 255 levels at most
            vg.add(rows[w == value].tolist(), float(value), "REPLACE")
    mod = body.modifiers.new("Armature", "ARMATURE")
    mod.object = arm_obj
    return body


def _grip(arm_obj) -> None:
    """Curl the right hand's fingers round the baton (a static pose, not keyed)."""
    from mathutils import Quaternion
    for pb in arm_obj.pose.bones:
        finger = pb.name.split("_")[0]
        if pb.name.endswith("_r") and finger in _GRIP and not pb.name.startswith("thumb_01"):
            pb.rotation_mode = "QUATERNION"
            pb.rotation_quaternion = Quaternion((1.0, 0.0, 0.0), _GRIP[finger])


def attach_baton(armature_obj, bone_map=None, length: float | None = None):
    """A baton (white shaft, cork handle) parented to the rig's right hand (`hand_r` of its bone
    map), lying along the forearm as the hand holds it, pointing a little inward; returns the object."""
    import bmesh
    import bpy
    from mathutils import Matrix, Vector
    bm = bone_map_for(armature_obj, bone_map)
    hand = bm.bones.get(BATON_HAND)
    if hand is None:
        raise RigError(f"armature {armature_obj.name!r}: its bone map has no right hand for the baton")
    bones = armature_obj.data.bones
    fore = bones[bm.bones["forearm_r"]]
    h = bones[hand]
    torso = (Vector(bones[bm.bones["upper_arm_l"]].head_local) - Vector(bones[bm.bones["upper_arm_r"]].head_local)).length
    scale = torso / 0.36  # the rig's shoulder width against the conductor's
    length = (length or BATON_LENGTH) * scale
    along = (Vector(h.head_local) - Vector(fore.head_local)).normalized()
    inward = (Vector(bones[bm.bones["upper_arm_l"]].head_local) - Vector(bones[bm.bones["upper_arm_r"]].head_local)).normalized()
    direction = (along + 0.25 * inward).normalized()
    grip = Vector(h.head_local) + along * 0.075 * scale

    mesh = bpy.data.meshes.new("Baton")
    b = bmesh.new()
    handle = 0.065 * length / 0.40
    bmesh.ops.create_cone(b, cap_ends=True, segments=16, radius1=0.0075 * scale, radius2=0.0055 * scale,
                          depth=handle, matrix=Matrix.Translation((0, 0, handle / 2)))
    n_handle = len(b.faces)
    bmesh.ops.create_cone(b, cap_ends=True, segments=12, radius1=0.0035 * scale, radius2=0.0012 * scale,
                          depth=length - handle, matrix=Matrix.Translation((0, 0, handle + (length - handle) / 2)))
    b.to_mesh(mesh)
    b.free()
    mesh.materials.append(_material("cork"))
    mesh.materials.append(_material("baton"))
    mesh.polygons.foreach_set("material_index", np.array([0] * n_handle + [1] * (len(mesh.polygons) - n_handle), np.int32))
    baton = bpy.data.objects.new(f"{armature_obj.name} baton", mesh)
    for coll in armature_obj.users_collection:
        coll.objects.link(baton)
    # the baton's rest placement in armature space: base behind the grip, shaft along `direction`
    z = direction
    x = z.orthogonal().normalized()
    rest = Matrix.Translation(grip - z * handle * 0.6) @ Matrix((x, z.cross(x), z)).transposed().to_4x4()
    baton.parent = armature_obj
    baton.parent_type = "BONE"
    baton.parent_bone = hand
    # bone parenting places the child at the bone's tail in the bone's rest frame
    bone_rest = h.matrix_local @ Matrix.Translation((0, h.length, 0))
    baton.matrix_parent_inverse = Matrix.Identity(4)
    baton.matrix_basis = bone_rest.inverted() @ rest
    return baton
