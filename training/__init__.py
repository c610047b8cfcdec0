"""Training Baton's generator: rendering scores into audio with exactly known beats and plans
(scores.py), the corpus builder, the paper's two stages (M2S-Net, M2S-GAN) and evaluation. Needs
the `train` extra (music21, pretty_midi, tqdm) and fluidsynth with a General MIDI soundfont.
See training/README.md for the commands."""
