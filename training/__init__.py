"""Training-side code: rendering scores into audio with exactly known beats and plans
(scores.py), the data set builders, the two training stages, and evaluation scripts. Needs the
`train` extra (music21, pretty_midi) and fluidsynth with a General MIDI soundfont."""
