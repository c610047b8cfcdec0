"""The engine's clocks: the mel features run at MEL_FPS, motion at MOTION_FPS, and every network
pools MEL_PER_MOTION mel frames into one motion frame (the paper's 90 → 30 Hz step). Frame i of
either clock sits at i / fps seconds from the start of the analysed audio."""

MEL_FPS = 90
MOTION_FPS = 30
MEL_PER_MOTION = MEL_FPS // MOTION_FPS
MEL_BINS = 128  # mel bands per feature frame

assert MEL_PER_MOTION * MOTION_FPS == MEL_FPS


def motion_frames(n_mel_frames: int) -> int:
    """Motion frames that cover `n_mel_frames` mel frames (a started motion frame counts)."""
    return -(-n_mel_frames // MEL_PER_MOTION)
