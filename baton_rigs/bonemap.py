"""Bone maps: which bone of an armature plays which part of the conductor's upper body.

A bone map names a bone for each *slot* of the semantic chain (SLOTS). The data files in
`baton_rigs/bonemaps/` hold one map per rig convention (Rigify metarig and generated FK controls,
Mixamo, VRM, Unreal 4 and 5, MakeHuman/MPFB, CMU). Names are compared after normalisation
(`normalise`) so that a namespace prefix (`mixamorig:`), separators, case and the side marker
(`.L`, `_l`, `Left…`, `L_`) do not matter. `detect` scores every known map against an armature's
bone names and reports what matched; anything else takes a user-supplied map (`resolve`).

Bone map files are JSON: `name`, `label`, `description`, `bones` (slot → a bone name or a list of
candidate names, first found wins), and optionally `detect_also` (names that only help tell similar
conventions apart), `measure` (slot → the bone whose evaluated pose shows that joint, where the keyed
control is not itself the joint, as on Rigify's generated rig) and `settings` (custom properties the
rig needs, e.g. Rigify's IK/FK switch).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RigError

# The semantic chain, root first. Slots after DRIVEN are only measured (never keyed).
DRIVEN = ("hips", "spine", "chest", "upper_chest", "neck", "head",
          "clavicle_l", "upper_arm_l", "forearm_l", "hand_l",
          "clavicle_r", "upper_arm_r", "forearm_r", "hand_r")
MEASURED_ONLY = ("thigh_l", "thigh_r")
SLOTS = DRIVEN + MEASURED_ONLY
TORSO_SLOTS = ("spine", "chest", "upper_chest")
REQUIRED = ("hips", "head", "upper_arm_l", "forearm_l", "upper_arm_r", "forearm_r")
BATON_HAND = "hand_r"  # the take's right wrist is the baton hand

_SIDE_TOKENS = {"l": "l", "left": "l", "r": "r", "right": "r"}


def bonemaps_dir() -> Path:
    """The conventions' bone map files, shipped inside this package."""
    return Path(__file__).resolve().parent / "bonemaps"


def _tokens(name: str) -> list[str]:
    """Split a bone name into lower-case words at separators and camel-case boundaries."""
    words = []
    for part in re.split(r"[\s._\-|]+", name):
        # "LeftForeArm" → Left, Fore, Arm; "LHipJoint" → L, Hip, Joint; "spine01" stays whole
        words += re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+\d*|[A-Z]+\d*|\d+", part)
    return [w.lower() for w in words if w]


def normalise(name: str) -> str:
    """A key that equal bones share across naming styles: 'side:words' with the namespace (anything
    up to a ':'), separators and case removed and the side marker pulled out, e.g.
    'mixamorig:LeftForeArm', 'LeftForeArm' → 'l:forearm'; 'upperarm_l', 'UpperArm.L' → 'l:upperarm'."""
    base = name.rsplit(":", 1)[-1]
    words = _tokens(base)
    if len(words) > 1 and re.fullmatch(r"mixamorig\d*", words[0]):  # "mixamorig_Hips" from some exporters
        words.pop(0)
    side = ""
    sides = [i for i, w in enumerate(words) if w in _SIDE_TOKENS]
    if sides and len(words) > 1:
        # the marker at either end wins ("hand_l", "Left_Hand"); else the first in the middle ("J_Bip_L_Hand")
        i = sides[-1] if sides[-1] == len(words) - 1 else sides[0]
        side = _SIDE_TOKENS[words.pop(i)]
    return f"{side}:{''.join(words)}"


@dataclass
class BoneMapSpec:
    """One convention's map as read from its file (or given by the user)."""
    name: str
    label: str
    bones: dict[str, list[str]]
    detect_also: list[str] = field(default_factory=list)
    measure: dict[str, str] = field(default_factory=dict)
    settings: list[dict] = field(default_factory=list)
    description: str = ""

    @staticmethod
    def from_dict(doc: dict, where: str) -> "BoneMapSpec":
        if not isinstance(doc, dict) or not isinstance(doc.get("bones"), dict):
            raise RigError(f"{where}: a bone map needs a 'bones' object (slot → bone name)")
        unknown = sorted(set(doc["bones"]) - set(SLOTS))
        if unknown:
            raise RigError(f"{where}: unknown slot(s) {', '.join(unknown)} (slots: {', '.join(SLOTS)})")
        bones = {}
        for slot, value in doc["bones"].items():
            names = [value] if isinstance(value, str) else value
            if not (isinstance(names, list) and names and all(isinstance(n, str) and n for n in names)):
                raise RigError(f"{where}: slot {slot!r} must name a bone (a string or a list of strings)")
            bones[slot] = names
        settings = doc.get("settings", [])
        for s in settings:
            if not (isinstance(s, dict) and {"bone", "property", "value"} <= set(s)):
                raise RigError(f"{where}: each setting needs 'bone', 'property' and 'value'")
        return BoneMapSpec(name=str(doc.get("name", where)), label=str(doc.get("label", doc.get("name", where))),
                           bones=bones, detect_also=list(doc.get("detect_also", [])),
                           measure=dict(doc.get("measure", {})), settings=list(settings),
                           description=str(doc.get("description", "")))


def load_bonemap_file(path: str | Path) -> BoneMapSpec:
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise RigError(f"{path}: cannot read the bone map ({e.strerror or e})") from None
    except ValueError as e:
        raise RigError(f"{path}: not a JSON bone map ({e})") from None
    return BoneMapSpec.from_dict(doc, str(path))


_known: list[BoneMapSpec] | None = None


def known_bonemaps() -> list[BoneMapSpec]:
    """Every map in baton_rigs/bonemaps, read once."""
    global _known
    if _known is None:
        folder = bonemaps_dir()
        files = sorted(folder.glob("*.json"))
        if not files:
            raise RigError(f"no bone maps found in {folder}")
        _known = [load_bonemap_file(p) for p in files]
    return _known


@dataclass
class BoneMap:
    """A map resolved against one armature: slot → the bone's actual name."""
    convention: str
    label: str
    bones: dict[str, str]
    measure: dict[str, str]
    settings: list[dict]
    matched: list[str]
    missing: list[str]

    def summary(self) -> str:
        return (f"{self.label}: {len(self.matched)} of {len(SLOTS)} slots matched"
                + (f" (not found: {', '.join(self.missing)})" if self.missing else ""))


def _index(bone_names) -> tuple[set[str], dict[str, str]]:
    names = set(bone_names)
    by_key: dict[str, str] = {}
    for n in sorted(names):
        by_key.setdefault(normalise(n), n)
    return names, by_key


def _find(candidates: list[str], names: set[str], by_key: dict[str, str]) -> str | None:
    for c in candidates:  # the exact name first, then the normalised one
        if c in names:
            return c
    for c in candidates:
        hit = by_key.get(normalise(c))
        if hit is not None:
            return hit
    return None


def match(spec: BoneMapSpec, bone_names) -> BoneMap:
    """Resolve `spec` against an armature's bone names (nothing is required here)."""
    names, by_key = _index(bone_names)
    bones = {}
    for slot in SLOTS:
        if slot in spec.bones:
            hit = _find(spec.bones[slot], names, by_key)
            if hit is not None:
                bones[slot] = hit
    measure = {}
    for slot, m in spec.measure.items():
        hit = _find([m], names, by_key)
        if hit is not None:
            measure[slot] = hit
    settings = [s | {"bone": _find([s["bone"]], names, by_key) or s["bone"]} for s in spec.settings]
    matched = [s for s in SLOTS if s in bones]
    missing = [s for s in SLOTS if s in spec.bones and s not in bones]
    return BoneMap(spec.name, spec.label, bones, measure, settings, matched, missing)


def _problems(bm: BoneMap) -> list[str]:
    """What keeps a resolved map from driving a conductor (empty when it can)."""
    lacking = [s for s in REQUIRED if s not in bm.bones]
    if not any(s in bm.bones for s in TORSO_SLOTS):
        lacking.append("one of " + "/".join(TORSO_SLOTS))
    return lacking


@dataclass(frozen=True)
class Score:
    """How one known convention fits an armature."""
    convention: str
    matched: int  # bone names found (slots plus its `detect_also` names)
    lacking: list[str]  # required slots it finds no bone for
    bonemap: BoneMap


@dataclass
class Detection:
    """The best convention for an armature, and how every known one scored (best first)."""
    bonemap: BoneMap | None
    scores: list[Score]

    def describe(self) -> str:
        if self.bonemap is None:
            closest = self.scores[0]
            return f"no known convention fits (closest: {closest.convention}, lacking {', '.join(closest.lacking)})"
        return self.bonemap.summary()


def detect(bone_names) -> Detection:
    """Score every known map: a map qualifies when its required slots are all found; among those the
    one matching the most names (slots plus its `detect_also` names) wins."""
    bone_names = list(bone_names)
    names, by_key = _index(bone_names)
    scored = []
    for spec in known_bonemaps():
        bm = match(spec, bone_names)
        extra = sum(_find([n], names, by_key) is not None for n in spec.detect_also)
        scored.append(Score(spec.name, len(bm.matched) + extra, _problems(bm), bm))
    scored.sort(key=lambda s: (bool(s.lacking), -s.matched, len(s.lacking)))
    best = scored[0]
    return Detection(best.bonemap if not best.lacking else None, scored)


def resolve(armature_name: str, bone_names, bone_map=None) -> BoneMap:
    """The bone map to use: `bone_map` when given (a dict slot → bone name, a dict in the file format,
    a path to a JSON file, or a convention's name), else the detected convention. Raises RigError
    naming the missing bones when the map cannot drive the rig."""
    bone_names = list(bone_names)
    if bone_map is None:
        found = detect(bone_names)
        if found.bonemap is None:
            raise RigError(f"armature {armature_name!r}: {found.describe()}; pass a bone map "
                           f"(slot → bone name) for this rig")
        return found.bonemap
    if isinstance(bone_map, BoneMap):
        spec = BoneMapSpec(bone_map.convention, bone_map.label, {k: [v] for k, v in bone_map.bones.items()},
                           measure=bone_map.measure, settings=bone_map.settings)
    elif isinstance(bone_map, (str, Path)) and str(bone_map).endswith(".json"):
        spec = load_bonemap_file(bone_map)
    elif isinstance(bone_map, str):
        specs = {s.name: s for s in known_bonemaps()}
        if bone_map not in specs:
            raise RigError(f"unknown bone map {bone_map!r} (known: {', '.join(sorted(specs))})")
        spec = specs[bone_map]
    elif isinstance(bone_map, dict):
        doc = bone_map if "bones" in bone_map else {"name": "user", "label": "user bone map", "bones": bone_map}
        spec = BoneMapSpec.from_dict(doc, "bone map")
    else:
        raise RigError(f"a bone map is a dict, a .json path or a convention name, not {type(bone_map).__name__}")
    bm = match(spec, bone_names)
    absent = [f"{slot} ({spec.bones[slot][0]})" for slot in bm.missing if slot in REQUIRED]
    if absent:
        raise RigError(f"armature {armature_name!r} has no bone for {', '.join(absent)} "
                       f"named in the {spec.label}")
    lacking = _problems(bm)
    if lacking:
        raise RigError(f"armature {armature_name!r}: the {spec.label} maps no bone for {', '.join(lacking)}")
    return bm
