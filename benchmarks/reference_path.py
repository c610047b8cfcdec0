"""The yardstick: the paper's generator structured and run the way its released code runs it.

Written for this benchmark from the paper's description (../shared/reference/README.md) so that the
paper's state_dict loads into it *with its own key names* (strict): legacy weight normalisation
recomputed on every forward, each temporal block registering its layers twice (by name and inside a
Sequential), reflect padding of (k−1)·d on both sides then trimmed. It is run as the released
inference script runs it: independent 60 s chunks, batch 1, eval mode, autograd left on, fresh noise
per chunk, the last partial second dropped and a last chunk under 5 s skipped.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn


class _ConvRes2d(nn.Module):
    def __init__(self, cin, cout, residual=True):
        super().__init__()
        self.conv2d_layer = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect"),
                                          nn.BatchNorm2d(cout), nn.ReLU())
        self.kind = "none" if not residual else ("id" if cin == cout else "conv")
        if self.kind == "conv":
            self.residual = nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.conv2d_layer(x)
        if self.kind == "none":
            return out
        return out + (x if self.kind == "id" else self.residual(x))


class _MusicEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(_ConvRes2d(1, 16, False), _ConvRes2d(16, 16), _ConvRes2d(16, 16),
                                   nn.MaxPool2d(5, (1, 2), 2))
        self.conv2 = nn.Sequential(_ConvRes2d(16, 32), _ConvRes2d(32, 32), nn.MaxPool2d(5, (3, 2), 2))
        self.conv3 = nn.Sequential(_ConvRes2d(32, 32), _ConvRes2d(32, 32), nn.MaxPool2d(3, (1, 2), 1))
        self.conv4 = nn.Sequential(nn.Conv1d(512, 64, 1), nn.BatchNorm1d(64))

    def forward(self, x):
        h = self.conv3(self.conv2(self.conv1(x.unsqueeze(1))))
        h = h.transpose(1, 2).flatten(start_dim=2).transpose(1, 2)
        return self.conv4(h).transpose(1, 2)


class _Trim(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.n = n

    def forward(self, x):
        return x[:, :, self.n // 2: -(self.n // 2)].contiguous()


class _Block(nn.Module):
    def __init__(self, cin, cout, k, d):
        super().__init__()
        pad = (k - 1) * d
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # legacy weight_norm, as the paper's code uses
            self.conv1 = nn.utils.weight_norm(nn.Conv1d(cin, cout, k, padding=pad, dilation=d, padding_mode="reflect"))
            self.conv2 = nn.utils.weight_norm(nn.Conv1d(cout, cout, k, padding=pad, dilation=d, padding_mode="reflect"))
        self.bn1, self.bn2 = nn.BatchNorm1d(cout), nn.BatchNorm1d(cout)
        self.net = nn.Sequential(self.conv1, _Trim(pad), self.bn1, nn.ReLU(), nn.Dropout(0),
                                 self.conv2, _Trim(pad), self.bn2, nn.ReLU(), nn.Dropout(0),
                                 nn.AvgPool1d(3, 1, 1))
        self.downsample = nn.Conv1d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        return torch.relu(self.net(x) + (x if self.downsample is None else self.downsample(x)))


class _TCN(nn.Module):
    def __init__(self):
        super().__init__()
        self.tcn = nn.Module()
        self.tcn.network = nn.Sequential(*[_Block(128 if i == 0 else 64, 64, 5, 2 ** i) for i in range(6)])
        self.linear = nn.Linear(64, 64)

    def forward(self, x):
        return self.linear(self.tcn.network(x.transpose(1, 2)).transpose(1, 2))


class ReferenceGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.music_encoder = _MusicEncoder()
        self.tcn = nn.Module()
        self.tcn.TCN = nn.Module()
        self.tcn.TCN.tcn = _TCN()
        self.tcn.fc = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                                    nn.Linear(64, 26), nn.Sigmoid())
        self.noise_convTranspose = nn.Sequential(
            nn.ConvTranspose1d(8, 16, 3, 1, 1), nn.ReLU(), nn.ConvTranspose1d(16, 16, 11, 5, 3), nn.ReLU(),
            nn.ConvTranspose1d(16, 32, 5, 3, 1), nn.ReLU(), nn.ConvTranspose1d(32, 64, 6, 2, 2), nn.ReLU())
        self.noise_BN = nn.BatchNorm1d(64)

    def forward(self, mel, noise):
        hx = self.music_encoder(mel)
        hn = self.noise_BN(self.noise_convTranspose(noise.transpose(1, 2))).transpose(1, 2)
        y = self.tcn.fc(self.tcn.TCN.tcn(torch.cat([hx, hn], dim=2)))
        return y.view(y.shape[0], y.shape[1], 13, 2)


def run_like_the_paper(model: ReferenceGenerator, mel: np.ndarray, seed: int = 0) -> np.ndarray:
    """Independent 60 s chunks, batch 1, autograd on; frames of a skipped tail stay zero."""
    torch.manual_seed(seed)
    fps_mel = 90
    out = np.zeros((mel.shape[0] // 3 + 1, 13, 2), np.float32)
    mel_t = torch.from_numpy(mel)[None]
    for split in range(min(60, mel.shape[0] // (60 * fps_mel) + 1)):
        a = split * 60 * fps_mel
        if (split + 1) * 60 * fps_mel <= mel.shape[0]:
            step = mel_t[:, a: a + 60 * fps_mel]
        else:
            end = mel.shape[0] - mel.shape[0] % fps_mel
            if end - a < 5 * fps_mel:
                continue
            step = mel_t[:, a:end]
        noise = torch.randn(1, step.shape[1] // fps_mel, 8)
        y = model(step, noise).detach().numpy()[0]
        out[split * 1800: split * 1800 + len(y)] = y
    return out
