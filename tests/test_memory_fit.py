"""The memory model of introspection/checks/memory_fit.py, and the start check that refuses a setting whose memory
cannot fit its GPUs (issue 19: finetune=full and inference=hf of a 70B model failed out of memory an hour in)."""

from __future__ import annotations

import sys
import types

import pytest

from introspection.checks import memory_fit
from introspection.checks.memory_fit import (
    CUDA_OVERHEAD_GB,
    Gpus,
    activations_gb,
    check_memory_fit,
    finetune_need,
    hf_need,
    lora_params_b,
    measured_gpu_gb,
    merge_need,
    model_shape,
    vllm_need,
)
from tests.helpers import compose_cfg
from tests.helpers.checks import assert_one_line

LLAMA_70B = 70.6
TRAIN = dict(weight_bytes=2.0, lora_r=32, batch=4, seq=512, checkpointing=True)


def states_gb(params_b: float, method: str, strategy: str, gpus: int, **kw) -> float:
    """A finetune's memory per GPU without activations and the CUDA allowance: weights, gradients, optimizer
    states and the gathered layers."""
    settings = {**TRAIN, **kw}
    need = finetune_need(params_b, method, strategy, gpus, **settings)
    return need.per_gpu_gb - activations_gb(params_b, settings["batch"], settings["seq"],
                                            settings["checkpointing"]) - CUDA_OVERHEAD_GB


# --- the memory model ------------------------------------------------------------------------------
def test_the_shape_estimate_matches_real_models():
    """Llama-3.1-70B: hidden 8192, 80 layers; Llama-3.1-8B: hidden 4096, 32 layers (their config.json)."""
    for params_b, hidden, layers in ((70.6, 8192, 80), (8.03, 4096, 32)):
        h, n = model_shape(params_b)
        assert abs(h - hidden) / hidden < 0.05 and abs(n - layers) / layers < 0.2, (params_b, h, n)
    # LoRA on every linear map of Llama-3.1-70B at rank 32, from its shape (q, o: 8192 x 8192; k, v:
    # 8192 x 1024; gate, up, down: 8192 x 28672; 80 layers): 32 * 80 * sum(in + out)
    exact = 32 * 80 * (2 * 16384 + 2 * 9216 + 3 * 36864) / 1e9
    assert abs(lora_params_b(LLAMA_70B, 32) - exact) / exact < 0.05


def test_full_finetune_sharded_takes_16_bytes_per_parameter_over_the_gpus():
    """ZeRO's mixed-precision Adam: 2 + 2 + 12 bytes per parameter, divided by the ranks under fsdp/deepspeed."""
    for strategy in ("fsdp", "deepspeed"):
        four, eight = (finetune_need(LLAMA_70B, "full", strategy, n, **TRAIN) for n in (4, 8))
        assert four.per_gpu_gb - eight.per_gpu_gb == pytest.approx(LLAMA_70B * 16 * (1 / 4 - 1 / 8), rel=0.03)
        assert four.gpus == 4 and four.total_gb == pytest.approx(4 * four.per_gpu_gb)
    assert states_gb(LLAMA_70B, "full", "fsdp", 4) > 16 * LLAMA_70B / 4


def test_unsharded_finetunes_hold_a_whole_copy_on_every_gpu():
    """ddp and none: bf16 weights, gradients and AdamW's two bf16 states (8 bytes) on each GPU, however many."""
    assert states_gb(8.03, "full", "ddp", 4) == pytest.approx(8.03 * 8)
    assert states_gb(8.03, "full", "ddp", 8) == pytest.approx(8.03 * 8)
    assert states_gb(8.03, "full", "none", 1, weight_bytes=4.0) == pytest.approx(8.03 * 16)  # fp32 on 4 bytes
    lora = states_gb(8.03, "lora", "ddp", 4)
    assert lora == pytest.approx(8.03 * 2 + lora_params_b(8.03, 32) * 16)


def test_lora_and_qlora_bases():
    sharded = states_gb(LLAMA_70B, "lora", "fsdp", 4)
    assert LLAMA_70B * 2 / 4 < sharded < LLAMA_70B * 2 / 4 + 10  # the bf16 base over 4 GPUs, plus adapter, layers
    qlora = states_gb(LLAMA_70B, "qlora", "none", 1)
    assert qlora == pytest.approx(LLAMA_70B * 4.127 / 8 + lora_params_b(LLAMA_70B, 32) * 16)
    assert finetune_need(LLAMA_70B, "qlora", "none", 1, **TRAIN).per_gpu_gb < 80  # QLoRA's point: one GPU
    assert finetune_need(LLAMA_70B, "lora", "none", 1, **TRAIN).per_gpu_gb > 80


def test_activations_grow_with_the_batch_and_shrink_with_checkpointing():
    small, large = activations_gb(8.03, 4, 512, True), activations_gb(8.03, 16, 512, True)
    assert large == pytest.approx(4 * small)
    assert activations_gb(8.03, 4, 512, False) > 3 * small


def test_inference_and_merge_needs():
    assert vllm_need(LLAMA_70B, 2.0, 4, 4096).per_gpu_gb < 0.85 * 80  # the shipped TP4 fits
    assert vllm_need(LLAMA_70B, 2.0, 1, 4096).per_gpu_gb > 80
    assert hf_need(LLAMA_70B, 2.0, 4096).per_gpu_gb > LLAMA_70B * 2  # the whole model on one GPU
    assert hf_need(8.03, 2.0, 4096).per_gpu_gb < 80
    assert merge_need(LLAMA_70B, 2.0, 4).per_gpu_gb == pytest.approx(LLAMA_70B * 2 / 4 + CUDA_OVERHEAD_GB)
    assert merge_need(LLAMA_70B, 4.0, 1).per_gpu_gb > 280  # the float32 merge of issue 19


# --- the check on composed configs -----------------------------------------------------------------
PAPER = ["model=llama3_70b", "tasks=all"]


def refusal(overrides: list[str], measured_gb=None) -> str:
    with pytest.raises(ValueError) as info:
        check_memory_fit(compose_cfg(overrides), measured_gb=measured_gb)
    return str(info.value)


def suggested(message: str) -> list[str]:
    """The overrides of the first suggestion in a refusal ("use A B (fits: ...) or ...")."""
    return message.split("; use ", 1)[1].split(" (fits", 1)[0].split()


def test_the_paper_settings_pass():
    for extra in ([], ["finetune=qlora"], ["experiment=behavior_shift"], ["inference.lora_serving=merge"]):
        check_memory_fit(compose_cfg(PAPER + extra), measured_gb=None)
    check_memory_fit(compose_cfg(["model=llama3_8b", "tasks=all"]), measured_gb=None)
    check_memory_fit(compose_cfg(["model=llama3_8b", "tasks=all", "inference=hf"]), measured_gb=None)


def test_an_8b_full_finetune_on_one_gpu_is_told_to_accumulate():
    """bf16 weights, gradients and AdamW states of 8B take 64 GB: a batch of 16 rows of 512 tokens does not fit
    beside them on 80 GB, the same 16 rows in steps of 4 do."""
    message = refusal(["model=llama3_8b", "tasks=all", "finetune=full"])
    assert_one_line(message, "finetune=full of llama3_1_8b", "on its one GPU", "finetune.gradient_accumulation_steps=")
    check_memory_fit(compose_cfg(["model=llama3_8b", "tasks=all", "finetune=full", *suggested(message)]),
                     measured_gb=None)


def test_full_finetune_of_70b_is_refused_naming_what_fits():
    message = refusal(PAPER + ["finetune=full"])
    assert_one_line(message, "finetune=full of llama3_1_70b (model.m1, 70.6B params)", "under multi_gpu=fsdp",
                    "on each of its 4 GPUs", "4 GPUs of 80 GB (model.m1.gpus, model.m1.gpu_memory_gb)",
                    "use finetune=lora (fits: ~")
    check_memory_fit(compose_cfg(PAPER + suggested(message)), measured_gb=None)


def test_hf_inference_of_70b_is_refused_naming_vllm():
    message = refusal(PAPER + ["inference=hf"])
    assert_one_line(message, "inference=hf of llama3_1_70b (model.m1, 70.6B params)", "one GPU",
                    "use inference=vllm (fits: ~")
    check_memory_fit(compose_cfg(PAPER + suggested(message)), measured_gb=None)
    one_gpu = refusal(PAPER + ["inference=hf", "model.m1.gpus=1", "model.m1.tensor_parallel_size=1", "finetune=qlora"])
    assert_one_line(one_gpu, "use inference=vllm model.m1.tensor_parallel_size=4 model.m1.gpus=4 (fits")


def test_following_the_suggestions_reaches_a_setting_that_fits():
    """On 40 GB cards the shipped 70B setting fits neither the LoRA finetune nor vLLM's TP4: each refusal names
    the next change, computed from the memory model, until the run passes."""
    overrides = PAPER + ["model.m1.gpu_memory_gb=40", "model.m2.gpu_memory_gb=40"]
    seen = []
    for _ in range(6):
        try:
            check_memory_fit(compose_cfg(overrides), measured_gb=None)
            break
        except ValueError as exc:
            seen.append(str(exc))
            overrides += suggested(str(exc))
    else:
        pytest.fail(f"still refused after {seen}")
    assert any("model.m1.gpus=8" in line for line in seen) and "model.m1.tensor_parallel_size=8" in overrides


def test_a_single_gpu_70b_names_tensor_parallel():
    message = refusal(PAPER + ["model.m1.gpus=1", "model.m1.tensor_parallel_size=1", "finetune=qlora"])
    assert_one_line(message, "inference=vllm of llama3_1_70b", "inference.gpu_memory_utilization=0.85",
                    "model.m1.tensor_parallel_size=4 model.m1.gpus=4 (fits")


def test_measured_gpu_memory_replaces_the_configured_value():
    message = refusal(PAPER, measured_gb=40.0)
    assert_one_line(message, "of 40 GB (model.m1.gpus; memory measured on this machine's GPUs)")
    check_memory_fit(compose_cfg(PAPER + ["model.m1.gpu_memory_gb=40", "model.m2.gpu_memory_gb=40"]), measured_gb=141)


def test_nothing_fits_says_so():
    message = refusal(PAPER + ["model.m1.gpu_memory_gb=8"])
    assert_one_line(message, "no lighter setting fits up to 8 GPUs", "model.m1.gpu_memory_gb")


def test_the_merge_is_judged_where_one_runs():
    cfg = compose_cfg(PAPER + ["experiment=behavior_shift"])
    memory_fit._check_merge(cfg, "m1", Gpus(4, 80.0, "test"))
    with pytest.raises(ValueError, match=r"merging the adapter of llama3_1_70b .* use model\.m1\.gpus=4 \(fits"):
        memory_fit._check_merge(cfg, "m1", Gpus(1, 80.0, "model.m1.gpus, model.m1.gpu_memory_gb"))
    assert memory_fit._merges_on_gpu(cfg)
    assert not memory_fit._merges_on_gpu(compose_cfg(PAPER))  # vLLM serves the adapter as a LoRARequest
    assert memory_fit._merges_on_gpu(compose_cfg(PAPER + ["inference.lora_serving=merge"]))


def test_an_experiment_without_finetuning_is_not_judged_on_it():
    check_memory_fit(compose_cfg(PAPER + ["finetune=full", "experiment=untrained_self"]), measured_gb=None)


def test_the_demo_and_unsized_models_are_never_refused():
    check_memory_fit(compose_cfg([]), measured_gb=None)  # CPU-sized, no GPU here: runs on the CPU
    check_memory_fit(compose_cfg(["finetune=full", "inference=hf"]), measured_gb=80.0)  # tiny on a GPU fits
    check_memory_fit(compose_cfg(PAPER + ["finetune=full", "model.m1.params_b=null", "model.m2.params_b=null"]),
                     measured_gb=None)


# --- measuring the GPUs ----------------------------------------------------------------------------
def test_measuring_needs_visible_gpus_and_nvml(monkeypatch):
    import introspection.core.devices as devices

    monkeypatch.setattr(devices, "visible_devices", lambda: [])
    assert measured_gpu_gb() is None

    totals = {2: 85_520_809_984, 3: 42_949_672_960}

    class Info:
        def __init__(self, total):
            self.total = total

    nvml = types.SimpleNamespace(NVMLError=RuntimeError, nvmlInit=lambda: None, nvmlShutdown=lambda: None,
                                 nvmlDeviceGetHandleByIndex=lambda i: i, nvmlDeviceGetHandleByUUID=lambda u: 3,
                                 nvmlDeviceGetMemoryInfo=lambda h: Info(totals[h]))
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setattr(devices, "visible_devices", lambda: ["2"])
    assert measured_gpu_gb() == pytest.approx(85.52, abs=0.01)
    monkeypatch.setattr(devices, "visible_devices", lambda: ["2", "GPU-abc"])  # the smallest GPU counts
    assert measured_gpu_gb() == pytest.approx(42.95, abs=0.01)

    def broken():
        raise RuntimeError("driver not loaded")

    monkeypatch.setattr(nvml, "nvmlInit", broken)
    assert measured_gpu_gb() is None
