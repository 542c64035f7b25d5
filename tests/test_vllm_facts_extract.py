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
