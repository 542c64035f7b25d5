"""The committed extraction script reads vLLM's argument definitions the way vLLM builds its parser: checked on a
small wheel written here in vLLM's own shapes (the real one is 430 MB and needs the network), and the vendored
facts for 0.19.0 hold what vLLM's source at those lines defines."""

from __future__ import annotations

import zipfile

from gitops.vllm_facts import facts
from gitops.vllm_facts.extract import extract

FILES = {
    "vllm/config/model.py": '''
from typing import Literal
QuantizationMethods = Literal["awq", "gptq"]
@config
class ModelConfig:
    model: str = "m"
    quantization: QuantizationMethods | str | None = None
    enforce_eager: bool = False
    max_model_len: int = Field(default=None)
''',
    "vllm/config/cache.py": '''
CacheDType = Literal["auto", "fp8"]
@config
class CacheConfig:
    cache_dtype: CacheDType = "auto"
    gpu_memory_utilization: float = 0.9
''',
    "vllm/engine/arg_utils.py": '''
class EngineArgs:
    @staticmethod
    def add_cli_args(parser):
        model_kwargs = get_kwargs(ModelConfig)
        g = parser.add_argument_group()
        g.add_argument("--model", **model_kwargs["model"])
        g.add_argument("--quantization", "-q", **model_kwargs["quantization"])
        g.add_argument("--enforce-eager", **{**model_kwargs["enforce_eager"], "default": None})
        g.add_argument("--max-model-len", **model_kwargs["max_model_len"])
        cache_kwargs = get_kwargs(CacheConfig)
        g.add_argument("--kv-cache-dtype", **cache_kwargs["cache_dtype"])
        g.add_argument("--gpu-memory-utilization", **cache_kwargs["gpu_memory_utilization"])
        g.add_argument("--old-flag", type=int, deprecated=True)
        return parser
    @staticmethod
    def get_batch_defaults(world_size):
        device_memory = current_platform.get_device_total_memory()
        if device_memory >= 64 * GiB_bytes and "v100" not in device_name and "t4" not in device_name:
            default_max_num_batched_tokens = {
                UsageContext.LLM_CLASS: 16384,
                UsageContext.OPENAI_API_SERVER: 4096,
            }
            default_max_num_seqs = {UsageContext.LLM_CLASS: 512, UsageContext.OPENAI_API_SERVER: 768}
        else:
            default_max_num_batched_tokens = {UsageContext.OPENAI_API_SERVER: 1024}
            default_max_num_seqs = {UsageContext.OPENAI_API_SERVER: 128}
        if current_platform.is_tpu():
            default_max_num_seqs = {UsageContext.OPENAI_API_SERVER: 1}
        return default_max_num_batched_tokens, default_max_num_seqs
''',
    "vllm/entrypoints/openai/cli_args.py": '''
class BaseFrontendArgs:
    lora_modules: list[str] | None = None
    @classmethod
    def add_cli_args(cls, parser):
        for key, value in frontend_kwargs.items():
            frontend_group.add_argument(*extra_flags, f"--{key.replace('_', '-')}", **value)
class FrontendArgs(BaseFrontendArgs):
    port: int = 8000
    uvicorn_log_level: Literal["info", "debug"] = "info"
def make_arg_parser(parser):
    parser.add_argument("model_tag", type=str, nargs="?")
    parser.add_argument("--headless", action="store_true", default=False)
    return parser
''',
    "vllm/entrypoints/cli/serve.py": '''
def subparser_init(self, subparsers):
    serve_parser.add_argument("--grpc", action="store_true")
def cmd(args):
    if args.api_server_count is None:
        if is_external_lb:
            args.api_server_count = 1
        elif is_hybrid_lb:
            args.api_server_count = args.data_parallel_size_local or 1
        else:
            args.api_server_count = args.data_parallel_size * 2
''',
    "vllm/utils/argparse_utils.py": '''
def parse_args(self, args=None):
    logger.warning(
        "With `vllm serve`, you should provide the model as a "
        "positional argument or in a config file instead of via "
    )
''',
    "vllm/model_executor/layers/quantization/__init__.py": '''
QuantizationMethods = Literal[
    "awq",
    "fp8",
]
DEPRECATED_QUANTIZATION_METHODS = ["fp_quant"]
''',
    "vllm/utils/torch_utils.py": '''
MODELOPT_TO_VLLM_KV_CACHE_DTYPE_MAP = {
    "fp8": "fp8_e4m3",
    "nvfp4": "fp4",
}
def get_kv_cache_quant_algo_string(quant_cfg):
    quant_method = quant_cfg.get("quant_method", "")
    if quant_method.startswith("modelopt"):
        return MODELOPT_TO_VLLM_KV_CACHE_DTYPE_MAP[quant_cfg["kv_cache_quant_algo"].lower()]
    return None
def resolve_kv_cache_dtype_string(kv_cache_dtype, model_config):
    if kv_cache_dtype != "auto":
        return kv_cache_dtype
    return get_kv_cache_quant_algo_string(model_config.hf_config.quantization_config) or "auto"
''',
}


def test_extract_reads_flags_kinds_negations_choices_and_lines(tmp_path):
    wheel = tmp_path / "vllm-9.9.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in FILES.items():
            z.writestr(name, text)
    f = extract(wheel, "9.9.9")
    flags = f["flags"]
    assert f["positional_model"] == {"name": "model_tag", "file": "vllm/entrypoints/openai/cli_args.py", "line": 12}
    assert flags["--quantization"]["kind"] == "choice" and flags["--quantization"]["open"] is True
    assert flags["--quantization"]["aliases"] == ["-q"] and flags["--quantization"]["line"] == 8
    assert flags["--enforce-eager"]["kind"] == "bool" and flags["--no-enforce-eager"]["of"] == "--enforce-eager"
    assert flags["--kv-cache-dtype"] == {**flags["--kv-cache-dtype"], "kind": "choice", "choices": ["auto", "fp8"],
                                         "open": False}
    assert flags["--max-model-len"]["kind"] == "int" and flags["--gpu-memory-utilization"]["kind"] == "float"
    assert flags["--old-flag"]["deprecated"] is True and flags["--headless"]["kind"] == "flag"
    assert flags["--grpc"]["file"] == "vllm/entrypoints/cli/serve.py"
    assert flags["--port"]["kind"] == "int" and flags["--uvicorn-log-level"]["choices"] == ["debug", "info"]
    assert flags["--lora-modules"]["kind"] == "list"  # inherited from BaseFrontendArgs
    assert "--no-port" not in flags
    assert f["quantization_methods"]["values"] == ["awq", "fp8"]
    assert f["deprecated_usage"]["--model"]["line"] == 5
    # the OpenAI server's column of the branch on device memory and name; the TPU override is another branch
    assert f["batch_defaults"] == {
        "file": "vllm/engine/arg_utils.py", "line": 19, "usage_context": "OPENAI_API_SERVER",
        "large": {"min_memory_gib": 64, "name_excludes": ["v100", "t4"], "max_num_batched_tokens": 4096,
                  "max_num_seqs": 768},
        "other": {"max_num_batched_tokens": 1024, "max_num_seqs": 128}}
    assert f["api_server_count"] == {"file": "vllm/entrypoints/cli/serve.py", "line": 11,
                                     "default": "args.data_parallel_size * 2"}
    assert f["kv_cache_auto"] == {"file": "vllm/utils/torch_utils.py", "line": 11, "quant_method_prefixes": ["modelopt"],
                                  "names": {"fp8": "fp8_e4m3", "nvfp4": "fp4"}, "names_line": 2}


def test_vendored_facts_hold_vllm_0_19_serve_flags():
    f = facts()
    flags = f["flags"]
    for flag in ("--served-model-name", "--tensor-parallel-size", "--pipeline-parallel-size", "--max-model-len",
                 "--max-num-seqs", "--max-num-batched-tokens", "--gpu-memory-utilization", "--kv-cache-dtype",
                 "--enable-prefix-caching", "--no-enable-prefix-caching", "--enable-chunked-prefill",
                 "--no-enable-chunked-prefill", "--quantization", "--port"):
        assert flag in flags, flag
    assert flags["--tensor-parallel-size"]["aliases"] == ["-tp"]
    assert f["positional_model"]["name"] == "model_tag"
    assert {"awq", "gptq", "compressed-tensors", "fp8", "mxfp4"} <= set(f["quantization_methods"]["values"])
    assert len(flags) > 200


def test_planner_batch_defaults_and_auto_kv_rule_are_the_vendored_vllm_facts():
    """planner.memory is pure and keeps vLLM's batch defaults as constants: they must be the ones extracted from the
    pinned release. Its rule for `--kv-cache-dtype auto` (fp8/fp4 checkpoints hold fp8 entries) rests on vLLM adopting
    a ModelOpt config's kv_cache_quant_algo, whose FP8 maps to an fp8 cache dtype."""
    from planner import memory

    b = facts()["batch_defaults"]
    assert b["usage_context"] == "OPENAI_API_SERVER"
    assert b["large"] == {"min_memory_gib": memory.LARGE_BATCH_MIN_GIB,
                          "name_excludes": list(memory.LARGE_BATCH_NAME_EXCLUDES), **memory.LARGE_BATCH_DEFAULTS}
    assert b["other"] == memory.OTHER_BATCH_DEFAULTS
    kv = facts()["kv_cache_auto"]
    assert kv["quant_method_prefixes"] == ["modelopt"] and kv["names"]["fp8"].startswith("fp8")
