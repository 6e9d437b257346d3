"""Random-weight files in the full backends' real formats, built here so tests need no download.

Each builder writes what the production loader reads: a whisper checkpoint (dims +
model_state_dict), SCRFD- and ArcFace-shaped ONNX graphs (that ``insightface.model_zoo`` routes
by their outputs and input shape), a SyncNet state dict, and pyannote Lightning checkpoints plus
the VBx PLDA npz pair, and a Light-ASD state dict.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np


def whisper_checkpoint(path: Path, seed: int = 0) -> Path:
    import torch
    from whisper.model import ModelDimensions, Whisper
    from whisper.tokenizer import get_tokenizer

    torch.manual_seed(seed)
    # n_audio_ctx 1500 and n_mels 80 are fixed by whisper's 30 s log-mel front end.
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=1,
                           n_vocab=51865, n_text_ctx=448, n_text_state=64, n_text_head=2, n_text_layer=1)
    model = Whisper(dims)
    # Logits are tied to the token embeddings: a zero row gives end-of-text, no-speech and timestamps a logit of 0,
    # below the best of 51k random ones, so the random decoder always emits words (sample_len caps them).
    tok = get_tokenizer(multilingual=True)
    with torch.no_grad():
        model.decoder.positional_embedding.normal_(0, 0.02)  # whisper leaves it torch.empty (garbage) until loaded
        model.decoder.token_embedding.weight[[tok.eot, tok.no_speech]] = 0.0
        model.decoder.token_embedding.weight[tok.timestamp_begin :] = 0.0  # likewise timestamps: text first
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": model.state_dict()}, path)
    return path


def _onnx_save(nodes, inits, inputs, outputs, path: Path) -> Path:
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def scrfd_onnx(path: Path, seed: int = 0) -> Path:
    """SCRFD-shaped detector: 3 strides x (score (N,1), bbox (N,4), kps (N,10)), 2 anchors, dynamic H, W.

    Scores are made to pass the 0.5 threshold on the stride-32 level only, so a frame yields a
    handful of boxes after NMS; box distances are positive (ReLU + bias) like a trained head's.
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits, outs = [], [], {"score": [], "bbox": [], "kps": []}

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name))
        return name

    for s in (8, 16, 32):
        nodes.append(helper.make_node("AveragePool", ["input.1"], [f"p{s}"], kernel_shape=[s, s], strides=[s, s]))
        nodes.append(helper.make_node("Conv", [f"p{s}", init(f"w{s}", rng.normal(0, 0.02, (8, 3, 1, 1))),
                                               init(f"b{s}", rng.normal(0, 0.1, 8))], [f"c{s}"]))
        nodes.append(helper.make_node("Relu", [f"c{s}"], [f"f{s}"]))
        for head, ch, bias in (("score", 2, 1.5 if s == 32 else -6.0), ("bbox", 8, 1.5), ("kps", 20, 0.0)):
            w = init(f"{head}w{s}", rng.normal(0, 0.05, (ch, 8, 1, 1)))
            b = init(f"{head}b{s}", np.full(ch, bias) + rng.normal(0, 0.05, ch))
            nodes.append(helper.make_node("Conv", [f"f{s}", w, b], [f"{head}c{s}"]))
            act = {"score": "Sigmoid", "bbox": "Relu", "kps": "Identity"}[head]
            nodes.append(helper.make_node(act, [f"{head}c{s}"], [f"{head}a{s}"]))
            nodes.append(helper.make_node("Transpose", [f"{head}a{s}"], [f"{head}t{s}"], perm=[0, 2, 3, 1]))
            shape = f"{head}shape{s}"
            inits.append(numpy_helper.from_array(np.array([-1, ch // 2], dtype=np.int64), shape))
            nodes.append(helper.make_node("Reshape", [f"{head}t{s}", shape], [f"{head}_{s}"]))
            outs[head].append(helper.make_tensor_value_info(f"{head}_{s}", TensorProto.FLOAT, ["n", ch // 2]))
    inp = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "h", "w"])
    return _onnx_save(nodes, inits, [inp], outs["score"] + outs["bbox"] + outs["kps"], path)


def arcface_onnx(path: Path, seed: int = 0, dim: int = 512) -> Path:
    """ArcFace-shaped recognizer: (N, 3, 112, 112) -> (N, dim)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.05, (4, 3, 4, 4)).astype(np.float32), "conv_w"),
        numpy_helper.from_array(rng.normal(0, 0.02, (4 * 28 * 28, dim)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(rng.normal(0, 0.1, dim).astype(np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["data", "conv_w"], ["conv"], strides=[4, 4]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("Flatten", ["relu"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["fc1"]),
    ]
    inp = helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 112, 112])
    out = helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["N", dim])
    return _onnx_save(nodes, inits, [inp], [out], path)


def syncnet_state_dict(path: Path, seed: int = 0) -> Path:
    import torch
    from syncnet_python import SyncNetModel

    torch.manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(SyncNetModel(num_layers_in_fc_layers=1024).state_dict(), path)
    return path


def light_asd_state_dict(path: Path, seed: int = 0) -> Path:
    import torch

    from perception.backends.light_asd_model import LightASD

    torch.manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(LightASD().state_dict(), path)
    return path


def _lightning_checkpoint(model, path: Path) -> Path:
    import lightning
    import torch

    ckpt = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": lightning.__version__}
    model.on_save_checkpoint(ckpt)  # adds pyannote.audio's versions, architecture and specifications
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


def pyannote_weights(root: Path, seed: int = 0, duration: float = 5.0) -> Path:
    """segmentation/ (PyanNet, powerset 3 speakers x 2), embedding/ (WeSpeaker ResNet34), plda/ npz pair."""
    import torch
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import WeSpeakerResNet34
    from pyannote.audio.models.segmentation import PyanNet

    torch.manual_seed(seed)
    seg = PyanNet()
    seg.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION, resolution=Resolution.FRAME, duration=duration,
        min_duration=duration, warm_up=(0.0, 0.0), classes=["speaker#1", "speaker#2", "speaker#3"],
        powerset_max_classes=2, permutation_invariant=True,
    )
    seg.setup()
    _lightning_checkpoint(seg, root / "pyannote" / "segmentation" / "pytorch_model.bin")
    emb = WeSpeakerResNet34()
    emb.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK,
                                        duration=duration, min_duration=duration, warm_up=(0.0, 0.0))
    _lightning_checkpoint(emb, root / "pyannote" / "embedding" / "pytorch_model.bin")
    rng = np.random.default_rng(seed)
    d, lda = 256, 128  # embedding size, PLDA dimension (pyannote's PLDA keeps 128)
    plda = root / "pyannote" / "plda"
    plda.mkdir(parents=True, exist_ok=True)
    np.savez(plda / "xvec_transform.npz", mean1=rng.normal(0, 0.01, d), mean2=rng.normal(0, 0.01, lda),
             lda=rng.normal(0, 1 / np.sqrt(d), (d, lda)))
    np.savez(plda / "plda.npz", mu=np.zeros(lda), tr=np.eye(lda) + 0.01 * rng.normal(size=(lda, lda)),
             psi=np.linspace(2.0, 0.1, lda))
    return root
