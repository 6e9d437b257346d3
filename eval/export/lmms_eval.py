"""The registered AMUSE tasks as an lmms-eval task folder: one YAML per task, a shared template and ``utils.py``.

lmms-eval (0.7.3) cannot be installed here with its dependencies: it requires torchvision and ``av<16``
(this venv pins av 18 and forbids torchvision, see PLATFORM.md). So ``check`` validates the folder against
lmms-eval's schema: every key is a field of its ``TaskConfig`` (``lmms_eval/api/task.py``), every
``!function`` names a function of ``utils.py``, and ``output_type`` is one lmms-eval knows. Its own task
loader (``TaskManager``, ``get_task_dict``) reads the folder too when lmms-eval is installed without its
dependencies in a throwaway venv over this one (``make lmms-eval-check``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from eval.tasks import task_names

# lmms_eval 0.7.3, lmms_eval/api/task.py: the fields of TaskConfig, in declaration order.
TASK_CONFIG_FIELDS = (
    "task", "task_alias", "tag", "group", "group_alias", "dataset_path", "dataset_name", "dataset_kwargs",
    "training_split", "validation_split", "test_split", "fewshot_split", "full_docs", "process_results_use_image",
    "process_docs", "doc_to_visual", "doc_to_text", "doc_to_target", "doc_to_choice", "doc_to_messages",
    "process_results", "use_prompt", "description", "target_delimiter", "fewshot_delimiter", "fewshot_config",
    "num_fewshot", "metric_list", "output_type", "generation_kwargs", "repeats", "filter_list",
    "should_decontaminate", "doc_to_decontamination_query", "cluster_key", "score_key", "metadata",
    "lmms_eval_specific_kwargs", "model_specific_generation_kwargs", "model_specific_target_kwargs",
    "reasoning_tags", "auto_strip_thinking",
)
OUTPUT_TYPES = ("loglikelihood", "generate_until", "generate_until_multi_round", "generate_until_agentic")
TEMPLATE = "_default_template_yaml"  # lmms-eval's convention: not picked up as a task of its own
UTILS = Path(__file__).with_name("lmms_eval_utils.py")


class Function(str):
    """A ``!function utils.name`` reference in the YAML."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Function, lambda d, v: d.represent_scalar("!function", str(v)))


def task_key(task: str) -> str:
    return f"amuse_{task.lower()}"


def task_configs(data_file: str) -> dict[str, dict[str, Any]]:
    """File name -> YAML content for the template and one file per registered task."""
    template = {
        "dataset_path": "parquet",
        "dataset_kwargs": {"data_files": {"test": data_file}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_visual": Function("utils.doc_to_visual"),
        "doc_to_text": Function("utils.doc_to_text"),
        "doc_to_target": Function("utils.doc_to_target"),
        "process_results": Function("utils.process_results"),
        "metric_list": [{"metric": "amuse_score", "aggregation": "mean", "higher_is_better": True}],
        "generation_kwargs": {"max_new_tokens": 256, "temperature": 0.0, "do_sample": False},
        "lmms_eval_specific_kwargs": {"default": {"mode": "zero_shot"}},
        "metadata": {"version": 1.0, "source": "amuse-raft eval.export.lmms_eval"},
    }
    out: dict[str, dict[str, Any]] = {TEMPLATE: template}
    for task in task_names():
        out[f"{task_key(task)}.yaml"] = {
            "include": TEMPLATE, "task": task_key(task), "tag": "amuse",
            "process_docs": Function(f"utils.process_docs_{task.lower()}"),
        }
    return out


def _utils_source() -> str:
    """utils.py: the hooks plus one ``process_docs_<task>`` per registered task (lmms-eval takes a bare function)."""
    extra = "".join(f"\n\ndef process_docs_{t.lower()}(dataset):\n    return process_docs(dataset, {t!r})\n"
                    for t in task_names())
    return UTILS.read_text() + extra


def write(out_dir: str | Path, data_file: str) -> list[Path]:
    """Write the folder; ``data_file`` is the test split's Parquet (relative paths are from the folder)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in task_configs(data_file).items():
        (out / name).write_text(yaml.dump(content, Dumper=_Dumper, sort_keys=False))
        written.append(out / name)
    (out / "utils.py").write_text(_utils_source())
    written.append(out / "utils.py")
    check(out)
    return written


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: Function(loader.construct_scalar(node)))


def load(path: Path) -> dict[str, Any]:
    """A task YAML with its ``include`` merged (lmms-eval's load_yaml_config semantics, functions unresolved)."""
    config = yaml.load(path.read_text(), Loader=_Loader)
    include = config.pop("include", None)
    if include:
        base = load(path.parent / include)
        base.update(config)
        config = base
    return config


def check(folder: str | Path) -> list[str]:
    """Validate every task YAML in ``folder`` against lmms-eval's TaskConfig; returns the task names.
    Raises ValueError naming the file and key that break it."""
    import ast

    folder = Path(folder)
    defined = {n.name for n in ast.parse((folder / "utils.py").read_text()).body if isinstance(n, ast.FunctionDef)}
    tasks = []
    for path in sorted(folder.glob("*.yaml")):
        config = load(path)
        unknown = sorted(set(config) - set(TASK_CONFIG_FIELDS))
        if unknown:
            raise ValueError(f"{path}: keys {unknown} are not lmms-eval TaskConfig fields")
        if config.get("output_type") not in OUTPUT_TYPES:
            raise ValueError(f"{path}: output_type {config.get('output_type')!r} is not one of {OUTPUT_TYPES}")
        for key, value in config.items():
            if isinstance(value, Function):
                module, _, name = value.rpartition(".")
                if module != "utils" or name not in defined:
                    raise ValueError(f"{path}: {key}: !function {value} is not a function of {folder / 'utils.py'}")
        if not config.get("task"):
            raise ValueError(f"{path}: no task name")
        tasks.append(config["task"])
    return tasks

