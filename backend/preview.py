"""A quick stick-figure video of a take, with its music, for checking a take by eye.

Frames are drawn with Pillow from the take's 2D keypoints and piped raw into the ffmpeg binary that
the `imageio-ffmpeg` wheel carries (H.264 + AAC), so no system ffmpeg is needed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from baton_core import skeleton as sk
from baton_core.errors import BatonError
from baton_core.take import Take

_LIMBS = [(sk.L_SHOULDER, sk.R_SHOULDER), (sk.L_HIP, sk.R_HIP), (sk.L_SHOULDER, sk.L_HIP), (sk.R_SHOULDER, sk.R_HIP),
          (sk.L_SHOULDER, sk.L_ELBOW), (sk.L_ELBOW, sk.L_WRIST), (sk.R_SHOULDER, sk.R_ELBOW), (sk.R_ELBOW, sk.R_WRIST),
          (sk.NOSE, sk.L_EYE), (sk.NOSE, sk.R_EYE), (sk.L_EYE, sk.L_EAR), (sk.R_EYE, sk.R_EAR)]
_RIGHT = {sk.R_SHOULDER, sk.R_ELBOW, sk.R_WRIST, sk.R_HIP, sk.R_EYE, sk.R_EAR}


def render_preview(take: Take, audio_path: str | Path | None, out: str | Path, size: int = 480) -> Path:
    """Write an MP4 of the take's 2D keypoints (the baton hand in orange, beats flashed), with the
    audio slice the take was made from."""
    import imageio_ffmpeg

    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BatonError(f"{out}: cannot create the preview's folder ({e.strerror or e})") from None
    kp = take.keypoints_2d
    # Frame the figure: centre on the median mid-hip/mid-shoulder, scale to the whole motion's extent.
    centre = np.median(kp.reshape(-1, 2), axis=0)
    extent = max(float(np.percentile(np.abs(kp.reshape(-1, 2) - centre), 99.5)) * 2.3, 0.2)
    px = (kp - centre) / extent * size + size / 2
    beat_frames = set(np.round(np.asarray(take.beats) * take.fps).astype(int).tolist())
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{size}x{size}", "-r", f"{take.fps}", "-i", "-"]
    if audio_path is not None:
        cmd += ["-ss", f"{take.start}", "-t", f"{take.duration}", "-i", str(audio_path), "-c:a", "aac", "-shortest"]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", str(out)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _draw_frames(take, px, beat_frames, size, proc.stdin)
        proc.stdin.close()
    except OSError:  # ffmpeg gave up (unwritable path, full disk): its own words say why
        pass
    err = " ".join(proc.stderr.read().decode(errors="replace").split())
    if proc.wait(timeout=120) != 0:
        raise BatonError(f"{out}: could not write the preview (ffmpeg: {err[-300:] or 'no reason given'})")
    return out


def _draw_frames(take: Take, px: np.ndarray, beat_frames: set, size: int, sink) -> None:
    from PIL import Image, ImageDraw

    for i in range(take.n_frames):
        img = Image.new("RGB", (size, size), (24, 26, 32))
        draw = ImageDraw.Draw(img)
        if i in beat_frames:
            draw.rectangle([0, 0, size - 1, 6], fill=(255, 170, 60))
        for a, b in _LIMBS:
            colour = (255, 150, 40) if b == sk.R_WRIST else (120, 170, 255) if a in _RIGHT else (220, 220, 220)
            draw.line([tuple(px[i, a]), tuple(px[i, b])], fill=colour, width=4)
        for j in range(13):
            x, y = px[i, j]
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=(255, 255, 255))
        sink.write(img.tobytes())
