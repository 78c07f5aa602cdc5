"""Trained models on the Hugging Face Hub: downloads, uploads and model cards.

The model classes live in :mod:`llmskel.models` (one module per folder kind:
:mod:`~llmskel.models.skeleton_model`, :mod:`~llmskel.models.vq_tokenizer`,
:mod:`~llmskel.models.llm_recognizer`), and :func:`llmskel.load` picks the right one for a folder or
Hub id. This module:

* :func:`resolve_model_folder`: a local folder as is, a Hub id downloaded with the usual
  ``revision`` / ``cache_dir`` / ``local_files_only`` / ``force_download`` / ``token`` and only the
  files its folder kind needs (``config.json`` is fetched first to tell the kind); offline
  (``HF_HUB_OFFLINE=1``) a Hub id that is not in the cache fails with a message that says so;
* :func:`push_model`: upload a saved folder;
* model cards (:func:`skeleton_model_card`, :func:`vq_tokenizer_card`, :func:`llm_recognizer_card`)
  built on :class:`huggingface_hub.ModelCardData` with ``model-index`` results from the saved metrics.

``from llmskel.hub import SkeletonModel`` (and ``SkeletonModelConfig``, ``load_weights_strict``,
``read_folder_config``, ``as_sample_list``) keep working: they are re-exported from their homes.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .errors import CheckpointError
from .models.folders import CONFIG_NAME, WEIGHTS_NAME, folder_kind, read_json_config

logger = logging.getLogger(__name__)

# re-exports from the modules that now hold them (lazy: no import cycle with llmskel.models)
_MOVED = {
    "SkeletonModel": "llmskel.models.skeleton_model",
    "SkeletonModelConfig": "llmskel.models.skeleton_model",
    "load_weights_strict": "llmskel.models.folders",
    "read_folder_config": "llmskel.models.folders",
    "as_sample_list": "llmskel.data.inputs",
}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_hub_id(model_id: str) -> bool:
    """``namespace/name`` that is not a local path (what the Hub can be asked for)."""
    return not model_id.startswith((".", "/", "~")) and model_id.count("/") == 1 and "\\" not in model_id


def resolve_model_folder(model_id: str, *, revision: str | None = None, cache_dir: str | os.PathLike | None = None,
                         local_files_only: bool = False, force_download: bool = False,
                         token: str | bool | None = None) -> Path:  # fmt: skip
    """A local folder as is; a Hub id downloaded (or read from the cache when offline or
    ``local_files_only``), ``config.json`` first, then only the files of its folder kind."""
    p = Path(model_id).expanduser()
    if p.is_dir():
        return p
    if p.exists():
        raise CheckpointError(f"{model_id} is a file; expected a model folder or a Hub id")
    # a Hub id is "namespace/name"; anything else that does not exist is a missing folder
    if not is_hub_id(model_id):
        raise CheckpointError(f"model folder {model_id} does not exist")
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
    )

    hub = dict(revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
               force_download=force_download, token=token)  # fmt: skip
    try:
        cfg_file = hf_hub_download(model_id, CONFIG_NAME, **hub)
        raw = read_json_config(cfg_file, "an llmskel model repository")
        kind = folder_kind(raw, f"{model_id}/{CONFIG_NAME}")
        return Path(snapshot_download(model_id, allow_patterns=list(kind.files), **hub))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as e:
        why = "local_files_only" if local_files_only else "offline or not cached"
        raise CheckpointError(
            f"{model_id!r}{f' (revision {revision!r})' if revision else ''} is not a local folder and could not "
            f"be fetched from the Hugging Face Hub ({why}: {type(e).__name__}). Pass a model folder, the "
            "cache_dir that holds it, or connect and retry."
        ) from None
    except EntryNotFoundError:
        raise CheckpointError(
            f"Hub repository {model_id!r} has no {CONFIG_NAME}; not an llmskel model"
        ) from None
    except HfHubHTTPError as e:
        raise CheckpointError(f"could not download {model_id!r} from the Hub: {e}") from None
    except CheckpointError:
        raise
    except Exception as e:
        if not is_network_error(e):
            raise
        raise CheckpointError(
            f"could not reach the Hugging Face Hub to download {model_id!r} ({type(e).__name__}: {e}); "
            "check the network, or pass a local model folder"
        ) from None


def push_model(
    folder: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None
) -> str:
    """Upload a saved model folder to the Hub; a clear error when the Hub cannot be reached."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
        raise CheckpointError(f"{folder}: not a saved llmskel model (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(
            folder_path=str(folder), repo_id=repo_id, commit_message="Upload llmskel model"
        )
    except OfflineModeIsEnabled:
        raise CheckpointError(
            "cannot push: HF_HUB_OFFLINE is set (unset it and log in with `hf auth login`)"
        ) from None
    except HfHubHTTPError as e:
        raise CheckpointError(f"cannot push to {repo_id!r}: {e}") from None
    except Exception as e:
        if not is_network_error(e):
            raise
        raise CheckpointError(
            f"cannot reach the Hugging Face Hub to push {repo_id!r} ({type(e).__name__}: {e}); "
            "check the network (and HF_ENDPOINT / proxy settings), then retry"
        ) from None
    return str(getattr(info, "commit_url", info))


# transport failures of the HTTP clients huggingface_hub may use (httpx, its forks, requests, urllib3)
_NETWORK_ERROR_NAMES = {"TransportError", "NetworkError", "ConnectError", "TimeoutException", "ProxyError",
                        "ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout", "NewConnectionError",
                        "MaxRetryError"}  # fmt: skip


def is_network_error(e: BaseException) -> bool:
    """True for a failure to reach a server (refused, unreachable, timed out, DNS), whatever the client."""
    if isinstance(e, (OSError, ConnectionError, TimeoutError)):
        return True
    return any(t.__name__ in _NETWORK_ERROR_NAMES for t in type(e).__mro__)


# ----------------------------------------------------------------------------------------------
# model cards

TASK = "skeleton-based-action-recognition"
# datasets whose terms are ours; weights trained on any other dataset carry its terms ("other")
_OWN_DATA = {"synthetic"}
_KNOWN_HUB_IDS = {"SmolLM2-135M-Instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}
_NOT_METRICS = {"epochs", "steps", "best_epoch", "seed"}


def _license(tr: dict[str, Any]) -> str:
    if tr.get("license"):
        return str(tr["license"])
    return "apache-2.0" if str(tr.get("dataset") or "") in _OWN_DATA else "other"


def eval_results(tr: dict[str, Any], task_name: str = "Skeleton-based action recognition",
                 task_type: str = TASK) -> list[EvalResult]:  # fmt: skip
    """``model-index`` entries from a training record: one per finite numeric metric, with the dataset,
    the protocol (as the dataset config) and the split the metric's prefix names (``test_top1``)."""
    dataset = tr.get("dataset")
    if not dataset:
        return []
    out = []
    for key, v in (tr.get("metrics") or {}).items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            continue
        if key in _NOT_METRICS or key.startswith("num_"):
            continue
        head, _, rest = key.partition("_")
        split, name = (head, rest) if head in ("test", "val", "train") and rest else ("test", key)
        acc = any(w in name for w in ("top1", "top5", "accuracy", "harmonic"))
        out.append(EvalResult(task_type=task_type, task_name=task_name, dataset_type=str(dataset),
                              dataset_name=str(dataset), dataset_config=tr.get("protocol") or None,
                              dataset_split=split, metric_type="accuracy" if acc else name, metric_name=key,
                              metric_value=float(v)))  # fmt: skip
    return out


def _metrics_table(metrics: dict[str, Any]) -> list[str]:
    if not metrics:
        return ["No evaluation was recorded."]
    rows = ["| metric | value |", "|---|---|"]
    for k, v in metrics.items():
        rows.append(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |")
    return rows


def _card(data: ModelCardData, body: list[str]) -> ModelCard:
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n")


def _card_data(tr: dict[str, Any], name: str, tags: list[str], results: list[EvalResult],
               **extra: Any) -> ModelCardData:  # fmt: skip
    dataset = tr.get("dataset")
    acc = any(r.metric_type == "accuracy" for r in results)
    # no pipeline_tag: no Hub task takes skeleton sequences (video-classification would offer a video widget)
    return ModelCardData(library_name="llmskel", license=_license(tr), datasets=[str(dataset)] if dataset else None,
                         metrics=["accuracy"] if acc else None, tags=list(dict.fromkeys(t for t in tags if t)),
                         model_name=name, eval_results=results or None, **extra)  # fmt: skip


def _terms(tr: dict[str, Any]) -> list[str]:
    if _license(tr) != "other":
        return []
    return [f"The weights were trained on {tr.get('dataset', 'data')}: its terms of use apply to them.", ""]


def skeleton_model_card(cfg) -> ModelCard:
    """Model card of a GCN model folder (``cfg``: a :class:`SkeletonModelConfig`, paths scrubbed)."""
    tr = cfg.training or {}
    arch = str(cfg.model.get("arch", "?"))
    name = str(tr.get("name") or arch)
    data = _card_data(tr, name, ["llmskel", TASK, arch, cfg.layout, cfg.method], eval_results(tr))
    body = [
        f"# {name}: {cfg.method} skeleton action recognition",
        "",
        f"A {arch.upper()} skeleton encoder trained with llmskel ({cfg.method}) on "
        f"{tr.get('dataset', 'unknown data')} ({tr.get('protocol', 'protocol not recorded')}).",
        "",
        "## Training data",
        "",
        f"- dataset: {tr.get('dataset', '?')}; protocol: {tr.get('protocol', '?')}",
        f"- train / test samples: {tr.get('num_train', '?')} / {tr.get('num_test', '?')}",
        f"- classes ({len(cfg.classes)}): {', '.join(cfg.classes[:60])}{' ...' if len(cfg.classes) > 60 else ''}",
        f"- skeleton layout: {cfg.layout}; preprocessing: "
        + ", ".join(f"{k}={v}" for k, v in sorted(cfg.preprocessing.items())),
        f"- epochs: {tr.get('epochs', '?')}; seed: {tr.get('seed', '?')}",
        "",
        "## Metrics",
        "",
        *(
            [f"> Model selection: this checkpoint is {tr['model_selection']}.", ""]
            if tr.get("model_selection")
            else []
        ),
        *_metrics_table(tr.get("metrics") or {}),
        "",
        "## Intended use",
        "",
        "Recognising the listed actions from 3D or 2D skeleton sequences in the layout above "
        "(research and prototyping). Accuracy holds for data like the training data: other sensors, "
        "views, frame rates or pose estimators need evaluation first. Not for decisions about people.",
        "",
        *_terms(tr),
        "## Use",
        "",
        "```python",
        "import llmskel",
        "model = llmskel.load('<this folder or repo id>')",
        "pred = model.predict(skeleton)  # skeleton: (T, M, V, C) array in the layout above",
        "print(pred[0].label, pred[0].score)",
        "```",
    ]
    return _card(data, body)


def vq_tokenizer_card(vq) -> ModelCard:
    """Model card of a skeleton VQ tokenizer folder."""
    from .trust import scrub_local_paths

    tr = scrub_local_paths(dict(vq.training_record or {}))
    name = str(tr.get("name") or "skeleton VQ tokenizer")
    results = eval_results(tr, task_name="Skeleton tokenization", task_type="skeleton-tokenization")
    data = _card_data(tr, name, ["llmskel", TASK, "vq-vae", "skeleton-tokenizer", vq.layout], results)
    body = [
        f"# {name}: skeleton sequences -> discrete motion codes",
        "",
        f"A vector-quantised skeleton tokenizer trained with llmskel (method vq) on {tr.get('dataset', '?')} "
        f"({tr.get('protocol', '?')}): {vq.num_parts} parts ({', '.join(vq.part_names)}) x "
        f"{vq.codebook_size} codes, windows of {vq.vq.window} frames, layout {vq.layout}, "
        f"{vq.num_frames} frames x {vq.num_bodies} bodies x {vq.channels} channels; "
        f"{vq.sentence_length} codes per sequence. It feeds the LLM recognizer (method llm).",
        "",
        "## Metrics",
        "",
        *_metrics_table(tr.get("metrics") or {}),
        "",
        *_terms(tr),
        "## Use",
        "",
        "```python",
        "import llmskel",
        "vq = llmskel.load('<this folder or repo id>')",
        "print(vq.render(vq.tokenize(skeleton)))  # skeleton: (T, M, V, C) array",
        "```",
    ]
    return _card(data, body)


def base_model_id(name: str | None) -> str | None:
    """The Hub id of a base LM named in a folder, when it has one (else None: no ``base_model``)."""
    from .trust import is_local_path

    if not name:
        return None
    if name in _KNOWN_HUB_IDS:
        return _KNOWN_HUB_IDS[name]
    return name if is_hub_id(name) and not is_local_path(name) else None


def llm_recognizer_card(model) -> ModelCard:
    """Model card of an LLM recognizer folder, with ``base_model`` when the base LM has a Hub id."""
    from .trust import public_name, scrub_local_paths

    tr = scrub_local_paths(dict(model.training_record or {}))
    fp = dict(model.fingerprint, name=public_name(model.fingerprint.get("name")))
    name = str(tr.get("name") or "LLM action recognizer")
    base = base_model_id(fp.get("name"))
    extra = (
        {"base_model": base, "base_model_relation": "merge" if model.merged else "adapter"} if base else {}
    )
    data = _card_data(tr, name, ["llmskel", TASK, "llm", "lora", "peft", model.layout], eval_results(tr),
                      **extra)  # fmt: skip
    lora = model.cfg.lora
    if model.cfg.code_input == "features":
        ft = model.features
        enc = ft.encoder_config
        side = (f"the sentence is {ft.sentence_length} continuous feature tokens ({ft.settings.windows} window(s) x "
                f"parts {', '.join(ft.part_names)}) of a frozen {enc.model.get('arch', '?')} encoder "
                f"({enc.training.get('method', enc.method)}, trained on {enc.training.get('dataset', '?')}), "
                f"projected by a {ft.settings.projector}; layout {ft.layout}.")  # fmt: skip
    else:
        side = (f"codes enter as {model.cfg.code_input}. Skeleton tokenizer: {model.vq.num_parts} parts x "
                f"{model.vq.codebook_size} codes, windows of {model.vq.vq.window} frames, layout {model.vq.layout}.")  # fmt: skip
    body = [
        f"# {name}: a causal LM that reads skeleton action sentences",
        "",
        f"Base model: {fp.get('name')} ({fp.get('model_type')}); LoRA r={lora.r} on {lora.target_modules}"
        f"{' (merged)' if model.merged else ''}; {side}",
        "",
        f"Trained on {tr.get('dataset', '?')} ({tr.get('protocol', '?')}); classes ({len(model.classes)}): "
        f"{', '.join(model.classes[:60])}.",
        "",
        "## Metrics",
        "",
        *_metrics_table(tr.get("metrics") or {}),
        "",
        *_terms(tr),
        "## Use",
        "",
        "```bash",
        'llmskel recognize --model <this folder> skeleton.npy [--labels "a; b"] [--open]',
        "```",
        "",
        "```python",
        "import llmskel",
        "rec = llmskel.load('<this folder or repo id>')",
        "print(rec.predict(skeleton)[0].label)",
        "```",
    ]
    return _card(data, body)
