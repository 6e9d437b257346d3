"""A real Serve app on 127.0.0.1 for endpoint tests: private Ray, fake-backend tools, tiny media."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

API_KEY = "test-key-123"


def write_wav(path: Path, seconds: float, sr: int = 16000) -> str:
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(path), (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr, subtype="PCM_16")
    return str(path)


def media_dir(root: Path) -> dict[str, str]:
    allowed = root / "allowed"
    allowed.mkdir()
    (root / "outside").mkdir()
    return {
        "root": str(allowed),
        "ok": write_wav(allowed / "clip.wav", 2.0),
        "slow": write_wav(allowed / "slow_clip.wav", 2.0),
        "broken": write_wav(allowed / "broken_clip.wav", 2.0),
        "big": write_wav(allowed / "big.wav", 6.0),  # 192 kB > the 150 kB limit
        "long": write_wav(allowed / "long.wav", 4.5, sr=8000),  # 72 kB but 4.5 s > 4 s
        "outside": write_wav(root / "outside" / "clip.wav", 1.0),
    }


def tiny_policy_path() -> str:
    """The tiny random thinker (built once, cached under .cache/raft_tiny) as an hf checkpoint folder."""
    from raft.config import TrainConfig
    from raft.model import build_tiny

    return str(build_tiny(TrainConfig(model_cache_dir=str(Path(__file__).resolve().parents[2] / ".cache" / "raft_tiny"))))


class HungStorage:
    """An S3 endpoint on 127.0.0.1 that, while hung, holds every request unanswered (as an object store or
    network share that stopped answering does), and otherwise answers 404 at once. Real s3fs clients in
    the Serve replica block on it, so media checks of ``s3://<bucket>/...`` really get stuck."""

    def __init__(self, bucket: str = "hung-bucket"):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.bucket = bucket
        self.answering = threading.Event()
        self.answering.set()
        self.held = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self):
                with lock:
                    outer.held += 1
                try:
                    outer.answering.wait(120)
                finally:
                    with lock:
                        outer.held -= 1
                body = b"" if self.command == "HEAD" else b"<Error><Code>NoSuchKey</Code></Error>"
                self.send_response(404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _reply

            def log_message(self, *args):  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def settings(self) -> list[str]:
        """Overrides that point a Serve app's storage at this endpoint and allow its bucket as a media root."""
        return [f"storage.endpoint_url={self.url}", "storage.key=test", "storage.secret=test"]

    def hang(self) -> None:
        self.answering.clear()

    def answer(self) -> None:
        self.answering.set()

    def close(self) -> None:
        self.answer()
        self.httpd.shutdown()


def serve_config(media: dict[str, str], port: int, models: str | None = None, extra_roots: tuple[str, ...] = (),
                 sets: tuple[str, ...] = (), **serve_overrides):
    from pipelines.config import load_app_config

    overrides = [
        "serve.host=127.0.0.1",
        f"serve.port={port}",
        f"serve.api_key={API_KEY}",
        "serve.tools_module=fake_tools",
        f"serve.allowed_media_roots=[{','.join([media['root'], *extra_roots])}]",
        "serve.max_media_bytes=150000",
        "serve.max_media_duration_s=4.0",
        "serve.max_body_bytes=1048576",
        "serve.tool_timeout_s=0.5",
        "serve.request_timeout_s=20",
        f"eval.models={models or '[{name: tool_only, kind: tool_only}, {name: random, kind: random}]'}",
        *[f"serve.{k}={v}" for k, v in serve_overrides.items()],
        *sets,
    ]
    return load_app_config(None, overrides)


def start_ray():
    import ray

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", ""), "RAY_USAGE_STATS_ENABLED": "0"}})
