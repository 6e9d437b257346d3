"""Model adapters behind the one interface: random, tool-only, local HF policy (OpenAI: see the endpoint tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from serve_fixtures import tiny_policy_path, write_wav

from eval.config import ModelSpec
from eval.models.base import AgentContext, ModelAdapter
from eval.models.evidence import from_cues
from eval.models.random_baseline import RandomAdapter
from eval.models.tool_only import ToolOnlyAgent
from eval.parsing import parse_intervals

REPO = Path(__file__).resolve().parents[2]


def ctx(task="AVSA", mode="guided", **kw):
    base = dict(task=task, mode=mode, question="Between 2.0 s and 4.0 s of the clip, which of the visible people is speaking?",
                options=["the person on the left of the frame", "the person on the right of the frame"], sample_id="s1",
                clip_uris=["c.wav"], clip_spans=[(10.0, 16.0)])
    base.update(kw)
    return AgentContext(**base)


def test_adapters_implement_the_interface():
    assert isinstance(RandomAdapter(), ModelAdapter) and isinstance(ToolOnlyAgent(), ModelAdapter)


def test_random_is_seeded_and_in_range():
    a, b = RandomAdapter(seed=1), RandomAdapter(seed=1)
    letters = [a.generate([], ctx(sample_id=f"s{i}")) for i in range(40)]
    assert letters == [b.generate([], ctx(sample_id=f"s{i}")) for i in range(40)]
    assert set(letters) == {"A", "B"}
    iv = parse_intervals(a.generate([], ctx(task="STG", options=[])))
    assert iv.ok and 0.0 <= iv.value[0][0] <= iv.value[0][1] <= 6.0  # inside the clip, clip-relative


def test_tool_only_zero_shot_has_nothing_to_go_on():
    assert ToolOnlyAgent().generate([], ctx(mode="zero_shot")) == "A"
    assert ToolOnlyAgent().generate([], ctx(task="STG", mode="zero_shot", options=[])) == "[]"


def test_tool_only_agentic_first_calls_tools():
    out = json.loads(ToolOnlyAgent().generate([], ctx(mode="agentic", tools_allowed=True)))
    assert [c["name"] for c in out["tool_calls"]] == ["diarize", "track_faces", "active_speaker"]


CUES = {  # curation's compact guided cues (eval/tasks/common.py cues), clip-relative seconds
    "turns": [{"start": 0.0, "end": 1.9, "speaker": "SPK_0"}, {"start": 2.1, "end": 3.9, "speaker": "SPK_1"},
              {"start": 4.2, "end": 5.8, "speaker": "SPK_0"}],
    "transcript": [{"start": 0.0, "end": 1.9, "speaker": "SPK_0", "text": "we should ship on friday"},
                   {"start": 2.1, "end": 3.9, "speaker": "SPK_1", "text": "friday is too early"}],
    "faces": [{"track_id": "t0", "from": 0.0, "to": 6.0, "position": "left"}, {"track_id": "t1", "from": 0.0, "to": 6.0, "position": "right"}],
    "active_speaker": [{"track_id": "t0", "mean_score": 0.4}, {"track_id": "t1", "mean_score": 0.6}],
}


def test_tool_only_guided_reads_curation_cues():
    agent = ToolOnlyAgent()
    ev = from_cues(CUES)
    assert ev.speaker_at(2.5, 3.5) == "SPK_1" and ev.track_x("t0") < ev.track_x("t1")
    srid = ctx(task="SRID", question="Listen to the segment from 0.0 s to 1.9 s. Which of the later segments is spoken by the same person?",
               options=["the segment from 2.1 s to 3.9 s", "the segment from 4.2 s to 5.8 s"], cues=CUES)
    assert agent.generate([], srid) == "B"
    stg = ctx(task="STG", options=[], cues=CUES, question='When does the person who says "friday is too early" speak? Answer ...')
    assert parse_intervals(agent.generate([], stg)).value == [(2.1, 3.9)]
    nsp = ctx(task="NSP", question="Watch the clip up to 4.0 s only. Who speaks next, after that moment?",
              options=["Speaker 2 (first heard at 2.0 s)", "Speaker 1 (first heard at 0.0 s)"], cues=CUES)
    assert agent.generate([], nsp) == "B"  # alternation: SPK_0 (first heard at 0 s) speaks after SPK_1
    avds = agent.generate([], ctx(task="AVDS", options=[], cues=CUES))
    assert avds == "Speaker 1: we should ship on friday Speaker 2: friday is too early"


def test_tool_only_nsp_turn_taking_reads_only_the_past():
    """Three speakers A, B, C take turns; at the cut C holds the floor. The one who waited longest (A)
    is next, whatever diarization says happens after the cut; an unheard option wins outright."""
    turns = [{"start": 0.0, "end": 2.0, "speaker": "A"}, {"start": 2.5, "end": 4.0, "speaker": "B"},
             {"start": 4.5, "end": 6.0, "speaker": "C"},
             {"start": 6.5, "end": 8.0, "speaker": "B"}]  # after the cut: must not be read
    q = "Watch the clip up to 6.0 s only. Who speaks next, after that moment?"
    opts = ["Speaker 3 (first heard at 4.5 s)", "Speaker 1 (first heard at 0.0 s)", "Speaker 2 (first heard at 2.5 s)"]
    agent = ToolOnlyAgent()
    assert agent.generate([], ctx(task="NSP", question=q, options=opts, cues={"turns": turns})) == "B"
    unheard = [*opts[:2], "someone who has not spoken yet"]
    assert agent.generate([], ctx(task="NSP", question=q, options=unheard, cues={"turns": turns})) == "C"


@pytest.mark.parametrize("who, want", [
    ("the person speaking at 3.0 s", [(2.1, 3.9)]),  # a moment: whoever diarization hears then
    ("the person on the right of the frame", [(2.1, 3.9)]),  # t1 (right) is most active while SPK_1 talks
    ("the person in the centre of the frame", []),  # nobody is in the centre: no intervals
])
def test_tool_only_stg_names_the_target_every_way_the_builder_does(who, want):
    c = ctx(task="STG", options=[], cues={**CUES, "active_speaker": [
        {"track_id": "t0", "times": [1.0, 3.0, 5.0], "scores": [0.9, 0.1, 0.9]},
        {"track_id": "t1", "times": [1.0, 3.0, 5.0], "scores": [0.1, 0.9, 0.1]}]},
        question=f"When does {who} speak? Answer with every [start, end] interval in seconds from the start of the clip.")
    assert parse_intervals(ToolOnlyAgent().generate([], c)).value == want


def test_tool_only_agentic_answers_from_tool_results():
    entries = [
        {"tool": "track_faces", "arguments": {"clip": 0}, "ok": True, "result": {"tracks": [
            {"track_id": "a", "boxes": [{"t": 1.0, "x1": 0.7, "y1": 0.1, "x2": 0.9, "y2": 0.4, "score": 1.0}]},
            {"track_id": "b", "boxes": [{"t": 1.0, "x1": 0.1, "y1": 0.1, "x2": 0.3, "y2": 0.4, "score": 1.0}]}]}},
        {"tool": "active_speaker", "arguments": {"clip": 0}, "ok": True, "result": {"tracks": [
            {"track_id": "a", "times": [2.5, 3.0, 5.0], "scores": [0.9, 0.8, 0.1]},
            {"track_id": "b", "times": [2.5, 3.0, 5.0], "scores": [0.1, 0.2, 0.9]}]}},
    ]
    out = json.loads(ToolOnlyAgent().generate([], ctx(mode="agentic", evidence=entries)))
    assert out["answer"] == "B"  # track a (right) is active 2-4 s


# Run in a fresh interpreter: loads the export through eval's hf adapter and reports what it did.
_LOAD_IN_EVAL = """
import hashlib, json, sys
import torch
torch.set_num_threads(1)
from eval.models.base import AgentContext
from eval.models.hf import HFPolicyAdapter
path, wav, messages = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
c = AgentContext(task="AVSA", mode="guided", question="q", sample_id="s1", clip_uris=[wav], clip_spans=[(0.0, 3.0)])
a = HFPolicyAdapter("policy", path, max_new_tokens=8, max_audio_s=4.0, num_frames=0)
answer = a.generate(messages, c)
a.temperature = 1.0
sd = a.policy.model.state_dict()
print(json.dumps({
    "answer": answer,
    "sampled": [a.generate(messages, c) for _ in range(2)],
    "weights": hashlib.sha1(b"".join(sd[k].numpy().tobytes() for k in sorted(sd))).hexdigest(),
    "raft_loaded": sorted(m for m in sys.modules if m == "raft" or m.startswith("raft.")),
}))
"""


def test_eval_loads_a_trained_export_without_raft(tmp_path):
    """Training's export (``OmniPolicy.save_pretrained``, as ``raft.trainer._export`` writes it) is
    answered through eval's hf adapter in a process that never imports raft, with the exported
    weights, and greedily gives the answer the training policy gives on the same encoding."""
    import hashlib
    import os
    import subprocess
    import sys

    import torch

    from infra.media import decode_audio
    from raft.config import TrainConfig
    from raft.model import OmniPolicy, build_tiny

    torch.set_num_threads(1)
    cfg = TrainConfig(model_cache_dir=os.path.join(os.path.dirname(__file__), "..", "..", ".cache", "raft_tiny"))
    policy = OmniPolicy.from_pretrained(build_tiny(cfg), max_audio_s=4.0)
    # one optimizer step, so the export differs from the base model it was built from
    enc = policy.processor.encode("hello", system="sys")
    scored = policy.score(enc, [policy.reference_ids("answer: A")])
    (-scored.token_logprobs.sum()).backward()
    torch.optim.SGD(policy.model.parameters(), lr=0.1).step()
    export = tmp_path / "export"
    policy.save_pretrained(export)
    sd = policy.model.state_dict()
    weights = hashlib.sha1(b"".join(sd[k].detach().numpy().tobytes() for k in sorted(sd))).hexdigest()

    wav = write_wav(tmp_path / "c.wav", 3.0)
    messages = [{"role": "system", "content": "You are an assistant that reasons about who speaks when."},
                {"role": "user", "content": "Which visible person spoke?\nA. left\nB. right"}]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _LOAD_IN_EVAL, str(export), wav, json.dumps(messages)],
                          capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["raft_loaded"] == []
    assert out["weights"] == weights
    audio = decode_audio(wav, 0.0, 3.0)
    ids = policy.generate(policy.processor.encode_chat(messages, audio), 1, 8, greedy=True)[0]
    assert out["answer"] == policy.decode(ids)
    assert out["sampled"][0] == out["sampled"][1]  # sampling is seeded per (sample, mode)


# --- remote calls retry with backoff (a real HTTP server on 127.0.0.1) ---------------------------

def _openai(srv, **kw):
    from eval.models.openai_compat import OpenAIAdapter

    return OpenAIAdapter("ext", srv.url, "remote-x", api_key="k", timeout_s=10, **kw)


def test_openai_retries_5xx_with_backoff_then_answers():
    from fake_openai import fake_openai

    with fake_openai(answer="B") as srv:
        srv.script = [503, 503]
        assert _openai(srv, max_attempts=3).generate([{"role": "user", "content": "q"}]) == "B"
        assert len(srv.requests) == 3 and srv.requests[-1]["model"] == "remote-x"
        gaps = [b - a for a, b in zip(srv.times, srv.times[1:], strict=False)]
        # exponential backoff, up to 25% jitter off: 0.375-0.5 s, then 0.75-1 s (more on a busy machine)
        assert gaps[0] > 0.3 and gaps[1] > 0.7, gaps


def test_openai_honours_retry_after_on_429():
    from fake_openai import fake_openai

    with fake_openai() as srv:
        srv.script = [(429, {"Retry-After": "1.2"})]
        assert _openai(srv, max_attempts=2).generate([{"role": "user", "content": "q"}]) == "A"
        assert len(srv.requests) == 2 and srv.times[1] - srv.times[0] >= 1.15  # not the 0.5 s backoff


def test_openai_gives_up_after_max_attempts_and_never_retries_400():
    import openai
    from fake_openai import fake_openai

    with fake_openai() as srv:
        srv.script = [503, 503, 503]
        with pytest.raises(openai.InternalServerError):
            _openai(srv, max_attempts=2).generate([{"role": "user", "content": "q"}])
        assert len(srv.requests) == 2
    with fake_openai() as srv:
        srv.script = [400]
        with pytest.raises(openai.BadRequestError):
            _openai(srv, max_attempts=4).generate([{"role": "user", "content": "q"}])
        assert len(srv.requests) == 1


# --- model identity: what cached predictions are keyed by ----------------------------------------

def _checkpoint(root):
    root.mkdir()
    (root / "config.json").write_text('{"model_type": "tiny"}')
    (root / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    return root


def test_retrained_checkpoint_gets_new_predictions(tmp_path, monkeypatch):
    from eval import harness
    from eval.config import ModelSpec
    from eval.models.registry import model_identity
    from eval.runner import prediction_row
    from eval.tasks.kinds import ScoringParams

    monkeypatch.setenv("AMUSE_CACHE_DIR", str(tmp_path / "digests"))
    ckpt = _checkpoint(tmp_path / "policy")
    spec = ModelSpec("policy", "hf", path=str(ckpt))
    key = model_identity(spec)
    assert model_identity(spec) == key
    # A prediction of this checkpoint is cached under its identity, not under the name "policy".
    sample = {"sample_id": "s1", "task": "AVSA", "clip_ids": ["c1"], "question": "q", "options": ["x", "y"],
              "answer": "A", "answer_index": 0}
    row = prediction_row("policy", sample, "zero_shot", "A", {}, [], None, 0.1, ScoringParams([0.5], 1.0, 10, 0),
                         model_key=key)
    cache = str(tmp_path / "cache")
    harness.write_shard(cache, [row])
    clips = {"c1": {"clip_id": "c1", "media_uri": "m.wav", "start_s": 3.0, "end_s": 4.0}}
    done = set(harness.read_cache(cache))
    assert harness.work_items([sample], clips, {"policy": key}, ["zero_shot"], done) == []
    # Retrained: same folder, same name, one weight byte different -> a new identity, predicted again.
    data = bytearray((ckpt / "model.safetensors").read_bytes())
    data[100] ^= 1
    (ckpt / "model.safetensors").write_bytes(bytes(data))
    new_key = model_identity(spec)
    assert new_key != key
    assert len(harness.work_items([sample], clips, {"policy": new_key}, ["zero_shot"], done)) == 1
    # The same bytes written again (new mtime) keep the identity; generation settings are part of it.
    (ckpt / "model.safetensors").write_bytes(bytes(data))
    assert model_identity(spec) == new_key
    assert model_identity(ModelSpec("policy", "hf", path=str(ckpt), temperature=0.7)) != new_key


def test_checkpoint_digests_are_remembered_per_file(tmp_path, monkeypatch):
    from infra.file_digest import cache_path, folder_digest

    monkeypatch.setenv("AMUSE_CACHE_DIR", str(tmp_path / "digests"))
    ckpt = _checkpoint(tmp_path / "policy")
    first = folder_digest(ckpt)
    table = json.loads(cache_path().read_text())
    assert sorted(k.split("|")[0] for k in table) == sorted(str(p.resolve()) for p in ckpt.iterdir())
    # A remembered digest is used as is (path, mtime and size unchanged): plant a marker to see it read.
    weights = str((ckpt / "model.safetensors").resolve())
    cache_path().write_text(json.dumps({k: ("f" * 64 if k.startswith(weights + "|") else v) for k, v in table.items()}))
    assert folder_digest(ckpt) != first
    # A rewritten file is hashed again and replaces its old entry.
    (ckpt / "model.safetensors").write_bytes((ckpt / "model.safetensors").read_bytes())
    assert folder_digest(ckpt) == first
    assert len(json.loads(cache_path().read_text())) == 2


def test_identity_of_endpoints_and_baselines():
    from eval.config import ModelSpec
    from eval.models.registry import IDENTITIES, model_identity

    ext = ModelSpec("ext", "openai", base_url="http://127.0.0.1:9/v1", remote_model="m1")
    assert model_identity(ext) == model_identity(ModelSpec("renamed", "openai", base_url="http://127.0.0.1:9/v1/", remote_model="m1"))
    assert model_identity(ext) != model_identity(ModelSpec("ext", "openai", base_url="http://127.0.0.1:9/v1", remote_model="m2"))
    assert model_identity(ext) != model_identity(ModelSpec("ext", "openai", base_url="http://10.0.0.1:9/v1", remote_model="m1"))
    assert model_identity(ModelSpec("r", "random", seed=0)) != model_identity(ModelSpec("r", "random", seed=1))
    assert len({model_identity(ModelSpec("b", kind)) for kind in ("random", "tool_only")}) == 2
    assert set(IDENTITIES) == {"tool_only", "random", "hf", "openai"}


def test_agentic_predictions_are_keyed_by_the_tools_config_too():
    from eval import harness
    from pipelines.config import load_app_config
    from pipelines.evaluate import tools_identity

    def ids(*overrides):
        cfg = load_app_config(None, list(overrides))
        key = tools_identity(cfg)
        return {m: set(harness.wanted_ids([{"sample_id": "s1"}], {"tool_only": "k"}, [m], key)) for m in ("guided", "agentic")}

    base = ids()
    assert ids("perception.torch_threads=4") == base  # output-neutral keys do not count
    other = ids("perception.active_speaker=syncnet")
    assert other["guided"] == base["guided"] and other["agentic"] != base["agentic"]


# --- external models are shown the clip (content parts, per the spec's accepts) ----------------------

@pytest.mark.parametrize("accepts,kinds", [(["text"], []), (["text", "audio"], ["input_audio"]),
                                           (["text", "audio", "image"], ["input_audio"] + ["image_url"] * 4)])
def test_openai_adapter_sends_the_clip_as_content_parts(tmp_path, accepts, kinds):
    import base64
    import io

    import numpy as np
    import soundfile as sf
    from fake_openai import fake_openai
    from PIL import Image

    from eval.models.base import AgentContext
    from eval.models.registry import build_adapter
    from tests.pipelines.corpus_fixtures import make_video

    clip = make_video(tmp_path / "c.mp4", 3.0, size=(64, 48), fps=10)
    ctx = AgentContext("AVSA", "zero_shot", "Who?", ["a", "b"], sample_id="s", clip_uris=[str(clip)],
                       clip_spans=[(0.5, 2.5)])
    spec = ModelSpec("ext", "openai", base_url="", remote_model="remote-x", accepts=accepts)
    with fake_openai(answer="B") as srv:
        spec.base_url = srv.url
        adapter = build_adapter(spec, {"hf_media": {"max_audio_s": 1.5, "num_frames": 4, "frame_size": 56}})
        msgs = [{"role": "system", "content": "sys"}, {"role": "user", "content": "Who speaks?"}]
        assert adapter.generate(msgs, ctx) == "B"
    sent = srv.requests[-1]["messages"]
    assert sent[0] == msgs[0]
    content = sent[1]["content"]
    if not kinds:
        assert content == "Who speaks?"
        return
    assert [p["type"] for p in content] == [*kinds, "text"] and content[-1]["text"] == "Who speaks?"
    audio, sr = sf.read(io.BytesIO(base64.b64decode(content[0]["input_audio"]["data"])))
    assert sr == 16000 and len(audio) == pytest.approx(1.5 * 16000, abs=160)  # max_audio_s of the 2 s span
    assert np.abs(audio).max() > 0.01  # the clip's tone, not silence
    for p in content[1:-1]:
        head, data = p["image_url"]["url"].split(",", 1)
        assert head == "data:image/jpeg;base64"
        assert Image.open(io.BytesIO(base64.b64decode(data))).size == (56, 56)


def test_model_spec_accepts_is_checked():
    from infra.config import ConfigError
    from pipelines.config import load_app_config

    with pytest.raises(ConfigError, match=r"accepts"):
        load_app_config(None, ["eval.models=[{name: x, kind: openai, base_url: 'http://h/v1', accepts: [text, smell]}]"])


def test_hf_adapter_batches_requests_into_one_padded_forward():
    """Requests with different prompts, media and settings (greedy / seeded sampling, max_tokens, a stop
    string) get in one batch what each gets alone: one padded forward per kind of media (text; audio
    of two lengths), each reply streamed piece by piece as generated. Threads calling at once get the
    same too (forward passes take turns: the thinker keeps position state on the model). A cancelled
    row stops early without changing its batch-mate's reply."""
    import concurrent.futures as cf
    import threading

    import numpy as np
    import torch

    from eval.models.base import GenParams
    from eval.models.hf import HFPolicyAdapter

    torch.set_num_threads(1)
    a = HFPolicyAdapter("p", tiny_policy_path(), max_new_tokens=8)
    tone = lambda s: (0.1 * np.sin(2 * np.pi * 220 * np.arange(int(s * 16000)) / 16000)).astype(np.float32)  # noqa: E731
    asks = [("Who speaks? A. x B. y", GenParams(), None),
            ("Summarize the dialogue with speaker attribution.", GenParams(max_tokens=5), None),
            ("hello", GenParams(temperature=1.0, seed=3), None),
            ("Which later segment is spoken by the same person?", GenParams(temperature=0.7, top_p=0.9, seed=4), None),
            ("Who speaks next?", GenParams(), {"audio": tone(1.0)}),
            ("When does speaker 2 speak?", GenParams(max_tokens=6), {"audio": tone(2.0)})]

    def rows():
        return [a.row([{"role": "user", "content": q}], None, p, m) for q, p, m in asks]

    alone = [a.complete_batch([r])[0] for r in rows()]
    stop = alone[0].text[2:4]  # a stop string taken from a greedy reply
    asks[0] = (asks[0][0], GenParams(stop=[stop]), None)
    alone[0] = a.complete_batch([rows()[0]])[0]
    assert alone[0].finish_reason == "stop" and stop not in alone[0].text and len(alone[0].text) <= 2
    assert [c.finish_reason for c in alone[1:]] == ["length"] * 5  # the tiny random model never says <|im_end|> here
    assert [c.completion_tokens for c in alone[1:]] == [5, 8, 8, 8, 6]

    before, pieces = a.policy.forwards, {}
    together = a.complete_batch(rows(), lambda i, piece: pieces.setdefault(i, []).append(piece))
    assert a.policy.forwards - before == 2  # text rows in one forward, audio rows in another
    assert together == alone
    assert ["".join(pieces.get(i, [])) for i in range(len(asks))] == [c.text for c in alone]
    assert max(len(p) for p in pieces.values()) >= 4  # sent token by token, not as one piece

    with cf.ThreadPoolExecutor(len(asks)) as pool:
        assert list(pool.map(lambda r: a.complete_batch([r])[0], rows())) == alone

    # a row whose reader went away (its cancel event set) stops decoding; its batch-mate goes on
    gone = a.row([{"role": "user", "content": "hello"}], None, GenParams(max_tokens=40), None)
    gone.cancel = threading.Event()
    kept = rows()[1]
    cut, same = a.complete_batch([gone, kept], lambda i, piece: i == 0 and gone.cancel.set())
    assert cut.finish_reason == "cancelled" and cut.completion_tokens <= 3 and same == alone[1]
