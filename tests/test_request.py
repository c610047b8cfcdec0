"""The one request: every surface (CLI, service schema, batch renderer) takes its options from
baton_core.request, so they cannot disagree."""

import argparse
import json
import math

import pytest

from baton_core.errors import BatonError
from baton_core.request import MAX_SEED, OPTIONS, ConductRequest, add_arguments, schema


@pytest.mark.parametrize("values, reason", [
    ({"seed": -1}, "seed: -1 is outside 0 … 2^63−1"), ({"seed": MAX_SEED + 1}, "outside"),
    ({"seed": 1.5}, "whole number"), ({"seed": True}, "a number"), ({"fps": 241}, "fps: 241 is outside 1 … 240"),
    ({"duration": 0}, "above 0"), ({"start": math.nan}, "finite"), ({"engine": "jazz"}, "choose from rules, m2sgan"),
    ({"smooth": "no"}, "true or false"), ({"audio_path": ""}, "non-empty"),
    ({"engine": "rules", "checkpoint": "g.pt"}, "checkpoint: only for the m2sgan engine"),
    ({"engine": "rules", "smooth": False}, "smooth: only for the m2sgan engine"),
])
def test_a_bad_value_is_refused_naming_the_option(values, reason):
    with pytest.raises(BatonError, match=reason.replace("^", r"\^").replace("…", "…")):
        ConductRequest(**({"audio_path": "a.wav"} | values))


def test_defaults_round_trip_and_unknown_options_are_refused():
    r = ConductRequest("a.wav", seed=3, checkpoint=None)
    assert r.engine_name == "m2sgan" and r.fps == 30.0 and r.smooth
    assert ConductRequest.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    with pytest.raises(BatonError, match="unknown request option.*colour"):
        ConductRequest.from_dict({"audio_path": "a.wav", "colour": "red"})


def test_the_command_line_is_built_from_the_options():
    p = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(p, tuple(o.name for o in OPTIONS if o.name != "audio_path"))
    args = p.parse_args(["--seed", "7", "--no-smooth", "--engine", "rules", "--fps", "24"])
    assert (args.seed, args.smooth, args.engine, args.fps, args.start) == (7, False, "rules", 24.0, None)
    for bad in (["--seed", "-1"], ["--fps", "0"], ["--seed", "x"], ["--engine", "jazz"]):
        with pytest.raises((argparse.ArgumentError, SystemExit)):
            p.parse_args(bad)


def test_the_service_schema_is_made_from_the_options():
    from backend.service import JobRequest

    props = JobRequest.model_json_schema()["properties"]
    assert set(props) == {o.name for o in OPTIONS}
    seed = props["seed"]
    assert (seed["minimum"], seed["maximum"], seed["default"]) == (0, MAX_SEED, 0)
    assert props["fps"]["maximum"] == 240 and props["duration"]["anyOf"][0]["exclusiveMinimum"] == 0
    assert json.loads(json.dumps(schema()))["engines"] == ["rules", "m2sgan"]
