"""Takes: every run is a new action, so nothing an animator keyed by hand is ever written over.

A take is an ordinary action with a fake user (it survives saving while another take is shown) and
a `baton_take` custom property recording what made it: armature, strip, seed, engine, audio slice,
first frame. The takes list is every such action made for an armature; switching assigns one,
deleting removes one. An action the armature had before its first take is kept too (fake user) and
remembered on the object, so the animator can go back to it.
"""

from __future__ import annotations

import time
import uuid

import bpy

from . import rig_link

TAKE_KEY = "baton_take"
ORIGINAL_KEY = "baton_original_action"
RIG_KEY = "baton_rig"


def is_take(action) -> bool:
    return action is not None and TAKE_KEY in action.keys()


def info(action) -> dict:
    return action[TAKE_KEY].to_dict() if is_take(action) else {}


def rig_id(obj) -> str:
    """The armature's own id for its takes (kept on the object, so renaming it keeps its takes)."""
    if RIG_KEY not in obj.keys():
        obj[RIG_KEY] = uuid.uuid4().hex
    return obj[RIG_KEY]


def takes_of(obj) -> list:
    """The armature's takes, oldest first (takes from before rig ids: by the armature's name)."""
    mine = obj.get(RIG_KEY)

    def of_obj(record) -> bool:
        return record.get("rig") == mine if record.get("rig") else record.get("armature") == obj.name

    found = [a for a in bpy.data.actions if is_take(a) and of_obj(a[TAKE_KEY])]
    return sorted(found, key=lambda a: a[TAKE_KEY].get("created", 0.0))


def current(obj):
    ad = obj.animation_data
    return ad.action if ad else None


def keep_existing(obj) -> None:
    """Before a take is assigned: what the armature plays now, when it is not a take, gets a fake
    user (so it is saved with the file) and is remembered as the armature's original action."""
    action = current(obj)
    if action is not None and not is_take(action):
        action.use_fake_user = True
        obj[ORIGINAL_KEY] = action


def original(obj):
    action = obj.get(ORIGINAL_KEY)
    return action if isinstance(action, bpy.types.Action) else None


def record(action, obj, plan, take, report) -> None:
    """The take's record on its action, with the rig library's report of writing it: the rig
    settings it keys as the rig had them (put back when the armature stops showing takes) and how
    closely the rig follows it."""
    w = plan.window
    action[TAKE_KEY] = {
        "armature": obj.name, "rig": rig_id(obj), "source": w.name, "strip": w.strip or "", "seed": plan.seed,
        "engine": plan.engine, "audio": str(w.path) if w.path else "(packed)", "slice_start": w.start,
        "slice_duration": take.duration, "first_frame": w.first_frame - round(take.lead * w.fps),
        "lead_ms": round(take.lead * 1000, 3), "settings": take.settings,
        "fps": w.fps, "density": plan.density, "tempo": take.tempo, "created": time.time(),
        "beats": [round(take.start + take.lead + b, 4) for b in take.beats.tolist()],  # heard, seconds into the file
        "audio_sha256": str(take.provenance.get("audio_sha256") or ""),
        "checkpoint_sha256": str(take.provenance.get("checkpoint_sha256") or ""),
        "settings_before": report.settings_before, "bone_map": report.convention,
        "fk_check_deg": float(report.fk_evaluated_mean_deg if report.fk_evaluated_mean_deg is not None else -1.0),
    }
    action.use_fake_user = True


def switch(obj, action) -> None:
    """Show `action` (a take, or the original action) on the armature. Leaving the takes for an
    action of the animator's, the rig settings the takes keyed (Rigify's IK/FK switch, say) get
    back the values the rig had: their own action plays as they made it."""
    leaving = current(obj)
    if is_take(leaving) and not is_take(action):
        rig_link.restore_settings(obj, [dict(s) for s in info(leaving).get("settings_before", [])])
    ad = obj.animation_data or obj.animation_data_create()
    ad.action = action
    if action is not None and getattr(ad, "action_slot", None) is None and len(action.slots):
        ad.action_slot = action.slots[0]


def delete(obj, action) -> None:
    """Remove a take; if it was showing, the newest remaining take (or the original action) shows."""
    if current(obj) == action:
        rest = [a for a in takes_of(obj) if a != action]
        switch(obj, rest[-1] if rest else original(obj))
    bpy.data.actions.remove(action)
