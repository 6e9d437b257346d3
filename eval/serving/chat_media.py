"""Content parts of an OpenAI chat request -> the policy's media inputs.

``input_audio`` (base64 wav) becomes 16 kHz mono float32 audio; ``image_url`` (a ``data:image/...``
URL, or a URI under ``serve.allowed_media_roots``) becomes an RGB frame; the extension part
``amuse_clip`` names a media file under the allowed roots (checked like ``/v1/amuse/answer``'s
clips) whose audio and frames the model decodes itself. Text parts are joined into the message's
text. Every refusal is a :class:`MediaRefused` with the status the ingress returns.
"""

from __future__ import annotations

import base64
import binascii
import io
from math import gcd

import numpy as np

from eval.serving.media_policy import MediaPolicy, MediaRefused
from eval.serving.schemas import AudioPart, ChatMessage, ClipPart, ImagePart

SAMPLE_RATE = 16000


def _b64(data: str, where: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise MediaRefused(400, f"{where}: not valid base64") from None


def decode_wav(data: bytes, where: str, max_duration_s: float) -> np.ndarray:
    """Mono float32 at 16 kHz from wav bytes (resampled polyphase when the file's rate differs)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    try:
        audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception:
        raise MediaRefused(415, f"{where}: not a readable wav file") from None
    if len(audio) / sr > max_duration_s:
        raise MediaRefused(413, f"{where}: audio lasts {len(audio) / sr:.1f} s, over the limit of {max_duration_s:g} s")
    mono = audio.mean(axis=1)
    if sr != SAMPLE_RATE:
        g = gcd(int(sr), SAMPLE_RATE)
        mono = resample_poly(mono, SAMPLE_RATE // g, int(sr) // g).astype(np.float32)
    return mono


def decode_image(url: str, where: str, policy: MediaPolicy) -> np.ndarray:
    """An RGB uint8 array from a data URL or an allowed URI."""
    from PIL import Image, UnidentifiedImageError

    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if not header.startswith("data:image/") or ";base64" not in header:
            raise MediaRefused(400, f"{where}: only base64 data:image/... URLs are read")
        raw = _b64(payload, where)
    elif url.startswith(("http://", "https://")):
        raise MediaRefused(403, f"{where}: the server does not fetch http(s) URLs; send a data URL")
    else:
        raw = policy.read_bytes(url)
    if len(raw) > policy.max_bytes:
        raise MediaRefused(413, f"{where}: {len(raw)} bytes, over the limit of {policy.max_bytes}")
    try:
        return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
    except (UnidentifiedImageError, OSError):
        raise MediaRefused(415, f"{where}: not a readable image") from None


def gather(messages: list[ChatMessage], policy: MediaPolicy) -> tuple[list[dict], dict]:
    """(text messages for the model, media). ``media``: ``audio`` (the first audio part), ``frames``
    ([(index, image)] in order of appearance) and ``clip`` ((uri, start_s, end_s) of the first clip part)."""
    texts: list[dict] = []
    media: dict = {"audio": None, "frames": [], "clip": None}
    for i, m in enumerate(messages):
        texts.append({"role": m.role, "content": m.text()})
        if isinstance(m.content, str):
            continue
        for j, part in enumerate(m.content):
            where = f"messages[{i}].content[{j}]"
            if isinstance(part, AudioPart) and media["audio"] is None:
                media["audio"] = decode_wav(_b64(part.input_audio.data, where), where, policy.max_duration_s)
            elif isinstance(part, ImagePart):
                media["frames"].append((float(len(media["frames"])), decode_image(part.image_url.url, where, policy)))
            elif isinstance(part, ClipPart) and media["clip"] is None:
                clip = part.amuse_clip
                if clip.end_s is not None and clip.end_s <= clip.start_s:
                    raise MediaRefused(400, f"{where}: end_s {clip.end_s} is not after start_s {clip.start_s}")
                info = policy.check(clip.uri)
                end = clip.end_s if clip.end_s is not None else info.duration_s
                media["clip"] = (info.uri, clip.start_s, end)
    return texts, media
