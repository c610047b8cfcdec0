"""The M2S-GAN generator as the project's own PyTorch module.

Architecture (the paper's, see ../shared/reference/README.md): a 2D-convolutional music encoder that
turns a 90 Hz mel spectrogram into 64 features at 30 Hz (or Baton's light 1D encoder, `encoder =
"conv1d"`, about 30× cheaper — what makes training on a CPU possible), a transposed-convolution noise path that
upsamples one 8-d noise vector per second to 30 Hz, and a non-causal dilated temporal-convolution
decoder that maps the 128 concatenated features to 13 keypoints × (x, y) in (0, 1).

The module is fully convolutional in time: its output at a frame depends only on inputs within
`receptive_field_frames()` of it. `generate.py` relies on that to cut long pieces into overlapping
windows that join exactly.

Weight normalisation is a training-time reparametrisation; this module stores the effective conv
weights, so the official checkpoint's `weight_g`/`weight_v` pairs are folded on load (checkpoint.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
import torch.nn.functional as F

from baton_core.skeleton import N_JOINTS
from baton_core.timebase import MEL_BINS, MEL_PER_MOTION, MOTION_FPS

from .bars import BAR_FEATURES, bar_states
from .bar_reader import BarReader
from .beat_net import BEAT_FEATURES, BeatNet

ENCODER_REACH_MEL = 18  # mel frames on each side: seven 3×3 convs and the 5/5/3 max pools


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything needed to rebuild the network; stored in every project checkpoint."""

    mel_bins: int = MEL_BINS
    encoder: str = "conv2d"  # "conv2d": the paper's music encoder; "conv1d": Baton's light one
    noise_dim: int = 8
    encoder_channels: tuple[int, int, int] = (16, 32, 32)
    decoder_channels: int = 64
    decoder_layers: int = 6
    kernel_size: int = 5
    dropout: float = 0.0
    # Baton's beat input (beat_net.py): a learned beat tracker stored with the generator, and the
    # phase between its beats added to the decoder's input. Off for the paper's generator.
    beat_input: bool = False
    beat_channels: int = 64
    beat_layers: int = 9
    # Baton's bar input (bars.py): a learned bar tracker (a BeatNet classifying each beat's place in
    # its bar) stored with the generator, and where each frame sits in its bar added to the decoder's input. Needs
    # the beat input.
    bar_input: bool = False
    bar_channels: int = 64
    bar_layers: int = 9
    # Its bar reader (bar_reader.py): hidden size of the network that reads the tracker's states and
    # the beats' measures over the whole piece; 0: the tracker's states are decoded as they are.
    bar_reader: int = 0
    # A second reader that also reads each beat's spectrum (bar_reader.beat_spectra), its reading
    # averaged with the first's: its hidden size; 0: none.
    spectrum_reader: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        """A config from a checkpoint's dict, or a ValueError naming the field that cannot be."""
        if not isinstance(d, dict):
            raise ValueError(f"the config is a {type(d).__name__}, not a mapping")
        known = {f: d[f] for f in cls.__dataclass_fields__ if f in d}
        channels = known.get("encoder_channels", cls.encoder_channels)
        if (not isinstance(channels, (list, tuple)) or len(channels) != 3
                or not all(isinstance(c, int) and c > 0 for c in channels)):
            raise ValueError(f"encoder_channels must be three positive integers, got {channels!r}")
        known["encoder_channels"] = tuple(channels)
        cfg = cls(**known)
        ints = {"noise_dim": (1, 256), "decoder_channels": (1, 4096), "decoder_layers": (1, 12),
                "kernel_size": (3, 15), "beat_channels": (1, 1024), "beat_layers": (1, 14),
                "bar_channels": (1, 1024), "bar_layers": (1, 14), "bar_reader": (0, 1024),
                "spectrum_reader": (0, 1024)}
        for name, (lo, hi) in ints.items():
            value = getattr(cfg, name)
            if not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"{name} must be an integer in {lo}…{hi}, got {value!r}")
        if cfg.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (the decoder is centred), got {cfg.kernel_size}")
        if cfg.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {cfg.encoder!r}")
        if cfg.mel_bins != MEL_BINS:
            raise ValueError(f"mel_bins is {cfg.mel_bins!r}, but the engine's features have {MEL_BINS} bands")
        if not isinstance(cfg.dropout, (int, float)) or not 0 <= cfg.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout!r}")
        if not isinstance(cfg.beat_input, bool):
            raise ValueError(f"beat_input must be true or false, got {cfg.beat_input!r}")
        if not isinstance(cfg.bar_input, bool):
            raise ValueError(f"bar_input must be true or false, got {cfg.bar_input!r}")
        if cfg.bar_input and not cfg.beat_input:
            raise ValueError("bar_input needs beat_input: the bars are counted on the beats")
        if cfg.bar_reader and not cfg.bar_input:
            raise ValueError("bar_reader needs bar_input: it reads the bar tracker's states")
        if cfg.spectrum_reader and not cfg.bar_reader:
            raise ValueError("spectrum_reader needs bar_reader: it reads beside it")
        return cfg


class ConvBlock2d(nn.Module):
    """3×3 reflect-padded conv → BN → ReLU, plus a residual (identity, or 1×1 conv+BN when the
    channel count changes; none for the very first block). The sum is not passed through a ReLU."""

    def __init__(self, cin: int, cout: int, residual: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect")
        self.bn = nn.BatchNorm2d(cout)
        self.residual = residual
        if residual and cin != cout:
            self.res_conv = nn.Conv2d(cin, cout, 1)
            self.res_bn = nn.BatchNorm2d(cout)
        else:
            self.res_conv = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.conv(x)))
        if not self.residual:
            return out
        if self.res_conv is None:
            return out + x
        return out + self.res_bn(self.res_conv(x))


class MusicEncoder(nn.Module):
    """(N, T90, bins) mel → (N, T90 // 3, 64) features. Time stays on the image's height axis; the
    stride-3 time pooling in the second stage is the 90 → 30 Hz step."""

    reach_mel = ENCODER_REACH_MEL

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        c1, c2, c3 = cfg.encoder_channels
        self.blocks = nn.ModuleList([
            ConvBlock2d(1, c1, residual=False), ConvBlock2d(c1, c1), ConvBlock2d(c1, c1),
            ConvBlock2d(c1, c2), ConvBlock2d(c2, c2),
            ConvBlock2d(c2, c3), ConvBlock2d(c3, c3),
        ])
        # (after which block, pool): frequency is halved three times, time divided by 3 once.
        self.pools = {2: nn.MaxPool2d(5, stride=(1, 2), padding=2),
                      4: nn.MaxPool2d(5, stride=(3, 2), padding=2),
                      6: nn.MaxPool2d(3, stride=(1, 2), padding=1)}
        flat = c3 * (cfg.mel_bins // 8)
        self.proj = nn.Conv1d(flat, cfg.decoder_channels, 1)
        self.proj_bn = nn.BatchNorm1d(cfg.decoder_channels)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = mel.unsqueeze(1)
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i in self.pools:
                h = self.pools[i](h)
        n, c, t, f = h.shape
        h = h.permute(0, 1, 3, 2).reshape(n, c * f, t)  # channel-major flatten, as the paper's code
        return self.proj_bn(self.proj(h)).transpose(1, 2)


class ResBlock1d(nn.Module):
    """Reflect-padded conv → BN → ReLU, plus the input (same width)."""

    def __init__(self, channels: int, kernel: int, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2 * dilation,
                              dilation=dilation, padding_mode="reflect")
        self.bn = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x))) + x


class MusicEncoder1d(nn.Module):
    """Baton's light music encoder: (N, T90, bins) → (N, ceil(T90/3), 64), the mel bands as the
    channels of temporal convs. Two 5-tap convs at 90 Hz hear onsets (a spectral flux is a temporal
    difference per band), a stride-3 conv centred on every third mel frame steps down to 30 Hz, and
    three dilated convs there gather ±7 frames of rhythm. The paper's 2D encoder spends ~40 GMAC on
    20 × 10 s of music; this one ~1.4, so both training stages fit a CPU."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        c1, c2, c3 = cfg.encoder_channels
        self.inp = nn.Sequential(nn.Conv1d(cfg.mel_bins, c1, 5, padding=2, padding_mode="reflect"),
                                 nn.BatchNorm1d(c1), nn.ReLU())
        self.fast = ResBlock1d(c1, 5)
        self.down = nn.Sequential(nn.Conv1d(c1, c2, 3, stride=3, padding=1), nn.BatchNorm1d(c2), nn.ReLU())
        self.widen = nn.Conv1d(c2, c3, 1) if c2 != c3 else nn.Identity()
        self.slow = nn.Sequential(*(ResBlock1d(c3, 3, d) for d in (1, 2, 4)))
        self.proj = nn.Conv1d(c3, cfg.decoder_channels, 1)
        self.proj_bn = nn.BatchNorm1d(cfg.decoder_channels)

    # mel frames on each side that reach one output: 2 + 2 at 90 Hz, 1 in the stride-3 conv, and
    # (1 + 2 + 4) frames at 30 Hz; rounded up to a multiple of 3 so tiles keep the stride's phase.
    reach_mel = 27

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = self.fast(self.inp(mel.transpose(1, 2)))
        h = self.slow(self.widen(self.down(h)))
        return self.proj_bn(self.proj(h)).transpose(1, 2)


ENCODERS = {"conv2d": MusicEncoder, "conv1d": MusicEncoder1d}


def music_encoder(cfg: GeneratorConfig) -> nn.Module:
    """The music encoder the config names."""
    return ENCODERS[cfg.encoder](cfg)


class NoiseUpsampler(nn.Module):
    """(N, seconds, noise_dim) → (N, seconds·30, 64): transposed convs with strides 1·5·3·2."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        d = cfg.noise_dim
        self.up = nn.ModuleList([
            nn.ConvTranspose1d(d, 16, 3, stride=1, padding=1),
            nn.ConvTranspose1d(16, 16, 11, stride=5, padding=3),
            nn.ConvTranspose1d(16, 32, 5, stride=3, padding=1),
            nn.ConvTranspose1d(32, cfg.decoder_channels, 6, stride=2, padding=2),
        ])
        self.bn = nn.BatchNorm1d(cfg.decoder_channels)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        h = noise.transpose(1, 2)
        for layer in self.up:
            h = F.relu(layer(h))
        return self.bn(h).transpose(1, 2)


class TemporalBlock(nn.Module):
    """Two non-causal dilated convs (reflect-padded to keep the length) with BN, ReLU and dropout,
    a 3-tap average, and a residual; ReLU after the sum."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        pad = (kernel - 1) * dilation // 2
        self.conv1 = nn.Conv1d(cin, cout, kernel, padding=pad, dilation=dilation, padding_mode="reflect")
        self.bn1 = nn.BatchNorm1d(cout)
        self.conv2 = nn.Conv1d(cout, cout, kernel, padding=pad, dilation=dilation, padding_mode="reflect")
        self.bn2 = nn.BatchNorm1d(cout)
        self.drop = nn.Dropout(dropout)
        self.down = nn.Conv1d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(F.relu(self.bn1(self.conv1(x))))
        h = self.drop(F.relu(self.bn2(self.conv2(h))))
        h = F.avg_pool1d(h, 3, stride=1, padding=1)
        res = x if self.down is None else self.down(x)
        return F.relu(h + res)


class PoseDecoder(nn.Module):
    """(N, T30, 2·64) → (N, T30, 13·2) in (0, 1)."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        c, k = cfg.decoder_channels, cfg.kernel_size
        self.blocks = nn.ModuleList(
            TemporalBlock(2 * c if i == 0 else c, c, k, 2 ** i, cfg.dropout) for i in range(cfg.decoder_layers))
        self.linear = nn.Linear(c, c)
        self.head = nn.Sequential(nn.Linear(c, c), nn.ReLU(), nn.Linear(c, c), nn.ReLU(),
                                  nn.Linear(c, 2 * N_JOINTS), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)
        for block in self.blocks:
            h = block(h)
        return self.head(self.linear(h.transpose(1, 2)))


class Generator(nn.Module):
    """mel (N, 90·s, bins) + noise (N, s, noise_dim) → keypoints (N, 30·s, 13, 2)."""

    def __init__(self, cfg: GeneratorConfig | None = None):
        super().__init__()
        self.cfg = cfg or GeneratorConfig()
        self.encoder = music_encoder(self.cfg)
        self.noise = NoiseUpsampler(self.cfg)
        self.decoder = PoseDecoder(self.cfg)
        if self.cfg.beat_input:
            self.beat_net = BeatNet(self.cfg.beat_channels, self.cfg.beat_layers)
            # Zero at first, so a generator trained without beats can be fine-tuned with them.
            self.beat_proj = nn.Linear(BEAT_FEATURES, 2 * self.cfg.decoder_channels)
            nn.init.zeros_(self.beat_proj.weight)
            nn.init.zeros_(self.beat_proj.bias)
        if self.cfg.bar_input:
            self.bar_net = BeatNet(self.cfg.bar_channels, self.cfg.bar_layers, outputs=len(bar_states()))
            self.bar_proj = nn.Linear(BAR_FEATURES, 2 * self.cfg.decoder_channels)  # zero at first, as above
            nn.init.zeros_(self.bar_proj.weight)
            nn.init.zeros_(self.bar_proj.bias)
            if self.cfg.bar_reader:
                self.bar_reader = BarReader(self.cfg.bar_reader)
            if self.cfg.spectrum_reader:
                self.spectrum_reader = BarReader(self.cfg.spectrum_reader, spectrum=True)

    def forward(self, mel: torch.Tensor, noise: torch.Tensor, beat_phase: torch.Tensor | None = None,
                bar_phase: torch.Tensor | None = None) -> torch.Tensor:
        """`beat_phase` (N, 30·s, 4): beat_net.beat_phase_features of the beats, for a generator
        with the beat input; `bar_phase` (N, 30·s, BAR_FEATURES): beat_net.bar_features, for one
        with the bar input (each required there, refused elsewhere)."""
        if self.cfg.beat_input != (beat_phase is not None):
            raise ValueError("this generator takes the beat phase" if self.cfg.beat_input
                             else "this generator has no beat input")
        if self.cfg.bar_input != (bar_phase is not None):
            raise ValueError("this generator takes the bar phase" if self.cfg.bar_input
                             else "this generator has no bar input")
        h = torch.cat([self.encoder(mel), self.noise(noise)], dim=2)
        if beat_phase is not None:
            h = h + self.beat_proj(beat_phase)
        if bar_phase is not None:
            h = h + self.bar_proj(bar_phase)
        y = self.decoder(h)
        return y.view(y.shape[0], y.shape[1], N_JOINTS, 2)

    def decoder_reach(self) -> int:
        """Frames (30 Hz) on each side that the decoder sees: two dilated convs and a 3-tap average
        per block (±258 frames, ±8.6 s, for the paper's six blocks)."""
        k = self.cfg.kernel_size
        return sum(2 * ((k - 1) // 2) * 2 ** i + 1 for i in range(self.cfg.decoder_layers))

    def receptive_field_frames(self) -> int:
        """Frames (30 Hz) on each side that can influence one output frame: the decoder's reach,
        the encoder's convs and pools, and the noise upsampler's reach."""
        encoder = self.encoder.reach_mel // MEL_PER_MOTION
        noise = 2 * MOTION_FPS  # a noise vector reaches about ±2 s through the upsampler
        return self.decoder_reach() + encoder + noise
