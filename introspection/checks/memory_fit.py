"""Will each model's work fit its GPUs? A memory model of every finetune and inference setting, and the start
check that refuses, in seconds and in one line, a setting whose memory cannot fit, naming one that does.

The model (GB = 1e9 bytes; a model of P billion parameters at B bytes each takes P * B GB):
- weights: 2 bytes per parameter in bf16/fp16, 4 in fp32. `dtype: auto` on a GPU counts 2: every hub
  checkpoint of the catalogue is bf16, and vLLM's auto serves fp32 checkpoints in 16 bits too.
- finetune=full, sharded (fsdp, deepspeed): 16 bytes per parameter, spread over the GPUs. ZeRO (Rajbhandari et
  al. 2020, arXiv:1910.02054, section 3.1) counts mixed-precision Adam as 2 (16-bit weights) + 2 (16-bit
  gradients) + 12 (fp32 master weights, Adam momentum and variance); accelerate's FSDP keeps the same: under
  mixed precision it upcasts the trainable flat parameters to fp32 (Accelerator.prepare_model), so weights 4
  + gradients 4 + Adam 8. Not sharded (ddp, none): the model trains in its own dtype on every GPU (bf16
  weights, gradients and torch AdamW's two states, which take the parameter's dtype): 4 x 2 = 8 bytes.
- finetune=lora: the frozen base at 2 bytes (sharded under fsdp/deepspeed), plus the adapter at 16 bytes per
  adapter parameter (PEFT keeps adapter weights in fp32: weights, gradients, Adam's two states).
- finetune=qlora: the base in NF4, 4 bits per parameter plus 0.127 bits of double-quantised constants
  (QLoRA, Dettmers et al. 2023, arXiv:2305.14314, section 3), on one GPU; the adapter as for lora.
- activations of training (Korthikanti et al. 2022, arXiv:2205.05198, eq. 1): one layer holds
  s*b*h*(34 + 5*a*s/h) bytes in 16 bits (sequence s, per-device batch b, hidden h, a heads of 128 dims). With
  gradient checkpointing each layer keeps only its 16-bit input (2*s*b*h) and one layer is recomputed at a
  time; without, every layer keeps all of it. Plus the logits: s*b*V*10 bytes (16-bit logits, their fp32 copy
  for the loss and its gradient), V = 152,064 (Qwen2.5's, the largest of the paper-scale entries; Llama-3.1
  has 128,256; Gemma-2's 256,000 is undercounted). s is finetune.max_length: rows shorter than it need less.
- sharded training gathers one layer's full 16-bit weights at a time, and prefetches the next: 2 layers.
- inference=vllm: weights / tensor_parallel_size, the KV cache of one max_model_len sequence (vLLM refuses
  to start without it; 2 * layers * h * 2 bytes per token, counted without grouped-query attention's
  saving), and VLLM_RUNTIME_GB; all within gpu_memory_utilization of each GPU.
- inference=hf: the whole model on one GPU, and the KV cache of one max_model_len sequence.
- the merge of an adapter (behaviour shift, inference.lora_serving=merge): the weights in the model's dtype,
  spread over the side's GPUs (device_map=auto, introspection/inference/lora.py).
- every GPU: CUDA_OVERHEAD_GB for the CUDA context, NCCL buffers and the allocator's fragmentation.
The shape (hidden size h, layers L) is estimated from the parameter count alone (`model_shape`), so the
check runs before any file of the model is at hand (a 70B plan made on a login node).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from introspection.checks.model_checks import SLOTS

GB = 1e9
DTYPE_BYTES = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0}
AUTO_BYTES_ON_GPU = 2.0
NF4_BYTES = (4 + 0.127) / 8  # QLoRA: NF4 weights plus double-quantised block constants
FULL_SHARDED_BYTES = 16.0  # ZeRO's mixed-precision Adam (see above)
ADAPTER_BYTES = 16.0  # fp32 adapter weights, gradients, Adam momentum and variance
LOGIT_BYTES = 10.0  # per logit: 16-bit value, fp32 copy for the loss, fp32 gradient
VOCAB = 152_064
HEAD_DIM = 128
LAYERS_PER_HIDDEN = 1 / 110  # L ~ h / 110: h / 102 for Llama-3.1-70B and Qwen2.5-72B, h / 128 at 7-8B
PARAMS_PER_LAYER_H2 = 12.75  # a Llama-style layer: attention ~2.25 h^2 (grouped KV) + MLP 3 * h * 3.5h
LORA_WIDTH_PER_H = 20  # sum over a layer's 7 linear maps of (in + out): 19.75 h for Llama-3.1-70B, 20 h for 8B
CUDA_OVERHEAD_GB = 2.0
VLLM_RUNTIME_GB = 4.0  # an allowance for vLLM's activation peak, CUDA graphs and sampler tensors
DEFAULT_GPU_GB = 80.0  # ModelEntry.gpu_memory_gb: an H100/A100 80 GB
# Jobs run on one node (the Slurm launcher asks for nodes: 1; multi-GPU finetunes start torchrun --standalone),
# and 8 GPUs is the largest common node: no suggestion asks for more.
MAX_GPUS_PER_JOB = 8
# A hub model declared this small (model.mX.params_b) may run on a CPU; anything larger, or unsized, needs CUDA.
CPU_MAX_PARAMS_B = 2.0
EXPERIMENTS_WITHOUT_FINETUNE = ("untrained_self",)
FINETUNE_GROUP_DIR = Path(__file__).resolve().parents[2] / "conf" / "finetune"  # as cli.CONF_DIR (a layer above)


# --------------------------------------------------------------------------------------------------
# The memory model (pure functions of numbers)


@dataclass(frozen=True)
class Need:
    """GPU memory a setting needs: on each of its GPUs, and in all."""

    per_gpu_gb: float
    gpus: int

    @property
    def total_gb(self) -> float:
        return self.per_gpu_gb * self.gpus


def model_shape(params_b: float) -> tuple[float, float]:
    """(hidden size, layers) of a dense decoder of params_b billion parameters: P = 12.75 * L * h^2 and
    L = h / 110 give h = (110 * P / 12.75)^(1/3): 8477 and 77 layers for 70.6B (Llama-3.1-70B: 8192, 80),
    4107 and 37 for 8.03B (Llama-3.1-8B: 4096, 32)."""
    hidden = (params_b * 1e9 / (PARAMS_PER_LAYER_H2 * LAYERS_PER_HIDDEN)) ** (1 / 3)
    return hidden, max(1.0, hidden * LAYERS_PER_HIDDEN)


def lora_params_b(params_b: float, rank: int) -> float:
    """Adapter parameters of LoRA on every linear map: rank * (in + out) per map, ~20 h per layer
    (0.418B for Llama-3.1-70B at rank 32; exactly 0.414B)."""
    hidden, layers = model_shape(params_b)
    return rank * LORA_WIDTH_PER_H * hidden * layers / 1e9


def activations_gb(params_b: float, batch: int, seq: int, checkpointing: bool) -> float:
    """Training activations on one GPU (Korthikanti et al. 2022, eq. 1, plus the logits)."""
    hidden, layers = model_shape(params_b)
    heads = hidden / HEAD_DIM
    one_layer = seq * batch * hidden * (34 + 5 * heads * seq / hidden)
    kept = layers * 2 * seq * batch * hidden + one_layer if checkpointing else layers * one_layer
    return (kept + seq * batch * VOCAB * LOGIT_BYTES) / GB


def kv_cache_gb(params_b: float, tokens: int, weight_bytes: float) -> float:
    """Keys and values of `tokens` tokens over every layer (no grouped-query saving: an upper bound)."""
    hidden, layers = model_shape(params_b)
    return 2 * layers * hidden * weight_bytes * tokens / GB


def finetune_need(params_b: float, method: str, strategy: str, gpus: int, *, weight_bytes: float, lora_r: int,
                  batch: int, seq: int, checkpointing: bool) -> Need:
    """Each GPU's memory for a finetune of `method` (full, lora, qlora) under `strategy` (none, ddp, fsdp,
    deepspeed) on `gpus` GPUs (one rank each; strategy none trains on one GPU)."""
    ranks = 1 if strategy == "none" else gpus
    shards = ranks if strategy in ("fsdp", "deepspeed") else 1
    if method == "full":
        states = FULL_SHARDED_BYTES if shards > 1 else 4 * weight_bytes
        model_gb = params_b * states / shards
    else:
        base_bytes = NF4_BYTES if method == "qlora" else weight_bytes
        model_gb = (params_b * base_bytes + lora_params_b(params_b, lora_r) * ADAPTER_BYTES) / shards
    gathered = 2 * params_b / model_shape(params_b)[1] * weight_bytes if shards > 1 else 0.0
    per_gpu = model_gb + gathered + activations_gb(params_b, batch, seq, checkpointing) + CUDA_OVERHEAD_GB
    return Need(per_gpu, ranks)


def vllm_need(params_b: float, weight_bytes: float, tensor_parallel: int, max_model_len: int) -> Need:
    """Each GPU's memory for vLLM serving over `tensor_parallel` GPUs (to fit gpu_memory_utilization of it)."""
    per_gpu = (params_b * weight_bytes + kv_cache_gb(params_b, max_model_len, weight_bytes)) / tensor_parallel
    return Need(per_gpu + VLLM_RUNTIME_GB + CUDA_OVERHEAD_GB, tensor_parallel)


def hf_need(params_b: float, weight_bytes: float, max_model_len: int) -> Need:
    """transformers' generate on one GPU: the whole model there."""
    per_gpu = params_b * weight_bytes + kv_cache_gb(params_b, max_model_len, weight_bytes) + CUDA_OVERHEAD_GB
    return Need(per_gpu, 1)


def merge_need(params_b: float, weight_bytes: float, gpus: int) -> Need:
    """Folding an adapter into the weights, spread over `gpus` GPUs (device_map=auto)."""
    return Need(params_b * weight_bytes / gpus + CUDA_OVERHEAD_GB, gpus)


# --------------------------------------------------------------------------------------------------
# The GPUs a side runs on


@dataclass(frozen=True)
class Gpus:
    count: int
    gb: float  # memory of each
    where: str  # where the two numbers came from, for the message

    def describe(self) -> str:
        return f"{self.count} GPU{'s' if self.count != 1 else ''} of {self.gb:.0f} GB ({self.where})"


def measured_gpu_gb() -> float | None:
    """The memory of the smallest GPU this process may use, through NVML (no CUDA context in this
    process: workers own the GPUs); None without GPUs or without NVML (nvidia-ml-py, which vLLM needs)."""
    from introspection.core.devices import visible_devices

    devices = visible_devices()
    if not devices:
        return None
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            handles = [pynvml.nvmlDeviceGetHandleByIndex(int(d)) if d.isdigit()
                       else pynvml.nvmlDeviceGetHandleByUUID(d) for d in devices]
            return min(pynvml.nvmlDeviceGetMemoryInfo(h).total for h in handles) / GB
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        return None


def side_gpus(entry: DictConfig, slot: str, measured_gb: float | None) -> Gpus:
    if measured_gb is not None:
        return Gpus(int(entry.gpus), measured_gb, f"model.{slot}.gpus; memory measured on this machine's GPUs")
    return Gpus(int(entry.gpus), float(entry.gpu_memory_gb), f"model.{slot}.gpus, model.{slot}.gpu_memory_gb")


def weight_bytes(dtype: str) -> float:
    return DTYPE_BYTES.get(dtype, AUTO_BYTES_ON_GPU)


# --------------------------------------------------------------------------------------------------
# The start check

LIGHTER_FINETUNES = {"full": ("lora", "qlora"), "lora": ("qlora",), "qlora": ()}
_NOT_MEASURED = object()


def check_memory_fit(cfg: DictConfig, measured_gb=_NOT_MEASURED) -> None:
    """Each side's finetune, inference backend and adapter merge against its GPUs' memory; a one-line
    ValueError for the first that cannot fit, naming a lighter setting that does (computed, not listed).

    A side without params_b is not judged; nor is a CPU-sized one (params_b <= CPU_MAX_PARAMS_B) on a
    machine without GPUs: it runs on the CPU (the demo). Without GPUs here (a login node) the GPUs are
    model.mX.gpus of model.mX.gpu_memory_gb; with GPUs, their memory is measured."""
    measured = measured_gpu_gb() if measured_gb is _NOT_MEASURED else measured_gb
    for slot in SLOTS:
        entry = cfg.model[slot]
        params_b = entry.params_b
        if params_b is None or (measured is None and params_b <= CPU_MAX_PARAMS_B):
            continue
        gpus = side_gpus(entry, slot, measured)
        if cfg.experiment.name not in EXPERIMENTS_WITHOUT_FINETUNE:
            _check_finetune(cfg, slot, gpus)
        _check_inference(cfg, slot, gpus)
        if _merges_on_gpu(cfg):
            _check_merge(cfg, slot, gpus)


def _label(cfg: DictConfig, slot: str) -> str:
    entry = cfg.model[slot]
    return f"{entry.name} (model.{slot}, {entry.params_b:g}B params)"


def _finetune_group(name: str) -> dict:
    """The settings of conf/finetune/<name>.yaml (what finetune=<name> on the command line selects)."""
    group = OmegaConf.to_container(OmegaConf.load(FINETUNE_GROUP_DIR / f"{name}.yaml"))
    group.pop("defaults", None)
    return group


def _finetune_need(finetune: dict, entry: dict, gpus: int) -> tuple[Need, dict] | None:
    """The need of `finetune` settings on `gpus` GPUs; None where the settings do not resolve there (an
    effective batch that does not divide the ranks: not a setting to suggest)."""
    from introspection.stages.finetune_settings import finetune_settings

    try:
        settings = finetune_settings(finetune, {**entry, "gpus": gpus})
    except ValueError:
        return None
    dtype = settings.get("dtype", "auto")
    need = finetune_need(entry["params_b"], settings["method"], settings["multi_gpu"], gpus,
                         weight_bytes=weight_bytes(dtype), lora_r=int(settings["lora"]["r"]),
                         batch=int(settings["batch_size"]), seq=int(settings["max_length"]),
                         checkpointing=bool(settings["gradient_checkpointing"]))
    return need, settings


def _check_finetune(cfg: DictConfig, slot: str, gpus: Gpus) -> None:
    finetune = OmegaConf.to_container(cfg.finetune, resolve=True)
    entry = OmegaConf.to_container(cfg.model[slot], resolve=True)
    found = _finetune_need(finetune, entry, gpus.count)
    if found is None:  # the batch does not divide: stages.finetune_settings names it at start
        return
    need, settings = found
    if need.per_gpu_gb <= gpus.gb:
        return
    # Same rows per step in smaller per-device batches (fewer activations), a lighter method, more GPUs.
    accumulation = int(finetune.get("gradient_accumulation_steps") or 1)
    candidates = [(f"finetune.gradient_accumulation_steps={accumulation * k}",
                   {**finetune, "gradient_accumulation_steps": accumulation * k}, gpus.count)
                  for k in (2, 4, 8) if finetune.get("effective_batch_size") is not None]
    candidates += [(f"finetune={name}", {**finetune, **_finetune_group(name)}, gpus.count)
                   for name in LIGHTER_FINETUNES[settings["method"]]]
    if settings["multi_gpu"] in ("none", "ddp") and settings["method"] != "qlora" and gpus.count > 1:
        candidates.append(("finetune.multi_gpu=fsdp", {**finetune, "multi_gpu": "fsdp"}, gpus.count))
    candidates += [(f"model.{slot}.gpus={n}", finetune, n) for n in _more_gpus(cfg.model[slot], gpus.count)]
    fits = []
    for text, settings_, n in candidates:
        other = _finetune_need(settings_, entry, n)
        if other is not None and other[0].per_gpu_gb <= gpus.gb:
            fits.append((text, other[0]))
    strategy = settings["multi_gpu"]
    each = f"on each of its {need.gpus} GPUs" if need.gpus > 1 else "on its one GPU"
    raise ValueError(f"finetune={cfg.finetune.name} of {_label(cfg, slot)} needs ~{need.total_gb:.0f} GB of GPU "
                     f"memory under multi_gpu={strategy} (~{need.per_gpu_gb:.0f} GB {each}), more than "
                     f"{gpus.describe()} hold; " + _suggest(fits, slot))


def _more_gpus(entry: DictConfig, count: int) -> list[int]:
    """GPU counts above `count` that one node offers and that tensor_parallel_size divides."""
    tp = int(entry.tensor_parallel_size)
    return [n for n in range(count + 1, MAX_GPUS_PER_JOB + 1) if n % tp == 0]


def _suggest(fits: list[tuple[str, Need]], slot: str) -> str:
    """The first two fitting changes of different kinds (the key each sets), or what is left to try."""
    chosen, kinds = [], set()
    for text, need in fits:
        kind = text.split("=")[0]
        if kind not in kinds and len(chosen) < 2:
            kinds.add(kind)
            chosen.append(f"{text} (fits: ~{need.per_gpu_gb:.0f} GB per GPU)")
    if chosen:
        return "use " + " or ".join(chosen)
    return (f"no lighter setting fits up to {MAX_GPUS_PER_JOB} GPUs of this memory; use GPUs with more memory "
            f"(model.{slot}.gpu_memory_gb) or a smaller model")


def _check_inference(cfg: DictConfig, slot: str, gpus: Gpus) -> None:
    entry = cfg.model[slot]
    params_b, length, wbytes = entry.params_b, int(entry.max_model_len), weight_bytes(entry.dtype)
    utilisation = float(cfg.inference.gpu_memory_utilization)
    budget = utilisation * gpus.gb
    tp = int(entry.tensor_parallel_size)
    if cfg.inference.backend == "hf":
        need = hf_need(params_b, wbytes, length)
        if need.per_gpu_gb <= gpus.gb:
            return
        vllm = vllm_need(params_b, wbytes, tp, length)
        fits = [("inference=vllm", vllm)] if vllm.per_gpu_gb <= budget else [
            (f"inference=vllm {text}", larger) for text, larger in _tensor_parallel_fits(entry, slot, gpus, budget, tp)]
        raise ValueError(f"inference=hf of {_label(cfg, slot)} loads the whole model onto one GPU: ~{need.per_gpu_gb:.0f}"
                         f" GB, more than one of {gpus.describe()} holds; " + _suggest(fits, slot))
    need = vllm_need(params_b, wbytes, tp, length)
    if need.per_gpu_gb <= budget:
        return
    fits = _tensor_parallel_fits(entry, slot, gpus, budget, tp)
    raise ValueError(f"inference=vllm of {_label(cfg, slot)} needs ~{need.per_gpu_gb:.0f} GB on each of its "
                     f"{tp} tensor-parallel GPU{'s' if tp != 1 else ''} (model.{slot}.tensor_parallel_size), more "
                     f"than inference.gpu_memory_utilization={utilisation:g} of {gpus.describe()} "
                     f"(~{budget:.0f} GB); " + _suggest(fits, slot))


def _tensor_parallel_fits(entry: DictConfig, slot: str, gpus: Gpus, budget: float, tp: int) -> list[tuple[str, Need]]:
    """The smallest larger tensor parallel size that fits (a power of two: it must divide the attention heads),
    with as many GPUs where the side has fewer."""
    for size in (2, 4, 8):
        need = vllm_need(entry.params_b, weight_bytes(entry.dtype), size, int(entry.max_model_len))
        if tp < size <= MAX_GPUS_PER_JOB and need.per_gpu_gb <= budget:
            count = size * math.ceil(gpus.count / size)
            text = f"model.{slot}.tensor_parallel_size={size}"
            if count != gpus.count:
                text += f" model.{slot}.gpus={count}"
            return [(text, need)]
    return []


def _merges_on_gpu(cfg: DictConfig) -> bool:
    """An adapter is folded into the weights by vLLM's merge serving and by the behaviour shift (its
    continued finetune starts from the merged model); inference=hf merges on the GPU it serves from."""
    return cfg.experiment.name == "behavior_shift" or (
        cfg.inference.backend == "vllm" and cfg.inference.lora_serving == "merge")


def _check_merge(cfg: DictConfig, slot: str, gpus: Gpus) -> None:
    entry = cfg.model[slot]
    need = merge_need(entry.params_b, weight_bytes(entry.dtype), gpus.count)
    if need.per_gpu_gb <= gpus.gb:
        return
    fits = [(f"model.{slot}.gpus={n}", merge_need(entry.params_b, weight_bytes(entry.dtype), n))
            for n in _more_gpus(entry, gpus.count)]
    fits = [(text, n) for text, n in fits if n.per_gpu_gb <= gpus.gb]
    raise ValueError(f"merging the adapter of {_label(cfg, slot)} into its weights needs ~{need.total_gb:.0f} GB "
                     f"of GPU memory, more than {gpus.describe()} hold; " + _suggest(fits, slot))
