# lit configuration for qopt: IR tests (.mlir), diagnostics, and end-to-end tests (.test) that compile and run real
# models. Substitutions: %qopt, %qopt-opt, %qrun, %qopt-gpu-kernel-check, %nvrtc-cache, %qopt-cache, %qopt-fuzz-TARGET,
# %fuzz (the fuzz/ sources), %python (Debian's python3 with onnx and numpy), %models (the shipped models and
# checkpoints), %data (calibration and evaluation text), %build (this build tree), %cmake and %cmake-consumer (cmake
# configured like this build, for out-of-tree consumer projects).
import os

import lit.formats
from lit.llvm import llvm_config

config.name = "qopt"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.qopt_obj_root, "test")
config.excludes = ["unit", "lit.cfg.py", "e2e/reference", "Inputs", "compare.py", "check_export.py", "versions.txt", "opt-consumer",
                   "runtime-consumer"]

llvm_config.use_default_substitutions()
config.substitutions.append(("%qopt-gpu-kernel-check", os.path.join(config.qopt_tools_dir, "qopt-gpu-kernel-check")))
# qopt's NVRTC image cache (lib/Codegen's defaultCudaCacheDir; lit passes no HOME to tests): kernel compile tests
# share it across runs and builds (the sanitized one too), a cached image being one that compiled before.
# %qopt-cache is the QOPT_CACHE_DIR under which qopt finds that cache (%nvrtc-cache = %qopt-cache/cuda): tests
# whose compiles are not about the cache take their images from it.
if os.environ.get("QOPT_CACHE_DIR"):
    qopt_cache = os.environ["QOPT_CACHE_DIR"]
elif os.environ.get("XDG_CACHE_HOME"):
    qopt_cache = os.path.join(os.environ["XDG_CACHE_HOME"], "qopt")
elif os.environ.get("HOME"):
    qopt_cache = os.path.join(os.environ["HOME"], ".cache", "qopt")
else:
    qopt_cache = os.path.join(config.qopt_obj_root, "qopt-cache")
config.substitutions.append(("%nvrtc-cache", os.path.join(qopt_cache, "cuda")))
config.substitutions.append(("%qopt-cache", qopt_cache))
config.substitutions.append(("%qopt-onnx-test", os.path.join(config.qopt_tools_dir, "qopt-onnx-test")))
config.substitutions.append(("%qopt-opt", os.path.join(config.qopt_tools_dir, "qopt-opt")))
config.substitutions.append(("%qopt", os.path.join(config.qopt_tools_dir, "qopt")))
config.substitutions.append(("%qrun", os.path.join(config.qopt_tools_dir, "qrun")))
config.substitutions.append(("%qrt-bitflip", os.path.join(config.qopt_tools_dir, "qrt-bitflip")))
for target in ["onnx", "model", "tokenizer", "npy"]:
    config.substitutions.append((f"%qopt-fuzz-{target}", os.path.join(config.qopt_tools_dir, f"qopt-fuzz-{target}")))
config.substitutions.append(("%fuzz", os.path.join(config.qopt_src_root, "fuzz")))
config.substitutions.append(("%python", config.python))
config.substitutions.append(("%models", os.path.join(config.qopt_src_root, "models")))
config.substitutions.append(("%scripts", os.path.join(config.qopt_src_root, "scripts")))
config.substitutions.append(("%data", os.path.join(config.qopt_src_root, "data")))
# %evaltext: the evaluation text the end-to-end tests measure perplexity on. Under sanitizers (`sanitized`: ASan and
# UBSan make the CPU kernels ~10x slower) it is the first 20 KB of eval.txt and the tests skip their quality
# assertions (`%if !sanitized`), which the plain build checks: the sanitized suite looks for memory and undefined-
# behaviour errors, and the first windows run the same code as the rest.
eval_text = os.path.join(config.qopt_src_root, "data", "tinystories", "eval.txt")
if "-fsanitize=" in config.cxx_flags:
    config.available_features.add("sanitized")
    os.makedirs(config.test_exec_root, exist_ok=True)
    with open(eval_text, "rb") as f:
        head = f.read(20000)
    eval_text = os.path.join(config.test_exec_root, "eval-20k.txt")
    with open(eval_text, "wb") as f:
        f.write(head)
config.substitutions.append(("%evaltext", eval_text))
config.substitutions.append(("%testroot", config.test_source_root))
config.substitutions.append(("%build", config.qopt_obj_root))
# Out-of-tree consumers (test/embedding) are configured with the compilers, flags (e.g. sanitizers) and build type
# of this build.
config.substitutions.append(("%cmake-consumer", f"{config.cmake} -G Ninja -DCMAKE_C_COMPILER={config.c_compiler} "
                                                 f"-DCMAKE_CXX_COMPILER={config.cxx_compiler} "
                                                 f"-DCMAKE_BUILD_TYPE={config.build_type} "
                                                 f"'-DCMAKE_C_FLAGS={config.c_flags}' "
                                                 f"'-DCMAKE_CXX_FLAGS={config.cxx_flags}' "
                                                 f"'-DCMAKE_EXE_LINKER_FLAGS={config.exe_linker_flags}'"))
config.substitutions.append(("%cmake", config.cmake))
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
if "QOPT_CACHE" in os.environ:
    config.environment["QOPT_CACHE"] = os.environ["QOPT_CACHE"]
if "HOME" in os.environ:
    config.environment["HOME"] = os.environ["HOME"]
if os.environ.get("QOPT_SKIP_STORIES15M"):
    config.available_features.add("no-stories15m")
# NVRTC (a CUDA toolkit) for --target=cuda code generation; a GPU driver for running it (test/gpu holds the GPU
# checks, run by scripts/test-gpu.sh on a GPU machine).
if config.qopt_have_nvrtc in ("ON", "1", "TRUE"):
    config.available_features.add("nvrtc")
import ctypes
try:
    ctypes.CDLL("libcuda.so.1")
    config.available_features.add("cuda-driver")
except OSError:
    pass
