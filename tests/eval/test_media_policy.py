"""Media policy: allowed local roots (no escape by .. or symlink) and s3:// buckets on a real loopback S3."""

from __future__ import annotations

import os

import pytest
from serve_fixtures import write_wav

from eval.serving.media_policy import MediaPolicy, MediaRefused


def test_local_roots_size_and_escape(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    ok = write_wav(root / "a.wav", 1.0)
    big = write_wav(root / "b.wav", 4.0)
    outside = write_wav(tmp_path / "x.wav", 1.0)
    os.symlink(outside, root / "link.wav")
    pol = MediaPolicy([str(root)], max_bytes=100_000, max_duration_s=3.0)
    info = pol.check(ok)
    assert info.duration_s == pytest.approx(1.0, abs=0.01) and info.size > 0
    for uri, status in [(outside, 403), (str(root / ".." / "x.wav"), 403), (str(root / "link.wav"), 403),
                        (big, 413), (str(root / "none.wav"), 404), ("file://" + outside, 403)]:
        with pytest.raises(MediaRefused) as exc:
            pol.check(uri)
        assert exc.value.status == status, uri
    (root / "notmedia.wav").write_text("hello")
    with pytest.raises(MediaRefused) as exc:
        pol.check(str(root / "notmedia.wav"))
    assert exc.value.status == 415


def test_s3_bucket_roots(s3_bucket, tmp_path):
    from infra import storage

    wav = write_wav(tmp_path / "a.wav", 1.0)
    storage.write_bytes(f"{s3_bucket}/media/a.wav", open(wav, "rb").read())
    storage.write_bytes(f"{s3_bucket}/private/a.wav", open(wav, "rb").read())
    pol = MediaPolicy([f"{s3_bucket}/media"], max_bytes=10_000_000, max_duration_s=10.0)
    assert pol.check(f"{s3_bucket}/media/a.wav").duration_s == pytest.approx(1.0, abs=0.01)
    for uri in [f"{s3_bucket}/private/a.wav", f"{s3_bucket}/media/../private/a.wav", f"{s3_bucket}/mediax/a.wav", "s3://other/media/a.wav"]:
        with pytest.raises(MediaRefused) as exc:
            pol.check(uri)
        assert exc.value.status == 403, uri
    small = MediaPolicy([s3_bucket], max_bytes=1000, max_duration_s=10.0)
    with pytest.raises(MediaRefused) as exc:
        small.check(f"{s3_bucket}/media/a.wav")
    assert exc.value.status == 413


def test_nul_byte_and_non_regular_files_are_refused_without_opening(tmp_path):
    import threading

    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "pipe.wav")
    (root / "dir.wav").mkdir()
    pol = MediaPolicy([str(root)], max_bytes=100_000, max_duration_s=3.0)
    got: dict = {}

    def check_all():
        for uri in [str(root / "a\x00.wav"), str(root / "pipe.wav"), str(root / "dir.wav")]:
            try:
                pol.check(uri)
            except MediaRefused as exc:
                got[uri] = (exc.status, exc.message)
            except Exception as exc:  # noqa: BLE001 - the old code raised ValueError here
                got[uri] = (type(exc).__name__, str(exc))

    t = threading.Thread(target=check_all, daemon=True)  # opening the FIFO would block forever
    t.start()
    t.join(timeout=10)
    assert not t.is_alive(), f"media check hung (FIFO opened?); results so far: {got}"
    statuses = {os.path.basename(k): v[0] for k, v in got.items()}
    assert statuses == {"a\x00.wav": 400, "pipe.wav": 415, "dir.wav": 415}, got
