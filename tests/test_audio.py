"""Decoding real files in real formats, slices, and every kind of bad input."""

import numpy as np
import pytest
import soundfile as sf

from backend.audio import SAMPLE_RATE, load_audio
from backend.errors import AudioError


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_formats_decode_to_mono_22050_with_the_right_length(demo, demo_files, fmt):
    audio = load_audio(demo_files[fmt])
    assert audio.sr == SAMPLE_RATE and audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert abs(audio.duration - len(demo.samples) / demo.sr) < 0.06  # MP3 adds encoder padding
    # the same music: correlation of the loudness envelopes
    n = min(len(audio.samples), len(demo.samples))
    env = lambda x: np.abs(x[: n // 512 * 512]).reshape(-1, 512).mean(1)
    assert np.corrcoef(env(audio.samples[:n]), env(demo.samples[:n]))[0, 1] > 0.95


def test_slice_is_the_same_samples_as_the_whole(demo_files):
    whole = load_audio(demo_files["flac"])
    part = load_audio(demo_files["flac"], start=10.0, duration=5.0)
    assert part.start == 10.0 and abs(part.duration - 5.0) < 1e-3
    i = int(10.0 * SAMPLE_RATE)
    lag = np.argmax(np.correlate(whole.samples[i - 200:i + 1200], part.samples[:1000], "valid"))
    assert abs(lag - 200) <= 2  # the resampler's block boundaries can shift nothing audible
    assert part.sha256 == whole.sha256


def test_slice_to_end_of_file_and_past_it(demo_files):
    whole = load_audio(demo_files["ogg"])
    tail = load_audio(demo_files["ogg"], start=whole.duration - 2.0, duration=100.0)
    assert tail.duration == pytest.approx(2.0, abs=0.01)
    with pytest.raises(AudioError, match="past the end"):
        load_audio(demo_files["ogg"], start=whole.duration + 1)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, reason", [
    (lambda d, f: d / "missing.wav", "no such file"),
    (lambda d, f: _write(d / "empty.wav", b""), "empty"),
    (lambda d, f: _write(d / "garbage.mp3", bytes(range(256)) * 64), "not a readable audio file"),
    (lambda d, f: _write(d / "text.wav", b"RIFF this is not really a wave file"), "not a readable audio file"),
    (lambda d, f: _write(d / "image.flac", b"\x89PNG\r\n\x1a\n" + b"\0" * 4000), "not a readable audio file"),
    (lambda d, f: _write(d / "cut.ogg", f["ogg"].read_bytes()[:40000]), "truncated"),
    (lambda d, f: _write(d / "cut.mp3", f["mp3"].read_bytes()[:40000]), "truncated"),
    (lambda d, f: _write(d / "cut.flac", f["flac"].read_bytes()[:40000]), "truncated|corrupt"),
    (lambda d, f: _write(d / "cut.wav", f["wav"].read_bytes()[:len(f["wav"].read_bytes()) // 2]), "truncated"),
    (lambda d, f: _write(d / "cut.aiff", f["aiff"].read_bytes()[:len(f["aiff"].read_bytes()) // 2]), "truncated"),
    (lambda d, f: d, "not a regular file"),
])
def test_bad_files_give_a_clear_error_naming_the_file(tmp_path, demo_files, make, reason):
    path = make(tmp_path, demo_files)
    with pytest.raises(AudioError, match=reason) as e:
        load_audio(path)
    assert str(path) in str(e.value)
    assert "\n" not in str(e.value)


def _ogg_crc(page: bytes) -> int:
    """The Ogg page checksum (CRC-32, polynomial 0x04C11DB7, unreflected, over the page with its
    checksum field zeroed)."""
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        crc &= 0xFFFFFFFF
    return crc


def test_an_ogg_stream_with_an_early_end_of_stream_page_decodes_whole(demo_files, tmp_path):
    """Real Ogg files can flag end-of-stream on more than their last page (Battle for Wesnoth's
    `northerners.ogg`, as Debian packages it, on its last seven), with music after the first flag
    that every player plays. libsndfile stops at the first; Baton must not call the file truncated."""
    import struct
    data = bytearray(demo_files["ogg"].read_bytes())
    pages, at = [], 0
    while (at := data.find(b"OggS", at)) >= 0:
        size = 27 + data[at + 26] + sum(data[at + 27: at + 27 + data[at + 26]])
        pages.append((at, size, struct.unpack("<q", data[at + 6: at + 14])[0]))
        at += size
    whole = load_audio(demo_files["ogg"])
    rate = sf.info(demo_files["ogg"]).samplerate  # the pages' granule positions count the file's samples
    at, size, _ = max(p for p in pages if p[2] <= (whole.duration - 3.0) * rate)
    data[at + 5] |= 0x04  # end of stream, 3 s or more before the end
    data[at + 22: at + 26] = bytes(4)
    data[at + 22: at + 26] = struct.pack("<I", _ogg_crc(bytes(data[at: at + size])))
    early = _write(tmp_path / "early_eos.ogg", bytes(data))
    assert len(sf.read(early)[0]) / rate < whole.duration - 2.0  # libsndfile alone stops at the flag
    heard = load_audio(early)
    assert heard.duration == pytest.approx(whole.duration, abs=0.02)
    assert np.corrcoef(heard.samples[-SAMPLE_RATE:], whole.samples[-SAMPLE_RATE:])[0, 1] > 0.99
    part = load_audio(early, start=whole.duration - 5.0, duration=4.0)
    assert part.duration == pytest.approx(4.0, abs=0.02)
    # a file short for ffmpeg too is truncated: the middle third of its pages gone, its last page whole
    third = len(pages) // 3
    gapped = b"".join(bytes(data[a: a + n]) for j, (a, n, _) in enumerate(pages) if not third <= j < 2 * third)
    with pytest.raises(AudioError, match="truncated — the header promises"):
        load_audio(_write(tmp_path / "gapped.ogg", gapped))


def test_mp3_length_is_what_decodes_not_what_the_header_guesses(demo, demo_files, tmp_path):
    """A VBR MP3 without a Xing header (whose length libsndfile can only guess) is a whole piece."""
    import subprocess

    import imageio_ffmpeg
    vbr = tmp_path / "vbr.mp3"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(demo_files["wav"]),
                    "-codec:a", "libmp3lame", "-q:a", "4", "-write_xing", "0", str(vbr)], check=True)
    seconds = len(demo.samples) / demo.sr
    assert load_audio(vbr).duration == pytest.approx(seconds, abs=0.1)
    assert load_audio(vbr, start=30.0).duration == pytest.approx(seconds - 30.0, abs=0.1)
    with pytest.raises(AudioError, match="past the end"):
        load_audio(vbr, start=2 * seconds)


def test_formats_libsndfile_lacks_go_through_ffmpeg(demo, demo_files, tmp_path):
    """AAC in an .m4a (what phones and DAWs export) decodes through the bundled ffmpeg."""
    import subprocess

    import imageio_ffmpeg
    m4a = tmp_path / "demo.m4a"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(demo_files["wav"]),
                    "-c:a", "aac", "-b:a", "128k", str(m4a)], check=True)
    seconds = len(demo.samples) / demo.sr
    assert load_audio(m4a).duration == pytest.approx(seconds, abs=0.1)
    part = load_audio(m4a, start=10.0, duration=5.0)
    assert part.duration == pytest.approx(5.0, abs=0.05) and part.start == 10.0
    with pytest.raises(AudioError, match="past the end"):
        load_audio(m4a, start=2 * seconds)
    cut = _write(tmp_path / "cut.m4a", m4a.read_bytes()[:2000])
    with pytest.raises(AudioError, match="not a readable audio file|too short|could be decoded"):
        load_audio(cut)


def test_too_short_silent_and_enormous(tmp_path):
    sf.write(tmp_path / "short.wav", np.random.default_rng(0).uniform(-.5, .5, 11025), 22050)
    with pytest.raises(AudioError, match="too short"):
        load_audio(tmp_path / "short.wav")
    sf.write(tmp_path / "empty.wav", np.zeros(0), 22050)  # a header and no samples
    with pytest.raises(AudioError, match="holds no audio"):
        load_audio(tmp_path / "empty.wav")
    sf.write(tmp_path / "silent.flac", np.zeros(22050 * 3), 22050)
    with pytest.raises(AudioError, match="silent"):
        load_audio(tmp_path / "silent.flac")
    # 61 minutes at a 1 kHz sample rate: a real file, refused before anything is decoded
    sf.write(tmp_path / "long.wav", np.zeros(61 * 60 * 1000, np.int16), 1000, subtype="PCM_16")
    with pytest.raises(AudioError, match="longer than the 60 min limit"):
        load_audio(tmp_path / "long.wav")
    # …unless the caller asks for a slice of it
    with pytest.raises(AudioError, match="silent"):
        load_audio(tmp_path / "long.wav", start=60, duration=30)


def test_bad_slices(demo_files):
    for start in (-1, float("nan"), float("inf")):
        with pytest.raises(AudioError, match="finite, non-negative"):
            load_audio(demo_files["wav"], start=start)
    for duration in (0, -2, float("nan")):
        with pytest.raises(AudioError, match="finite, positive"):
            load_audio(demo_files["wav"], duration=duration)
    with pytest.raises(AudioError, match="too short"):
        load_audio(demo_files["wav"], start=5, duration=0.5)


def test_a_stereo_file_with_one_channel_phase_flipped_is_heard_not_cancelled(demo, tmp_path):
    """Right = −left plays as music on speakers, and a plain mean of the channels is silence: each
    channel is turned to the first one's polarity before the mix, in a file libsndfile reads and in
    one ffmpeg decodes."""
    import subprocess

    import imageio_ffmpeg
    x = 0.5 * demo.samples
    sf.write(tmp_path / "mono.wav", x, demo.sr, subtype="PCM_16")
    sf.write(tmp_path / "flipped.wav", np.stack([x, -x], axis=1), demo.sr, subtype="PCM_16")
    mono = load_audio(tmp_path / "mono.wav").samples
    assert np.allclose(load_audio(tmp_path / "flipped.wav").samples, mono, atol=1e-4)
    assert np.allclose(load_audio(tmp_path / "flipped.wav", start=10.0, duration=5.0).samples,
                       mono[10 * SAMPLE_RATE: 15 * SAMPLE_RATE], atol=1e-4)
    m4a = tmp_path / "flipped.m4a"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(tmp_path / "flipped.wav"),
                    "-c:a", "aac", "-b:a", "128k", str(m4a)], check=True)
    decoded = load_audio(m4a).samples
    assert np.sqrt(np.mean(decoded ** 2)) > 0.8 * np.sqrt(np.mean(mono ** 2))
