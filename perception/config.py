"""Perception section of the config: which backend serves each capability, and how its actors are sized.

Backend names are keys of the registries in ``perception.registry``; config picks one by name
(``--set perception.asr=whisper``). Weights for full backends come from local paths or URIs.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import doc_field


@dataclass
class ActorResources:
    num_cpus: float = doc_field(0.5, "CPUs reserved per actor. Fractional on 2-core machines, or Ray Data starves its read task.")
    num_gpus: float = doc_field(0.0, "GPUs per actor (0 on CPU machines).")
    concurrency: int = doc_field(1, "Number of actors in the pool.")
    batch_size: int = doc_field(1, "Clips per map_batches call.")


@dataclass
class PerceptionConfig:
    vad: str = doc_field("silero", "VAD backend: silero | pyannote.")
    diarization: str = doc_field("resemblyzer", "Diarization backend: resemblyzer | pyannote.")
    asr: str = doc_field("pocketsphinx", "ASR backend: pocketsphinx | whisper | faster_whisper.")
    faces: str = doc_field("opencv_dlib", "Face detect/track/embed backend: opencv_dlib | insightface.")
    active_speaker: str = doc_field("motion_corr", "AV sync / active speaker backend: motion_corr | syncnet.")
    sample_rate: int = doc_field(16000, "Audio sample rate every backend receives (mono float32).")
    fps_sample: float = doc_field(5.0, "Video frames sampled per second for face and active-speaker stages.")
    max_height: int = doc_field(360, "Frames are downscaled to at most this height before detection.")
    num_speakers: int | None = doc_field(None, "Known speaker count for diarization; None estimates it.")
    weights_dir: str | None = doc_field(None, "Root folder or URI of full-backend weights (whisper, pyannote, insightface, syncnet).")
    audio: ActorResources = doc_field(doc="Actor sizing for the audio stages (VAD, diarization, ASR).", factory=ActorResources)
    video: ActorResources = doc_field(doc="Actor sizing for the video stages (faces, active speaker).", factory=ActorResources)

    def validate(self) -> None:
        if self.sample_rate not in (8000, 16000):
            raise ValueError(f"perception.sample_rate: {self.sample_rate} unsupported (8000 or 16000)")
        if self.fps_sample <= 0:
            raise ValueError(f"perception.fps_sample: must be > 0, got {self.fps_sample}")
