import av
import numpy as np
import pytest

from infra.media import MediaError, decode_audio, iter_frames, probe


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 4 s 320x240 25 fps H.264 + AAC file whose frame brightness and tone encode time."""
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    c = av.open(str(path), "w")
    v = c.add_stream("libx264", rate=25)
    v.width, v.height, v.pix_fmt = 320, 240, "yuv420p"
    a = c.add_stream("aac", rate=16000)
    a.layout = "mono"
    for i in range(100):
        frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), i * 2, np.uint8), format="rgb24")
        for p in v.encode(frame):
            c.mux(p)
    t = np.arange(16000 * 4) / 16000
    # Silent first 2 s, then a loud tone: lets the test check that spans land at the right time.
    x = np.where(t < 2.0, 0.0, 0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for k in range(0, len(x), 1024):
        fr = av.AudioFrame.from_ndarray(x[None, k:k + 1024], format="flt", layout="mono")
        fr.sample_rate, fr.pts = 16000, k
        for p in a.encode(fr):
            c.mux(p)
    for s in (v, a):
        for p in s.encode(None):
            c.mux(p)
    c.close()
    return str(path)


def test_probe_reports_streams(clip):
    info = probe(clip)
    assert info.ok and info.has_video and info.has_audio
    assert (info.width, info.height, info.fps, info.sample_rate) == (320, 240, 25.0, 16000)
    assert info.duration_s == pytest.approx(4.0, abs=0.1)


def test_probe_reports_corrupt_and_truncated_files(clip, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    bad = probe(str(junk))
    assert not bad.ok and bad.error
    truncated = tmp_path / "trunc.mp4"
    truncated.write_bytes(open(clip, "rb").read()[:2000])
    assert not probe(str(truncated)).ok


def test_decode_audio_span_is_exact_and_timed(clip):
    quiet = decode_audio(clip, 0.5, 1.5)
    loud = decode_audio(clip, 2.5, 3.5)
    assert quiet.shape == loud.shape == (16000,)
    assert quiet.dtype == np.float32
    assert np.sqrt(np.mean(quiet**2)) < 0.02 < 0.2 < np.sqrt(np.mean(loud**2))
    assert decode_audio(clip, 0.0, 4.0, sample_rate=8000).shape[0] == pytest.approx(32000, abs=1200)


def test_iter_frames_samples_at_fps_and_downscales(clip):
    frames = list(iter_frames(clip, 1.0, 3.0, fps=5, max_height=120))
    times = [t for t, _ in frames]
    assert len(frames) == 10
    assert times[0] == pytest.approx(1.0) and times[-1] == pytest.approx(2.8)
    assert frames[0][1].shape == (120, 160, 3)
    # brightness grows 2 per frame at 25 fps: the frame at t has level ~ 50 * t
    assert abs(int(frames[5][1].mean()) - 100) <= 6


def test_decode_errors_name_the_file(tmp_path):
    junk = tmp_path / "broken.mp4"
    junk.write_bytes(b"\x00" * 4096)
    with pytest.raises(MediaError, match="broken.mp4"):
        decode_audio(str(junk))
    with pytest.raises(MediaError, match="broken.mp4"):
        list(iter_frames(str(junk)))
