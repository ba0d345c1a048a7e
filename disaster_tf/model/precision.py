"""Numeric precision: which Keras dtype policy the network computes in, and where 16 bits pay.

`--precision=mixed_bfloat16` (or `mixed_float16`) makes the backbone's layers
compute in 16 bits while every variable, the heads, the losses, the sample
weights, the metrics and the probabilities stay float32: a sigmoid in
bfloat16 (8 bits of mantissa) would round away the small probabilities that
rare categories live on. The TF-IDF part stays float32 too (its sparse
matmul has no 16-bit kernel on CPU). `auto` takes bfloat16 where the device
has native bfloat16 arithmetic and float32 elsewhere: bench/speed.py measures
what that means on this machine's CPU, by timing the same step with oneDNN
allowed, then denied, its bfloat16 instructions.
"""

from typing import Optional, Tuple

EXPORT_PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}  # export.py --precision -> policy
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo: AMX tiles, or AVX-512 BF16 dot products


def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
  """Whether the CPU advertises native bfloat16 arithmetic (AMX or AVX512-BF16)."""
  return bool(cpu_bf16_flags(cpuinfo))


def gpu_has_bf16() -> Optional[bool]:
  """True/False for the first GPU (compute capability 8.0 or more: Ampere and later); None without a GPU."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  gpus = tf.config.list_physical_devices("GPU")
  if not gpus:
    return None
  capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
  return tuple(capability) >= (8, 0)


def cpu_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> Tuple[str, ...]:
  """Which of CPU_BF16_FLAGS the CPU advertises (none where /proc/cpuinfo cannot be read)."""
  try:
    with open(cpuinfo, encoding="utf-8") as f:
      flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
  except OSError:
    return ()
  return tuple(flag for flag in CPU_BF16_FLAGS if flag in flags)


def describe(precision: str) -> str:
  """`precision` resolved, and for "auto" why, in words for a log: "mixed_bfloat16 (auto: the CPU has amx_bf16)"."""
  policy = resolve(precision)
  if precision != "auto":
    return f"{policy} (--precision)"
  gpu = gpu_has_bf16()
  if gpu is not None:
    return f"{policy} (auto: the GPU {'computes' if gpu else 'does not compute'} bfloat16 natively)"
  found = cpu_bf16_flags()
  return f"{policy} (auto: " + (f"the CPU has {' and '.join(found)})" if found else
                                "the CPU has neither AMX nor AVX512-BF16: bfloat16 would be emulated)")


def resolve(precision: str) -> str:
  """The Keras dtype policy name for `precision` ("auto" decided by the device)."""
  if precision != "auto":
    return precision
  gpu = gpu_has_bf16()
  native = gpu if gpu is not None else cpu_has_bf16()
  return "mixed_bfloat16" if native else "float32"
