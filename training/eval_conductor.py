"""Evaluate the rule-based conductor on rendered scores whose every beat is known (issue 3).

    .venv/bin/python -m training.eval_conductor            # renders (cached in out/), prints the table,
                                                           # writes training/results/conductor.{md,json}
                                                           # and training/results/patterns.png

The set: short excerpts from music21's corpus in 2/4, 3/4, 4/4, 6/8 (in six and in two), a slow
2/4 beaten in subdivided two, a fast 3/4 in one, and two metre changes, at several tempi, with and
without rubato, with score dynamics or random ones. For each excerpt the conductor is run from the
score's plan and from the audio alone (the rules engine hearing with its own ears, not the shipped
model's), with two style seeds.

Reference beats are the score's beats at the level a conductor beats them — the strokes of the
score plan (a 6/8 andante in six: eighths; a 6/8 allegro in two: dotted quarters; a slow 2/4:
eighths; a fast 3/4: bars) — leaving out the beats swallowed by a fermata, the rests before the
first sound and after the last, and long rests (a bar and 2 s or more), where the conductor stands
still. Metrics follow ../shared/metrics.md (backend/metrics.py).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from baton_core.timebase import MOTION_FPS

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "out" / "eval_conductor"
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Excerpt:
    name: str  # short label
    piece: str  # music21 corpus name
    first_bar: int
    n_bars: int
    tempo: float  # quarter notes a minute at the first bar
    rubato: float
    seed: int = 1
    dynamics: str = "auto"


SET = (
    Excerpt("chorale-orch 4/4", "bach/bwv248.64-6", 9, 12, 84, 0.5),
    Excerpt("chorale-fermatas 4/4", "bach/bwv190.7-inst", 1, 12, 76, 0.0),
    Excerpt("haydn-74/1 4/4", "haydn/opus74no1/movement1", 3, 16, 126, 0.0),
    Excerpt("mozart-k155 4/4", "mozart/k155/movement1", 1, 14, 116, 0.6),
    Excerpt("haydn-1/1 3/4", "haydn/opus1no1/movement2", 1, 14, 92, 0.0),
    Excerpt("menuetto 3/4", "haydn/opus74no1/movement3", 1, 16, 138, 0.5),
    Excerpt("lindenbaum 3/4", "schubert/Lindenbaum", 1, 14, 80, 0.6, dynamics="random"),
    Excerpt("haydn-finale 2/4", "haydn/opus1no1/movement5", 1, 16, 112, 0.0),
    Excerpt("rag 2/4", "joplin/maple_leaf_rag", 1, 16, 84, 0.3),
    Excerpt("adagio 2/4 (in 4)", "beethoven/opus59no1/movement3", 1, 8, 46, 0.5),
    Excerpt("andante 6/8 (in 6)", "haydn/opus1no1/movement1", 1, 8, 64, 0.3, dynamics="random"),
    Excerpt("allegro 6/8 (in 2)", "mozart/k458/movement1", 1, 14, 132, 0.0),
    Excerpt("scherzo 3/4 (in 1)", "beethoven/opus18no1/movement3", 1, 24, 252, 0.0),
    Excerpt("metre 2/4→6/8", "schumann_robert/opus41no1/movement1", 30, 14, 38, 0.3),
    Excerpt("metre 4/4→3/4", "handel/rinaldo/Lascia_chio_pianga", 9, 9, 64, 0.4),
)
MAX_SECONDS = 32.0


def render(ex: Excerpt):
    """The excerpt's audio, beats and score plan, cached under out/eval_conductor."""
    from backend.conducting.plan import Plan
    from training.scores import Rendered, render_score
    CACHE.mkdir(parents=True, exist_ok=True)
    key = f"{ex.piece.replace('/', '_')}-{ex.first_bar}-{ex.n_bars}-{ex.tempo}-{ex.rubato}-{ex.seed}-{ex.dynamics}"
    path = CACHE / f"{key}.npz"
    if path.exists():
        d = np.load(path, allow_pickle=False)
        plan = Plan.from_arrays({k[5:]: d[k] for k in d.files if k.startswith("plan_")})
        return Rendered(d["audio"], int(d["sr"]), d["beats"], d["downbeats"], plan, json.loads(str(d["info"])))
    r = render_score(ex.piece, ex.first_bar, ex.n_bars, ex.tempo, ex.rubato, ex.seed, ex.dynamics, MAX_SECONDS)
    np.savez_compressed(path, audio=r.audio, sr=r.sr, beats=r.beats, downbeats=r.downbeats,
                        info=json.dumps(r.info), **{f"plan_{k}": v for k, v in r.plan.to_arrays().items()})
    return r


NOTES = """How to read it:

* Reference beats are the score's beats at the level a conductor beats them (the score plan's
  strokes): an andante 6/8 in six gives eighths, an allegro 6/8 in two dotted quarters, a slow 2/4
  eighths, a fast 3/4 bars. Beats swallowed by a fermata, rests before the first sound and after the
  last, and long rests (a bar and 2 s or more, where the conductor stands still) are left out.
* Pattern and downbeat accuracy judge complete bars of two or more beats (a bar beaten in one has
  nothing to judge), with backend/metrics.py's own table of the standard patterns.
* Metre accuracy (audio plan): a bar of the audio plan counts when it lasts as long as the score's bar
  it sits in (±20%), so hearing the beat at half or double speed, or a 3/4 as 6/8, counts as wrong.
  Downbeat F: its downbeats against the score's (±70 ms).
* Dynamics: r between the 2 s means of the baton hand's speed and of the audio's RMS dB; chance is
  the 95th percentile over 20 circular shifts of at least 10 s. Excerpts without dynamics marks
  are rendered with random phrase dynamics (hairpins and subito changes).
* The audio plan's tracker was tuned on a separate development set of 13 other excerpts (other
  pieces, seeds and tempi), not on this set."""

SEEDS = (1, 2)
TARGETS = {"score_f": 0.95, "pattern": 0.95, "downbeat": 0.95, "audio_f": 0.75, "dynamics": 0.6,
           "jitter": 0.5, "diversity": 0.3, "speed": (2.0, 3.0)}
MODERATE_BPM = (60.0, 140.0)


def bars_of(plan, beaten: np.ndarray) -> list:
    """Complete beaten bars of a plan, as metrics.Bar."""
    from backend.conducting import patterns
    from backend.metrics import Bar
    main = plan.sub == 0
    out = []
    for b in np.unique(plan.bar):
        m = main & (plan.bar == b) & beaten
        nxt = main & (plan.bar == b + 1) & (plan.beat == 0) & beaten
        if not (m.any() and nxt.any()) or plan.beat[m][0] != 0:
            continue
        if m.sum() != patterns.n_beats(plan.pattern[m][0]):
            continue  # a bar cut by a fermata or a rest
        out.append(Bar(plan.times[m], float(plan.times[nxt][0]), str(plan.pattern[m][0])))
    return out


def metre_accuracy(audio_plan, score_downbeats: np.ndarray) -> tuple[float, float]:
    """(metre accuracy, downbeat F) of an audio plan: a bar of the audio plan has the right metre
    when it lasts as long as the score's bar it sits in (±20%) — the grouping of time, whatever
    level the beats were heard at; downbeat F is the F-measure of its downbeats against the score's."""
    from backend import metrics
    down = audio_plan.times[(audio_plan.beat == 0) & (audio_plan.sub == 0)]
    ok = []
    for a, b in zip(down[:-1], down[1:]):
        i = int(np.searchsorted(score_downbeats, 0.5 * (a + b)) - 1)
        if 0 <= i < len(score_downbeats) - 1:
            ok.append(abs((b - a) / (score_downbeats[i + 1] - score_downbeats[i]) - 1) < 0.2)
    return (float(np.mean(ok)) if ok else 0.0), metrics.f_measure(down, score_downbeats)


def evaluate(ex: Excerpt) -> dict:
    from backend import metrics
    from backend.conducting import conduct_plan, sample_style
    from backend.conducting.motion import beaten_strokes
    from backend.engines import Music, RulesEngine
    from backend.features import mel_features
    from baton_core.skeleton import project_front
    r = render(ex)
    plan = r.plan
    n = r.n_frames()
    beaten = beaten_strokes(plan)
    ref = plan.times[beaten]
    bars = bars_of(plan, beaten)
    t = np.arange(n) / MOTION_FPS
    conducting = (t >= ref[0]) & (t <= plan.end)
    row: dict = {"name": ex.name, "piece": ex.piece, "bars": r.info["bars"], "seconds": round(r.duration, 1),
                 "metres": "+".join(r.info["metres"]), "patterns": "+".join(sorted(set(plan.pattern[beaten]))),
                 "tempo": round(float(np.median(plan.tempo[beaten & (plan.sub == 0)])), 1), "rubato": ex.rubato,
                 "n_beats": int(len(ref))}
    motions = {}
    for seed in SEEDS:
        m2 = project_front(conduct_plan(plan, sample_style(seed), n))
        motions[seed] = m2
        ic = metrics.ictus_times(m2)
        dyn, dyn_chance = metrics.dynamics_correlation(m2, r.audio, r.sr)
        row[f"score_f_s{seed}"] = metrics.ictus_f(ic, ref)
        row[f"score_chance_s{seed}"] = metrics.ictus_f_chance(ic, ref)
        row[f"pattern_s{seed}"] = metrics.pattern_accuracy(m2, bars)
        row[f"downbeat_s{seed}"] = metrics.downbeat_accuracy(m2, bars)
        row[f"dynamics_s{seed}"] = dyn
        row[f"dynamics_chance_s{seed}"] = dyn_chance
        row[f"jitter_s{seed}"] = metrics.jitter(m2)
        row[f"speed_s{seed}"] = metrics.mean_wrist_speed(m2, mask=conducting)
    row["diversity"] = metrics.seed_diversity(motions[SEEDS[0]], motions[SEEDS[1]])
    # from the audio alone, through the engines' interface: the rule-based conductor's own pulse and
    # metre. `--engine rules` hears through the shipped model's trackers and readers instead
    # (engines.learned_pulse), which learnt from renders of most of these works (the corpus' train
    # split), so they are not judged here: the held-out table judges them
    heard = RulesEngine().conduct(Music(mel_features(r.audio)), SEEDS[0])
    a2, aplan = heard.keypoints_2d, heard.plan
    ic = metrics.ictus_times(a2)
    row["audio_hearing"] = heard.provenance["hearing"]
    row["audio_f"] = metrics.ictus_f(ic, ref)
    row["audio_chance"] = metrics.ictus_f_chance(ic, ref)
    row["audio_metre"], row["audio_downbeat_f"] = metre_accuracy(aplan, r.downbeats)
    row["audio_dynamics"], row["audio_dynamics_chance"] = metrics.dynamics_correlation(a2, r.audio, r.sr)
    row["_motion"] = motions[SEEDS[0]]
    row["_bars"] = bars
    return row


def _mean(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None and np.isfinite(r[key])]
    return float(np.mean(vals)) if vals else float("nan")


def summary(rows: list[dict]) -> dict:
    s = {}
    for key in ("score_f", "score_chance", "pattern", "downbeat", "dynamics", "dynamics_chance", "jitter"):
        s[key] = _mean([{"v": np.mean([r[f"{key}_s{sd}"] for sd in SEEDS])} for r in rows], "v")
    for key in ("audio_f", "audio_chance", "audio_metre", "audio_downbeat_f", "audio_dynamics", "diversity"):
        s[key] = _mean(rows, key)
    s["audio_f_min"] = float(min(r["audio_f"] for r in rows))
    s["audio_f_margin_min"] = float(min(r["audio_f"] - r["audio_chance"] for r in rows))
    s["score_f_seed_gap"] = float(max(abs(r[f"score_f_s{SEEDS[0]}"] - r[f"score_f_s{SEEDS[1]}"]) for r in rows))
    moderate = [r for r in rows if MODERATE_BPM[0] <= r["tempo"] <= MODERATE_BPM[1]]
    s["speed_moderate"] = _mean([{"v": np.mean([r[f"speed_s{sd}"] for sd in SEEDS])} for r in moderate], "v")
    s["speed_all"] = _mean([{"v": np.mean([r[f"speed_s{sd}"] for sd in SEEDS])} for r in rows], "v")
    return s


def checks(s: dict) -> list[tuple[str, str, str, bool]]:
    """(what, target, measured, met) for every number the issue asks for."""
    T = TARGETS
    return [
        ("score plan: ictus F", f"≥ {T['score_f']}", f"{s['score_f']:.3f} (chance {s['score_chance']:.3f})",
         s["score_f"] >= T["score_f"]),
        ("score plan: pattern accuracy", f"≥ {T['pattern']}", f"{s['pattern']:.3f}", s["pattern"] >= T["pattern"]),
        ("score plan: downbeat accuracy", f"≥ {T['downbeat']}", f"{s['downbeat']:.3f}", s["downbeat"] >= T["downbeat"]),
        ("audio plan: ictus F vs the score's beats", f"≥ {T['audio_f']}",
         f"{s['audio_f']:.3f} (chance {s['audio_chance']:.3f}; lowest {s['audio_f_min']:.2f}, "
         f"smallest margin over chance {s['audio_f_margin_min']:.2f})", s["audio_f"] >= T["audio_f"]),
        ("audio plan: metre accuracy (reported)", "—",
         f"{s['audio_metre']:.3f} (downbeat F {s['audio_downbeat_f']:.3f})", True),
        ("dynamics correlation (score plan)", f"≥ {T['dynamics']}",
         f"{s['dynamics']:.3f} (chance 95th pct {s['dynamics_chance']:.3f}; audio plan {s['audio_dynamics']:.3f})",
         s["dynamics"] >= T["dynamics"]),
        ("jitter", f"≤ {T['jitter']}", f"{s['jitter']:.3f}", s["jitter"] <= T["jitter"]),
        ("seed diversity (same F)", f"≥ {T['diversity']}",
         f"{s['diversity']:.3f} (largest F gap between seeds {s['score_f_seed_gap']:.3f})",
         s["diversity"] >= T["diversity"]),
        (f"mean right-wrist speed, {MODERATE_BPM[0]:.0f}–{MODERATE_BPM[1]:.0f} bpm (shoulder widths/s)",
         f"{T['speed'][0]}–{T['speed'][1]}", f"{s['speed_moderate']:.2f} (all tempi {s['speed_all']:.2f})",
         T["speed"][0] <= s["speed_moderate"] <= T["speed"][1]),
    ]


def _fmt(*vals) -> str:
    """Mean of the values, or a dash where there is nothing to judge (bars beaten in one)."""
    m = float(np.mean(vals))
    return "—" if not np.isfinite(m) else f"{m:.2f}"


def table(rows: list[dict]) -> str:
    head = ("| excerpt | metres | beaten as | bpm | rubato | F score (s1/s2) | pattern | downbeat | F audio (chance) "
            "| metre (audio) | dynamics r (chance) | jitter | speed SW/s | diversity |")
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['metres']} | {r['patterns']} | {r['tempo']:.0f} | {r['rubato']} "
            f"| {r['score_f_s1']:.2f}/{r['score_f_s2']:.2f} | {_fmt(r['pattern_s1'], r['pattern_s2'])} "
            f"| {_fmt(r['downbeat_s1'], r['downbeat_s2'])} | {r['audio_f']:.2f} ({r['audio_chance']:.2f}) "
            f"| {r['audio_metre']:.2f} | {np.mean([r['dynamics_s1'], r['dynamics_s2']]):.2f} "
            f"({np.mean([r['dynamics_chance_s1'], r['dynamics_chance_s2']]):.2f}) "
            f"| {np.mean([r['jitter_s1'], r['jitter_s2']]):.2f} | {np.mean([r['speed_s1'], r['speed_s2']]):.2f} "
            f"| {r['diversity']:.2f} |")
    return "\n".join(lines)


def _draw_bar(ax, m2: np.ndarray, beats: np.ndarray, next_down: float, title: str) -> None:
    """One bar of the baton hand's path as the conductor sees it (their right on the right), in
    shoulder widths from the mid-hip, ictus points numbered, arrows along the way."""
    from baton_core import skeleton as sk
    fps = float(MOTION_FPS)
    a, b = int(round(beats[0] * fps)), int(round(next_down * fps)) + 1
    sw = sk.IMAGE_SHOULDER_WIDTH
    conv = lambda p: np.stack([-(p[..., 0] - sk.IMAGE_HIP_CENTRE[0]) / sw, (sk.IMAGE_HIP_CENTRE[1] - p[..., 1]) / sw], -1)
    path = conv(m2[a:b, sk.R_WRIST])
    body = conv(m2[a, [sk.L_SHOULDER, sk.R_SHOULDER, sk.R_HIP, sk.L_HIP, sk.L_SHOULDER]])
    ax.plot(body[:, 0], body[:, 1], color="0.8", lw=2)
    head = conv(m2[a, sk.NOSE])
    ax.add_patch(__import__("matplotlib").patches.Circle(head, 0.22, color="0.85"))
    ax.plot(path[:, 0], path[:, 1], color="tab:blue", lw=2)
    for i in range(2, len(path) - 1, 4):
        d = path[i + 1] - path[i]
        if np.linalg.norm(d) > 1e-3:
            ax.annotate("", path[i] + d, path[i], arrowprops=dict(arrowstyle="->", color="tab:blue", lw=1.2))
    for j, tb in enumerate(list(beats) + [next_down]):
        q = conv(m2[int(round(tb * fps)), sk.R_WRIST])
        ax.plot(*q, "o", color="tab:red" if j < len(beats) else "0.5", ms=6)
        ax.annotate(str(j + 1) if j < len(beats) else "1", q, xytext=(4, -12), textcoords="offset points",
                    fontsize=11, color="tab:red" if j < len(beats) else "0.5", weight="bold")
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal")
    ax.set_xlim(-1.6, 1.6)
    ax.set_ylim(-0.3, 2.6)
    ax.set_xlabel("← conductor's left   (shoulder widths)   conductor's right →", fontsize=8)


def pattern_figure(rows: list[dict], path: Path) -> None:
    """One bar of each way of beating found in the set (from the score plan, style seed 1), plus
    five and seven from steady plans (the corpus has no such excerpt)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from backend import metrics
    from backend.conducting import conduct_plan, grid_plan, sample_style
    from backend.conducting.motion import beaten_strokes
    from baton_core.skeleton import project_front
    panels, seen = [], set()
    order = ["1", "2", "3", "4", "6", "2/2"]
    for key in order:
        for r in rows:
            cands = [b for b in r["_bars"] if b.pattern == key]
            if cands and key not in seen:
                # the bar beaten largest (a forte bar shows the shape best)
                size = metrics.gesture_sizes(r["_motion"], cands)
                b = cands[int(np.argmax(size))]
                labels = metrics.bar_labels(r["_motion"], b.beats, b.next_downbeat)
                panels.append((r["_motion"], b, f"{key.replace('/2', ' subdivided')} — {r['name']} ({labels})"))
                seen.add(key)
    for key, bpm in (("5:2+3", 100), ("7:2+2+3", 120)):
        plan = grid_plan(key, bpm, 4, level=0.55)
        m2 = project_front(conduct_plan(plan, sample_style(1), int((plan.end + 2) * MOTION_FPS)))
        bars = bars_of(plan, beaten_strokes(plan))
        b = bars[1]
        panels.append((m2, b, f"{key} — steady plan ({metrics.bar_labels(m2, b.beats, b.next_downbeat)})"))
    cols = 4
    rows_n = int(math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 4.4 * rows_n))
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (m2, b, title) in zip(axes.flat, panels):
        _draw_bar(ax, m2, b.beats, b.next_downbeat, title)
    fig.suptitle("Right-wrist path for one bar, as the conductor sees it (red: ictus of each beat; grey: next downbeat)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str]) -> int:
    t0 = time.time()
    rows = []
    for ex in SET:
        r = evaluate(ex)
        rows.append(r)
        print(f"{ex.name:24s} F {r['score_f_s1']:.2f}/{r['score_f_s2']:.2f}  pattern {r['pattern_s1']:.2f}  "
              f"downbeat {r['downbeat_s1']:.2f}  audio F {r['audio_f']:.2f} ({r['audio_chance']:.2f})  "
              f"dyn {r['dynamics_s1']:.2f}  jitter {r['jitter_s1']:.2f}  speed {r['speed_s1']:.2f}  "
              f"div {r['diversity']:.2f}", flush=True)
    s = summary(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    pattern_figure(rows, RESULTS / "patterns.png")
    res = checks(s)
    lines = ["# The rule-based conductor on rendered scores", "",
             "Written by `python -m training.eval_conductor` (training/eval_conductor.py: the set, the",
             "reference beats and the metrics are described there and in ../shared/metrics.md).", "",
             "| measure | target | measured | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {'yes' if d else 'NO'} |" for a, b, c, d in res]
    lines += ["", "Per excerpt (s1/s2: style seeds; pattern, downbeat, dynamics, jitter and speed are means over both "
              "seeds; audio: the plan from the audio alone, style seed 1):", "", table(rows), "", NOTES, "",
              "![patterns](patterns.png)", ""]
    (RESULTS / "conductor.md").write_text("\n".join(lines))
    clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    (RESULTS / "conductor.json").write_text(json.dumps({"summary": s, "targets": TARGETS, "excerpts": clean},
                                                       indent=1, default=float))
    print()
    for a, b, c, d in res:
        print(f"{'ok ' if d else 'NO '} {a}: {c} (target {b})")
    print(f"\n{len(rows)} excerpts in {time.time() - t0:.0f} s; wrote {RESULTS.relative_to(ROOT)}/conductor.md, .json, patterns.png")
    return 0 if all(d for *_, d in res) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
