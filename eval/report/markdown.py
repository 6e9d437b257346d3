"""``report.md``: task x mode tables with CIs per model, the plots, tool decisions, baseline margins
(paired CIs), perception quality of the evaluated clips (ASD mAP, DER, WER), and the paper's
published figures as a clearly labelled reference (published, not measured)."""

from __future__ import annotations

from tabulate import tabulate

from eval.report.results import baseline_margins
from eval.tasks import get_task, task_names
from infra.schemas import MODES

# PAPER.md, Qwen3-Omni rows: published figures from secondary notes on arXiv 2512.16250, not measured here.
PUBLISHED = {
    "AVSA acc": ("47.74", "–", "46.98", "54.22"),
    "NSP acc": ("48.38", "–", "45.02", "56.73"),
    "SRID acc": ("56.98", "–", "54.51", "62.53"),
    "STG tIoU": ("48.56", "51.02", "45.59", "54.04"),
    "STG off-by-one": ("–", "–", "43.29", "56.33"),
    "CSNL acc": ("46.07", "49.76", "41.04", "57.26"),
    "AVDS BLEU": ("45.08", "–", "45.07", "54.54"),
    "AVDS CIDEr": ("42.03", "–", "48.53", "58.51"),
}


def _fmt(e: dict | None) -> str:
    if not e or not e.get("n"):
        return "–"
    return f"{e['value'] * 100:.1f} [{e['low'] * 100:.1f}, {e['high'] * 100:.1f}]"


def _margin(e: dict | None) -> str:
    if not e:
        return "–"
    if e.get("low") is None:
        return f"{e['value'] * 100:+.1f}"
    return f"{e['value'] * 100:+.1f} [{e['low'] * 100:+.1f}, {e['high'] * 100:+.1f}]"


def model_table(results: dict, model: str, tablefmt: str = "github") -> str:
    rows = []
    for task in task_names():
        modes = results["results"].get(model, {}).get(task)
        if not modes:
            continue
        metric_names = next(iter(modes.values()))["metrics"].keys()
        for metric in metric_names:
            row = [task, metric]
            for mode in MODES:
                e = modes.get(mode)
                row.append(_fmt(e["metrics"].get(metric)) if e else "–")
            n = max(e["n"] for e in modes.values())
            row.append(n)
            rows.append(row)
    return tabulate(rows, headers=["task", "metric", *MODES, "n"], tablefmt=tablefmt)


def detail_table(results: dict, model: str, tablefmt: str = "github") -> str:
    rows = []
    for task in task_names():
        for mode in MODES:
            e = results["results"].get(model, {}).get(task, {}).get(mode)
            if e:
                rows.append([task, mode, f"{e['parse_rate'] * 100:.0f}%", e["errors"], _fmt(e.get("tool_decision")),
                             f"{e.get('tool_decision_exact', float('nan')) * 100:.0f}%" if "tool_decision" in e else "–",
                             f"{e['latency_p50_s']:.2f}"])
    return tabulate(rows, headers=["task", "mode", "parsed", "errors", "tool decision (Jaccard)", "exact tool set", "p50 latency s"],
                    tablefmt=tablefmt)


def perception_section(q: dict | None) -> list[str]:
    """Perception quality of the evaluated clips: the cues and tool outputs are only this good."""
    if not q:
        return []

    def cell(e: dict | None) -> str:
        return _fmt(e) if e else "– (no labels)"

    rows = [["ASD mAP (AVA: SPEAKING_AUDIBLE positive, VOC-style AP)", cell(q.get("ASD mAP")),
             f"{q.get('asd_rows', 0)} labelled face boxes ({q.get('asd_positive', 0)} speaking), "
             f"{(q.get('ASD mAP') or {}).get('n', 0)} clip(s)"],
            ["DER (pyannote.metrics, 0.25 s collar)", cell(q.get("DER")), f"{q.get('der_clips', 0)} clip(s)"],
            ["WER (jiwer)", cell(q.get("WER")), f"{q.get('wer_clips', 0)} clip(s) with transcribed labels"]]
    return ["## Perception quality of the evaluated clips (pred_* vs gt_*, x100)", "",
            f"From the clip records of the {q.get('n_clips', 0)} clips behind the evaluated samples; "
            "95% CI by bootstrap over clips. Lower is better for DER and WER.", "",
            tabulate(rows, headers=["metric", "value [95% CI]", "on"], tablefmt="github"), ""]


def published_table(tablefmt: str = "github") -> str:
    return tabulate([[k, *v] for k, v in PUBLISHED.items()], headers=["metric", "zero-shot", "guided", "agentic", "agentic + RAFT"],
                    tablefmt=tablefmt)


def write(results: dict, plots: dict[str, str], meta: dict) -> str:
    """The report text; ``plots`` maps a caption to the PNG path relative to the report."""
    out = ["# AMUSE evaluation report", ""]
    out += [f"- run: `{meta.get('run')}`; split: `{meta.get('split')}`; samples: {meta.get('n_samples')}; "
            f"predictions: {results['n_predictions']}",
            f"- models: {', '.join(results['results'])}; modes: {', '.join(meta.get('modes', []))}",
            f"- path: {meta.get('path')}",
            "- every figure is x100 with a bootstrap 95% CI in brackets "
            f"({meta.get('bootstrap_samples')} resamples of the samples).",
            f"- STG: tIoU over the union of intervals; off-by-one = both boundaries within ±{meta.get('stg_tolerance_s')} s.",
            "- AVDS: BLEU-4 by sacrebleu" + (f" (`{results['bleu_signature']}`)" if results.get("bleu_signature") else "")
            + ", CIDEr-D and METEOR 1.5 by pycocoevalcap" + ("" if results.get("meteor_available") else " (METEOR unavailable: no Java)")
            + "; the LLM judge only when `eval.judge.base_url` is set.", ""]
    for model in results["results"]:
        out += [f"## {model}: task x mode", "", model_table(results, model), "", "Parsing, errors, tool decisions, latency:", "",
                detail_table(results, model), ""]
    models = list(results["results"])
    if "tool_only" in models and "random" in models:
        tasks = [t for t in task_names() if get_task(t).baseline_sanity]
        margins = baseline_margins(results, "tool_only", "random", tasks, list(MODES))
        rows = [[t, *[_margin(margins.get(t, {}).get(m)) for m in MODES]] for t in tasks]
        out += ["## Sanity: tool-only baseline minus random baseline (headline x100)", "",
                "Mean per-sample difference on the same samples, with a paired bootstrap 95% CI. Positive means "
                "perception alone carries signal for the task. Zero-shot has no tools and no cues: there the tool-only "
                "baseline gives a fixed answer, so its margin is luck, not signal.", "",
                tabulate(rows, headers=["task", *MODES], tablefmt="github"), ""]
    out += perception_section(results.get("perception"))
    out += ["## Plots", ""]
    for caption, path in plots.items():
        out += [f"### {caption}", "", f"![{caption}]({path})", ""]
    out += ["## Published reference (not measured here)", "",
            "Qwen3-Omni on the paper's own 2,100-sample benchmark, from secondary notes on arXiv 2512.16250 "
            "(PAPER.md). **Published, not measured**: different data, models and scale; shown only for orientation.", "",
            published_table(), ""]
    return "\n".join(out)
