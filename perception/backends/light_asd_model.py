"""Light-ASD's network (Liao et al., CVPR 2023), written here so that its published state dict loads.

The checkpoint (``pretrain_AVA_CVPR.model``, ``finetuning_TalkSet.model``) is the state dict of a
wrapper holding ``model`` (visual encoder, audio encoder, bidirectional GRU) and the two 2-way
heads ``lossAV`` (audio-visual, used at inference) and ``lossV`` (visual only, a training aid).
Module and parameter names below are fixed by those keys.

Shapes: video (B, T, 112, 112) gray 0..255 at 25 fps; audio (B, 4T, 13) MFCCs at 100 Hz. Each
encoder gives (B, T, 128); their sum goes through the GRU pair; the head gives 2 logits per frame
(index 1: speaking).
"""

from __future__ import annotations

import torch
from torch import nn

# Gray-level statistics of the training crops (the visual front end normalizes with them).
GRAY_MEAN, GRAY_STD = 0.4161, 0.1688
EMBED = 128


def _bn(cls: type[nn.Module], ch: int) -> nn.Module:
    return cls(ch, momentum=0.01, eps=0.001)  # eps matters at inference: the running stats were fit with it


class _TwoBranchBlock(nn.Module):
    """Two factorized branches (kernel 3 and kernel 5: one axis, then the other), summed, then a 1x1 mix.

    ``first``/``second`` name the two convolutions of a branch as in the checkpoint: spatial then
    temporal (``s``/``t``) for video, MFCC axis then time (``m``/``t``) for audio.
    """

    first: str

    def _branch(self, k: int, x: torch.Tensor) -> torch.Tensor:
        relu = torch.relu
        x = relu(getattr(self, f"bn_{self.first}_{k}")(getattr(self, f"{self.first}_{k}")(x)))
        return relu(getattr(self, f"bn_t_{k}")(getattr(self, f"t_{k}")(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn_last(self.last(self._branch(3, x) + self._branch(5, x))))


class VisualBlock(_TwoBranchBlock):
    """(B, C, T, H, W): a (1, k, k) spatial conv (stride 2 when ``down``), then a (k, 1, 1) temporal one."""

    first = "s"

    def __init__(self, cin: int, cout: int, down: bool = False):
        super().__init__()
        stride = (1, 2, 2) if down else (1, 1, 1)
        for k in (3, 5):
            p = k // 2
            setattr(self, f"s_{k}", nn.Conv3d(cin, cout, (1, k, k), stride=stride, padding=(0, p, p), bias=False))
            setattr(self, f"bn_s_{k}", _bn(nn.BatchNorm3d, cout))
            setattr(self, f"t_{k}", nn.Conv3d(cout, cout, (k, 1, 1), padding=(p, 0, 0), bias=False))
            setattr(self, f"bn_t_{k}", _bn(nn.BatchNorm3d, cout))
        self.last = nn.Conv3d(cout, cout, 1, bias=False)
        self.bn_last = _bn(nn.BatchNorm3d, cout)


class AudioBlock(_TwoBranchBlock):
    """(B, C, 13, T): a (k, 1) conv across MFCC coefficients, then a (1, k) conv over time."""

    first = "m"

    def __init__(self, cin: int, cout: int):
        super().__init__()
        for k in (3, 5):
            p = k // 2
            setattr(self, f"m_{k}", nn.Conv2d(cin, cout, (k, 1), padding=(p, 0), bias=False))
            setattr(self, f"bn_m_{k}", _bn(nn.BatchNorm2d, cout))
            setattr(self, f"t_{k}", nn.Conv2d(cout, cout, (1, k), padding=(0, p), bias=False))
            setattr(self, f"bn_t_{k}", _bn(nn.BatchNorm2d, cout))
        self.last = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_last = _bn(nn.BatchNorm2d, cout)


class VisualEncoder(nn.Module):
    """112x112 -> 56 (block1, strided) -> 28 (pool) -> 28 -> 14 (pool) -> 14, then a global spatial max."""

    def __init__(self):
        super().__init__()
        self.block1 = VisualBlock(1, 32, down=True)
        self.block2 = VisualBlock(32, 64)
        self.block3 = VisualBlock(64, EMBED)
        self.pool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, T, H, W) -> (B, T, 128)
        x = self.block3(self.pool(self.block2(self.pool(self.block1(x)))))
        return x.amax(dim=(3, 4)).transpose(1, 2)


class AudioEncoder(nn.Module):
    """MFCC frames at 100 Hz pooled twice over time (stride 2) to the 25 fps video rate, then averaged over coefficients."""

    def __init__(self):
        super().__init__()
        self.block1 = AudioBlock(1, 32)
        self.block2 = AudioBlock(32, 64)
        self.block3 = AudioBlock(64, EMBED)
        self.pool = nn.MaxPool2d((1, 3), stride=(1, 2), padding=(0, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 13, 4T) -> (B, T, 128)
        x = self.block3(self.pool(self.block2(self.pool(self.block1(x)))))
        return x.mean(dim=2).transpose(1, 2)


class ForwardBackwardGRU(nn.Module):
    """One GRU forward in time, then a second one over the time-reversed output (not a concatenating BiGRU)."""

    def __init__(self, ch: int = EMBED):
        super().__init__()
        self.gru_forward = nn.GRU(ch, ch, batch_first=True)
        self.gru_backward = nn.GRU(ch, ch, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.gelu(self.gru_forward(x)[0])
        x = self.gru_backward(x.flip(1))[0].flip(1)
        return nn.functional.gelu(x)


class LightASDNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.visualEncoder = VisualEncoder()
        self.audioEncoder = AudioEncoder()
        self.GRU = ForwardBackwardGRU()


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.FC = nn.Linear(EMBED, 2)


class LightASD(nn.Module):
    """The checkpoint's top level: ``model`` plus the audio-visual head ``lossAV`` and visual-only head ``lossV``."""

    def __init__(self):
        super().__init__()
        self.model = LightASDNet()
        self.lossAV = Head()
        self.lossV = Head()

    def embed(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """Fused per-frame embeddings (B, T, 128) from MFCCs (B, 4T, 13) and gray face crops (B, T, 112, 112) in 0..255."""
        v = self.model.visualEncoder(((video / 255.0 - GRAY_MEAN) / GRAY_STD).unsqueeze(1))
        return self.model.audioEncoder(audio.unsqueeze(1).transpose(2, 3)) + v

    def score(self, fused: torch.Tensor) -> torch.Tensor:
        """Per-frame speaking log-odds (B, T): the GRU pair over time, then the audio-visual head."""
        logits = self.lossAV.FC(self.model.GRU(fused))
        return logits[..., 1] - logits[..., 0]  # log-odds of the 2-way softmax's "speaking" probability

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        return self.score(self.embed(audio, video))
