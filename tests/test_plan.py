"""Plans from scores and from their rendered audio: real music21 scores, rendered with fluidsynth
and a General MIDI soundfont, whose every beat is known."""

import shutil

import numpy as np
import pytest

from backend import metrics
from backend.conducting import conduct_plan, patterns, sample_style
from backend.conducting.motion import beaten_strokes
from backend.conducting.plan import FAMILIES
from baton_core.errors import BatonError
from backend.features import mel_features
from baton_core.skeleton import project_front

music21 = pytest.importorskip("music21", reason="music21 (the score extra) is needed to read scores")
from backend.score import instrument_for, make_performance, plan_from_score, read_score  # noqa: E402
from training.eval_conductor import bars_of  # noqa: E402
from conftest import ONE_TUNE, TUNE_BOOK  # noqa: E402
from training.scores import find_soundfont, render_score  # noqa: E402

FPS = 30.0


def _have_fluidsynth() -> bool:
    try:
        find_soundfont()
    except BatonError:
        return False
    return shutil.which("fluidsynth") is not None


needs_synth = pytest.mark.skipif(not _have_fluidsynth(),
                                 reason="fluidsynth and a GM soundfont (Debian fluidsynth fluid-soundfont-gm) are needed")


@pytest.fixture(scope="module")
def chorale():
    """Bach's orchestral chorale with fermatas: trumpets, timpani, oboes, strings, voices, continuo."""
    return read_score("bach/bwv190.7-inst")


@pytest.fixture(scope="module")
def chorale_render(chorale):
    return render_score(None, first_bar=1, n_bars=5, tempo_bpm=80, rubato=0.6, seed=4, info=chorale,
                        max_seconds=20)


def test_parts_get_instruments_from_their_names_not_their_midi_programs(chorale):
    fams = {p.name: p.family for p in chorale.parts}
    assert fams["Trumpet 1"] == "brass" and fams["Timpani"] == "percussion" and fams["Oboe 1"] == "woodwind"
    assert fams["Violin 1"] == "strings" and fams["Soprano"] == "voices" and fams["Continuo"] == "keyboard"
    assert instrument_for("Violoncello")[1] == (42,) and instrument_for("Trumpet in D")[1] == (56,)
    assert instrument_for("Contrabass")[0] == "strings" and instrument_for(None, lowest=36)[1][0] == 42


@needs_synth
def test_a_rendered_score_has_exact_beats_and_the_plan_beats_them(chorale_render):
    r = chorale_render
    plan = r.plan
    assert r.sr == 22050 and r.audio.dtype == np.float32 and r.duration <= 20.0 + 1e-6
    assert set(plan.pattern) == {"4"} and set(plan.metre) == {"4/4"}
    # the fermatas are held: the strokes they cover are dropped, the hold outlasts a beat
    assert plan.fermata.sum() >= 1
    k = np.flatnonzero(plan.fermata)[0]
    assert plan.hold[k] > 1.3 * plan.period(k)
    assert plan.times[k + 1] - plan.times[k] > plan.hold[k]  # a breath after the cut-off
    # every stroke not under a fermata is a notated beat, at its exact time
    for t in plan.times:
        assert np.abs(r.beats - t).min() < 1e-6
    # rubato: the beat moves, yet the notes sound on the beats (the bass's onsets are on them)
    ioi = np.diff(plan.times)[~plan.fermata[:-1]]
    assert np.std(ioi) / np.mean(ioi) > 0.02
    from backend.beats import onset_envelope
    env = onset_envelope(mel_features(r.audio))
    at_beats = [env[max(0, int(t * 90) - 2): int(t * 90) + 8].max() for t in plan.times]
    between = [env[int((a + 0.5 * (b - a)) * 90) - 2: int((a + 0.5 * (b - a)) * 90) + 3].max()
               for a, b in zip(plan.times[:-1], plan.times[1:])]
    assert np.median(at_beats) > 2 * np.median(between)


@needs_synth
def test_the_score_plan_conducted_puts_every_ictus_on_its_beat_in_the_standard_pattern(chorale_render):
    r = chorale_render
    plan = r.plan
    beaten = beaten_strokes(plan)
    for seed in (1, 2):
        m = project_front(conduct_plan(plan, sample_style(seed), r.n_frames(), FPS))
        ictus = metrics.ictus_times(m)
        assert metrics.ictus_f(ictus, plan.times[beaten]) >= 0.95
        bars = bars_of(plan, beaten)
        assert len(bars) >= 2 and metrics.pattern_accuracy(m, bars) == 1.0
        r_dyn, chance = metrics.dynamics_correlation(m, r.audio, r.sr)
        assert r_dyn > 0.3 or not np.isfinite(chance)


@needs_synth
def test_the_audio_plan_hears_the_rendered_beats(chorale_render):
    from backend.rules import conduct
    r = chorale_render
    mel = mel_features(r.audio)
    kp3d, plan = conduct(mel, int(np.ceil(len(mel) / 3)))
    ictus = metrics.ictus_times(project_front(kp3d))
    ref = r.plan.times[beaten_strokes(r.plan)]
    f, chance = metrics.ictus_f(ictus, ref), metrics.ictus_f_chance(ictus, ref)
    assert f >= 0.6 and f > chance + 0.4
    assert plan.fermata.any()  # a fermata is heard as a hold, not filled with invented beats


def test_metre_changes_tempo_marks_and_hairpins_come_from_the_score():
    handel = read_score("handel/rinaldo/Lascia_chio_pianga")
    a, b = handel.bar_range(11, 4)  # 4/4 into 3/4 at bar 13
    plan = plan_from_score(handel, make_performance(handel, (a, b), tempo_bpm=66))
    assert list(dict.fromkeys(plan.metre)) == ["4/4", "3/4"] and list(dict.fromkeys(plan.pattern)) == ["4", "3"]
    change = np.flatnonzero(plan.metre == "3/4")[0]
    assert plan.section[change] and plan.beat[change] == 0
    assert np.allclose(np.diff(plan.times[plan.sub == 0]), 60 / 66, atol=1e-6)  # strict tempo: no rubato asked
    # Haydn's menuetto: a crescendo hairpin raises the level stroke by stroke and is flagged
    minuet = read_score("haydn/opus74no1/movement3")
    a, b = minuet.bar_range(1, 40)
    plan = plan_from_score(minuet, make_performance(minuet, (a, b), tempo_bpm=132))
    cresc = np.flatnonzero(plan.hairpin > 0.5)
    assert len(cresc) >= 3
    run = cresc[: np.argmax(np.diff(cresc) > 1) + 1] if np.any(np.diff(cresc) > 1) else cresc
    assert plan.level[run[-1]] > plan.level[run[0]]
    assert np.all(np.diff(plan.level[run]) >= -0.02)


def test_how_a_bar_is_beaten_depends_on_its_tempo():
    haydn = read_score("haydn/opus1no1/movement1")  # 6/8
    bars = haydn.bar_range(1, 4)
    slow = plan_from_score(haydn, make_performance(haydn, bars, tempo_bpm=60))  # eighths at 120: in six
    fast = plan_from_score(haydn, make_performance(haydn, bars, tempo_bpm=140))  # dotted quarters at 93: in two
    assert set(slow.pattern) == {"6"} and set(fast.pattern) == {"2"}
    assert len(slow.times) == 3 * len(fast.times) - 2 * (fast.beat[0] != 0)
    assert patterns.bar_scheme(3, 4, 60 / 240).pattern == "1"  # a scherzo: in one
    assert patterns.bar_scheme(4, 4, 60 / 40).pattern == "4/2"  # an adagio: subdivided
    assert patterns.bar_scheme(5, 8, 60 / 300, (3, 2)).pattern == "2"  # a fast five: in its two groups
    assert patterns.bar_scheme(7, 4, 60 / 100, (2, 2, 3)).pattern == "7:2+2+3"


@needs_synth
def test_entries_after_a_rest_are_found_for_their_family():
    r = render_score("bach/bwv248.64-6", first_bar=9, n_bars=6, tempo_bpm=84, seed=2, max_seconds=25)
    plan = r.plan
    voices = plan.entries[:, FAMILIES.index("voices")]
    assert voices.any()  # the choir comes in after the ritornello
    k = np.flatnonzero(voices)[0]
    assert plan.times[k] > plan.start + 2.0


def test_an_orchestration_of_ones_own_replaces_the_parts_instruments(chorale):
    from training.scores import build_midi, random_performance
    rng = np.random.default_rng(0)
    perf = random_performance(chorale, (1, 3), rng, 90.0, 0.0, "auto")
    _, own = build_midi(chorale, perf, rng, 30.0)
    pm, brass = build_midi(chorale, perf, rng, 30.0, programs=(56, 60, 57))
    assert all(o in part.programs for o, part in zip(own, chorale.parts))  # by default: fitting each part's name
    assert brass == [(56, 60, 57)[j % 3] for j in range(len(chorale.parts))]  # cycled over the parts
    assert [i.program for i in pm.instruments] == brass


def test_an_empty_measure_is_not_beaten_on_top_of_the_next_bar():
    # music21 reads this reel's bar 9 as an empty measure at the offset where bar 10 begins, lasting
    # a whole 2/4 bar: beaten as read, its strokes fell on bar 10's and the plan could not be made
    reel = read_score("ryansMammoth/CosmopoliteReelThe.abc")
    assert [b.number for b in reel.bars if 7 <= b.number <= 11] == [7, 8, 10, 11]
    assert all(a.offset + a.length <= b.offset + 1e-9 for a, b in zip(reel.bars, reel.bars[1:]))
    plan = plan_from_score(reel, make_performance(reel, reel.bar_range(5, 8), tempo_bpm=120))
    assert np.all(np.diff(plan.times) > 0)
    assert len(plan.downbeats) == 6  # bars 6, 7, 8, 11, 12, 13: bar 5 opens the range short, bar 10 completes bar 8


@pytest.mark.parametrize("piece, first, count, unit", [
    ("bach/bwv319.mxl", 3, 3, 1.0),  # 4/4, bar 4 split at a phrase's fermata: 3 beats, then 1
    ("ryansMammoth/KilkennyRoversJig.abc", 7, 4, 1.5),  # 6/8, a quaver's pickup into the second strain
])
def test_a_bar_split_in_two_is_beaten_as_one_bar_with_its_pickup(piece, first, count, unit):
    # music21 reads a bar split at a repeat or a phrase's end as two short measures; the second is
    # the pickup into the next bar, and beaten as a bar of its own it put a downbeat before the downbeat
    from backend.score import notated_beats
    info = read_score(piece)
    a, b = info.bar_range(first, count)
    assert any(x.length < x.nominal for x in info.bars[a + 1:b - 1])  # the split bar is inside the range
    q, down = notated_beats(info, (a, b))
    assert np.allclose(np.diff(q), unit)  # every beat on the metre's grid, none on the pickup's quaver
    assert np.allclose(np.diff(q[down]), info.bars[a].nominal)  # bar lines a whole bar apart
    plan = plan_from_score(info, make_performance(info, (a, b), tempo_bpm=100))
    assert np.allclose(np.diff(plan.downbeats), np.diff(make_performance(info, (a, b), tempo_bpm=100).onset(q[down])))
    assert len(plan.downbeats) == down.sum()


def test_bad_scores_and_ranges_give_clear_errors(chorale, tmp_path):
    with pytest.raises(BatonError, match="cannot read the score"):
        read_score("no/such/piece-anywhere")
    with pytest.raises(BatonError, match="no bar 999"):
        chorale.bar_range(999, 2)
    bad = tmp_path / "bad.xml"
    bad.write_text("<not-a-score/>")
    with pytest.raises(BatonError, match="bad.xml"):
        read_score(bad)
    book = tmp_path / "tunes.abc"  # an ABC tune book: two tunes in one file
    book.write_text(TUNE_BOOK)
    with pytest.raises(BatonError, match=r"tunes.abc' holds 2 pieces, and Baton conducts one"):
        read_score(book)
    book.write_text(ONE_TUNE)
    assert [b.numerator for b in read_score(book).bars] == [2, 2]
    with pytest.raises(BatonError, match="soundfont"):
        find_soundfont(tmp_path / "missing.sf2")
    if _have_fluidsynth():
        with pytest.raises(BatonError, match="longer than"):
            render_score(None, first_bar=1, n_bars=2, tempo_bpm=40, info=chorale, max_seconds=3)
