"""Running a generator over a whole piece, 1 s to 60 min, fast and without seams.

The network is fully convolutional in time, so a long piece is cut into overlapping windows whose
overlap covers the receptive field; each window's output is trimmed to its core and the cores are
joined. The result equals one pass over the whole piece (to float rounding): there is nothing to
blend and no seam to hide. Two window sizes serve two costs:

* the music encoder (99% of the work: 2D convs on the 90 Hz mel) runs on short tiles that stay in
  the CPU cache, with BatchNorm folded into the convs and channels-last tensors — the halo it needs
  is only 18 mel frames;
* the temporal decoder (±258 frames of context) runs on long windows batched through one forward.

Noise is one `noise_dim` vector per second of music, drawn from the seed or given by the caller.
"""

from __future__ import annotations

import copy
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .bar_reader import read_bars
from .bars import Bars, beat_state_logp, hear_bars
from .beat_net import bar_features, beat_phase_features
from .beats import Beats
from baton_core.errors import BatonError
from baton_core.skeleton import N_JOINTS
from baton_core.timebase import MEL_FPS, MEL_PER_MOTION, MOTION_FPS, motion_frames

from .model import ENCODER_REACH_MEL, Generator

ProgressFn = Callable[[float, str], None]

ENCODER_TILE = 5 * MEL_FPS  # mel frames per encoder tile: small enough to stay in cache
ENCODER_HALO = ENCODER_REACH_MEL  # mel frames (a multiple of MEL_PER_MOTION, so tiles keep the pooling's phase)
DECODER_WINDOW = 300 * MOTION_FPS  # motion frames per decoder window core (halo overhead 6%)


_ENCODE_LOCK = threading.Lock()  # the encoder owns all cores while it runs


def make_noise(seed: int, seconds: int, noise_dim: int) -> np.ndarray:
    """Deterministic standard-normal noise, one row per second of music."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(seconds, noise_dim, generator=g).numpy()


def noise_seconds(n_mel_frames: int) -> int:
    return math.ceil(n_mel_frames / MEL_FPS)


def check_noise(noise, seconds: int, noise_dim: int) -> np.ndarray:
    """The caller's noise as float32 (seconds, noise_dim), or a BatonError saying what is wrong."""
    noise = np.asarray(noise)
    if not np.issubdtype(noise.dtype, np.number) or noise.dtype.kind == "c":
        raise BatonError(f"noise must be a real-valued array, not {noise.dtype}")
    if noise.shape != (seconds, noise_dim):
        raise BatonError(f"noise must have shape ({seconds}, {noise_dim}) for {seconds} s of music "
                         f"(one row per started second), got {tuple(noise.shape)}")
    if not np.isfinite(noise).all():
        raise BatonError("noise contains NaN or infinite values")
    return noise.astype(np.float32)


def _max_pool_nhwc(x: torch.Tensor, kernel: tuple, stride: tuple, padding: tuple) -> torch.Tensor:
    """F.max_pool2d (−inf padding) of a channels-last tensor as running maxima over shifted strided
    views, width first (where the stride shrinks the data) then height. Equal to max_pool2d and
    ~3× faster here: no indices, no padded copy, every view contiguous along channels."""
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(padding)
    n, c, hi, wi = x.shape
    rows = torch.empty((n, hi, (wi + 2 * pw - kw) // sw + 1, c), dtype=x.dtype)
    _running_max(x.permute(0, 2, 3, 1), rows, axis=2, k=kw, s=sw, p=pw)
    out = torch.empty((n, (hi + 2 * ph - kh) // sh + 1, rows.shape[2], c), dtype=x.dtype)
    _running_max(rows, out, axis=1, k=kh, s=sh, p=ph)
    return out.permute(0, 3, 1, 2)


def _running_max(src: torch.Tensor, dst: torch.Tensor, axis: int, k: int, s: int, p: int) -> None:
    """dst[j] = max over taps d < k of src[j·s − p + d] along `axis`; taps outside src are skipped
    (what −inf padding means)."""
    n_in, n_out = src.shape[axis], dst.shape[axis]
    every_s = (slice(None),) * axis + (slice(None, None, s),)

    def tap(d: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(the outputs whose tap d falls inside src, the strided view of src they read)"""
        j0, j1 = max(0, -((d - p) // s)), min(n_out, (n_in - 1 - d + p) // s + 1)
        if j1 <= j0:
            return None
        return dst.narrow(axis, j0, j1 - j0), src.narrow(axis, j0 * s - p + d, (j1 - j0 - 1) * s + 1)[every_s]

    target, view = tap(p)  # the centre tap reaches every output
    target.copy_(view)
    for d in range(k):
        pair = tap(d) if d != p else None
        if pair is not None:
            torch.maximum(pair[0], pair[1], out=pair[0])


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


@dataclass
class _EncoderLayer:
    weight: torch.Tensor
    bias: torch.Tensor
    residual: str  # "none", "identity" or "conv"
    res_weight: torch.Tensor | None
    res_bias: torch.Tensor | None
    pool: tuple | None  # (kernel, stride, padding)


class InferenceGenerator:
    """A Generator prepared for inference: folded BatchNorm, channels-last encoder, tiled windows."""

    def __init__(self, model: Generator):
        model = copy.deepcopy(model).eval()
        self.cfg = model.cfg
        self.noise = model.noise
        self.decoder = model.decoder
        for block in self.decoder.blocks:  # fold BN into the dilated convs; padding stays reflect
            block.conv1 = fuse_conv_bn_eval(block.conv1, block.bn1)
            block.conv2 = fuse_conv_bn_eval(block.conv2, block.bn2)
            block.bn1 = block.bn2 = torch.nn.Identity()
        self.decoder_halo = model.decoder_reach()
        self.beat_net = model.beat_net if self.cfg.beat_input else None
        self.beat_proj = model.beat_proj if self.cfg.beat_input else None
        self.bar_net = model.bar_net if self.cfg.bar_input else None
        self.bar_proj = model.bar_proj if self.cfg.bar_input else None
        self.bar_readers = ([model.bar_reader] if self.cfg.bar_input and self.cfg.bar_reader else []) + (
            [model.spectrum_reader] if self.cfg.bar_input and self.cfg.spectrum_reader else [])
        self._pool: ThreadPoolExecutor | None = None  # one encoder worker per core, kept between calls
        self._pool_size = 0
        # Reflect padding needs more frames than it pads: the widest dilated conv pads
        # (k−1)/2·2^(L−1) frames (64 for the paper's), so shorter pieces are reflect-padded to
        # whole seconds that give it room; only they differ from a plain pass over the piece.
        widest = (self.cfg.kernel_size - 1) // 2 * 2 ** (self.cfg.decoder_layers - 1)
        self.min_seconds = math.ceil((widest + 1) / MOTION_FPS)
        # The light 1D encoder is cheap enough to run over the whole piece in one pass.
        self.encoder_1d = model.encoder if self.cfg.encoder == "conv1d" else None
        if self.encoder_1d is None:
            self._prepare_conv2d(model)

    def _prepare_conv2d(self, model: Generator) -> None:
        cl = torch.channels_last
        self.layers: list[_EncoderLayer] = []
        for i, block in enumerate(model.encoder.blocks):
            conv = fuse_conv_bn_eval(block.conv, block.bn)
            kind, rw, rb = "none", None, None
            if block.residual:
                kind = "identity" if block.res_conv is None else "conv"
            if kind == "conv":
                rc = fuse_conv_bn_eval(block.res_conv, block.res_bn)
                rw, rb = rc.weight.detach()[:, :, 0, 0].t().contiguous(), rc.bias.detach()  # (Cin, Cout)
            pool = model.encoder.pools.get(i)
            pool = (pool.kernel_size, pool.stride, pool.padding) if pool is not None else None
            self.layers.append(_EncoderLayer(conv.weight.detach().contiguous(memory_format=cl),
                                             conv.bias.detach(), kind, rw, rb, pool))
        # The first block (one input channel, no residual, no pool) runs as a 9-tap matrix product:
        # oneDNN's 1-channel conv plus the layout change cost ~6× more on a tile.
        first = self.layers.pop(0)
        self.first_w = first.weight.reshape(first.weight.shape[0], 9).t().contiguous()
        self.first_b = first.bias
        proj = fuse_conv_bn_eval(model.encoder.proj, model.encoder.proj_bn)
        self.proj_w, self.proj_b = proj.weight.detach()[:, :, 0], proj.bias.detach()

    # -- the music encoder, on one tile ------------------------------------------------------------
    def _encode_tile(self, mel: torch.Tensor, reflect_time: bool = True) -> torch.Tensor:
        """(N, T90, bins) → (N, ceil(T90/3), C), same as Generator.encoder in eval mode.

        The convs pad by reflection. A tile whose first and last rows are halo (not the piece's
        own ends) may pad time with zeros instead — those rows are cut off anyway — so oneDNN pads
        for free and only the two frequency-edge columns are corrected to their reflected value."""
        n, t, f = mel.shape
        p = F.pad(mel.unsqueeze(1), (1, 1, 1, 1), mode="reflect")[:, 0]
        taps = torch.stack([p[:, dh:dh + t, dw:dw + f] for dh in range(3) for dw in range(3)], dim=-1)
        # mm then add_: addmm would first broadcast-copy the bias into the output, a slow strided copy
        h = torch.mm(taps.reshape(-1, 9), self.first_w).add_(self.first_b).relu_().view(n, t, f, -1)
        h = h.permute(0, 3, 1, 2)  # (N, C, T, F) in channels-last memory
        for layer in self.layers:
            if reflect_time:
                out = F.conv2d(F.pad(h, (1, 1, 1, 1), mode="reflect"), layer.weight, layer.bias)
            else:
                out = F.conv2d(h, layer.weight, layer.bias, padding=1)
                w = layer.weight
                out[..., :1] += F.conv2d(h[..., 1:2], w[..., :1], padding=(1, 0))
                out[..., -1:] += F.conv2d(h[..., -2:-1], w[..., 2:], padding=(1, 0))
            out = out.relu_()
            if layer.residual == "identity":
                out.add_(h)
            elif layer.residual == "conv":  # the 1×1 conv as one in-place matrix product on (N·T·F, C)
                flat = out.permute(0, 2, 3, 1).view(-1, out.shape[1])
                flat.addmm_(h.permute(0, 2, 3, 1).reshape(-1, h.shape[1]), layer.res_weight).add_(layer.res_bias)
            if layer.pool is not None:
                out = _max_pool_nhwc(out, *layer.pool)
            h = out
        n, c, t, f = h.shape
        h = h.permute(0, 2, 1, 3).reshape(n, t, c * f)  # channel-major per frame, as trained
        return torch.addmm(self.proj_b, h.reshape(n * t, c * f), self.proj_w.t()).view(n, t, -1)

    def encode(self, mel: torch.Tensor, progress: ProgressFn | None = None) -> torch.Tensor:
        """Whole mel (T90, bins) → (ceil(T90/3), C) in cache-sized tiles with exact halos.

        Tiles go to one worker per core, each running its convs on a single thread: small convs
        scale better across tiles than within one (measured ~20% faster on 2 cores)."""
        if self.encoder_1d is not None:
            with torch.inference_mode():
                out = self.encoder_1d(mel.unsqueeze(0))[0]
            if progress:
                progress(1.0, "music encoder")
            return out
        n = mel.shape[0]
        out = torch.empty(motion_frames(n), self.cfg.decoder_channels)
        tiles = [(a, min(n, a + ENCODER_TILE)) for a in range(0, n, ENCODER_TILE)]
        done = [0]

        def run(tile: tuple[int, int]) -> None:
            a, b = tile
            lo, hi = max(0, a - ENCODER_HALO), min(n, b + ENCODER_HALO)
            with torch.inference_mode():  # thread-local: each worker enters it itself
                feats = self._encode_tile(mel[lo:hi].unsqueeze(0), reflect_time=lo == 0 or hi == n)[0]
                skip = (a - lo) // MEL_PER_MOTION
                first = a // MEL_PER_MOTION
                out[first: motion_frames(b)] = feats[skip: skip + motion_frames(b) - first]
            done[0] += 1
            if progress:
                progress(done[0] / len(tiles), "music encoder")

        with _ENCODE_LOCK:
            threads = torch.get_num_threads()
            if self._pool is None or self._pool_size != threads:
                self._pool, self._pool_size = ThreadPoolExecutor(threads, thread_name_prefix="baton-encoder"), threads
            torch.set_num_threads(1)
            try:
                list(self._pool.map(run, tiles))
            finally:
                torch.set_num_threads(threads)
        return out

    # -- the decoder, on batched windows -----------------------------------------------------------
    def _decoder_windows(self, t: int) -> list[tuple[int, int, int]]:
        """(start, keep_from, keep_to) of each window of DECODER_WINDOW frames plus halos: the
        frames each window keeps are at least a halo away from its cut edges."""
        span = DECODER_WINDOW + 2 * self.decoder_halo
        if t <= span:
            return [(0, 0, t)]
        starts = list(range(0, t - span, DECODER_WINDOW)) + [t - span]
        keep_to = [s + span - self.decoder_halo for s in starts[:-1]] + [t]
        return [(s, lo, hi) for s, lo, hi in zip(starts, [0] + keep_to[:-1], keep_to)]

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """(T30, 2C) → (T30, 13, 2): the windows go through the decoder as one batch."""
        t = h.shape[0]
        windows = self._decoder_windows(t)
        span = min(t, DECODER_WINDOW + 2 * self.decoder_halo)
        y = self.decoder(torch.stack([h[s:s + span] for s, _, _ in windows]))
        out = torch.empty(t, 2 * N_JOINTS)
        for i, (s, lo, hi) in enumerate(windows):
            out[lo:hi] = y[i, lo - s:hi - s]
        return out.view(t, N_JOINTS, 2)

    def window_joins(self, n_frames: int) -> np.ndarray:
        """Motion frames where one window's output meets the next's (encoder tiles and decoder
        windows), for checking that no seam shows there."""
        padded = max(math.ceil(n_frames / MOTION_FPS), self.min_seconds) * MOTION_FPS
        joins = set(range(ENCODER_TILE // MEL_PER_MOTION, padded, ENCODER_TILE // MEL_PER_MOTION)) if self.encoder_1d is None else set()
        joins |= {lo for _, lo, _ in self._decoder_windows(padded)[1:]}
        return np.array(sorted(j for j in joins if 0 < j < n_frames))

    def track_beats(self, mel: np.ndarray) -> Beats | None:
        """The generator's own beats for a mel (its learned tracker), or None when it has none."""
        return None if self.beat_net is None else self.beat_net.track(mel)

    def track_bars(self, mel: np.ndarray, beats: np.ndarray, parts: list[np.ndarray] | None = None) -> Bars | None:
        """The bars over `beats` (s) as the generator's own bar tracker hears them (and its bar
        readers read them, where it has them), or None when it has none. With `parts` (index arrays
        into `beats`), each part's bars are read on their own; a beat in no part begins no bar
        (metre 0, position −1, confidence NaN)."""
        if self.bar_net is None:
            return None
        beats = np.asarray(beats, dtype=np.float64)
        with torch.inference_mode():
            act = self.bar_net.activation(mel)

        def read(b: np.ndarray) -> Bars:
            logp = beat_state_logp(act, b, MOTION_FPS)
            if self.bar_readers:
                logp = read_bars(self.bar_readers, mel, b, logp)
            return hear_bars(logp, b)

        if parts is None:
            return read(beats)
        metre, pos = np.zeros(len(beats), int), np.full(len(beats), -1)
        conf = np.full(len(beats), np.nan)
        for part in parts:
            if len(part) >= 2:
                bars = read(beats[part])
                metre[part], pos[part], conf[part] = bars.metre, bars.position, bars.confidence
        return Bars(beats[pos == 0], metre, pos, conf)

    def __call__(self, mel: np.ndarray, noise: np.ndarray, progress: ProgressFn | None = None,
                 beats: np.ndarray | None = None, downbeats: np.ndarray | None = None,
                 grid: np.ndarray | None = None) -> np.ndarray:
        """mel (T90, bins) in [0, 1] and noise (ceil(T90/90), noise_dim) → keypoints (ceil(T90/3), 13, 2).
        A generator with the beat input conducts `beats` (s), by default its own tracker's; one with
        the bar input draws the bars that begin on `downbeats` (s), by default the ones it hears,
        counted on `grid` (s; by default `beats`): the bars run on through a hold whose beats are
        counted, not struck."""
        n90 = mel.shape[0]
        seconds = noise_seconds(n90)
        noise = check_noise(noise, seconds, self.cfg.noise_dim)
        padded_seconds = max(seconds, self.min_seconds)
        mel_p = np.pad(mel, ((0, padded_seconds * MEL_FPS - n90), (0, 0)), mode="reflect")
        noise_p = np.pad(noise, ((0, padded_seconds - seconds), (0, 0)), mode="reflect")
        with torch.inference_mode():
            enc = self.encode(torch.from_numpy(np.ascontiguousarray(mel_p, dtype=np.float32)), progress)
            nz = self.noise(torch.from_numpy(np.ascontiguousarray(noise_p, dtype=np.float32)).unsqueeze(0))[0]
            if progress:
                progress(1.0, "pose decoder")
            h = torch.cat([enc, nz], dim=1)
            if self.beat_proj is not None:
                times = self.track_beats(mel).times if beats is None else np.asarray(beats, dtype=np.float64)
                h = h + self.beat_proj(torch.from_numpy(beat_phase_features(times, h.shape[0])))
                if self.bar_proj is not None:
                    if downbeats is None:
                        downbeats = self.track_bars(mel, times).downbeats
                    counted = times if grid is None else np.asarray(grid, dtype=np.float64)
                    h = h + self.bar_proj(torch.from_numpy(bar_features(counted, downbeats, h.shape[0])))
            y = self.decode(h)
        return y[: motion_frames(n90)].numpy()
