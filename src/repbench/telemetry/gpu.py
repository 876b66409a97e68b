"""GPU environment capture for result headers (docs/methodology.md rule 11), from NVML and torch."""

from __future__ import annotations

import os
from typing import Any

from repbench.telemetry.nvml import CLOCK_MEM, CLOCK_SM, NvmlDevice, load_nvml, reason_names


def _torch_cuda() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"torch_cuda_available": False}
    out: dict[str, Any] = {
        "torch_cuda_available": bool(torch.cuda.is_available()),
        "cuda_runtime_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }
    return out


def _torch_props(index: int) -> dict[str, Any]:
    try:
        import torch

        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            return {}
        p = torch.cuda.get_device_properties(index)
        return {
            "torch_index": index,
            "torch_name": p.name,
            "torch_uuid": str(getattr(p, "uuid", "")) or None,
            "compute_capability": f"{p.major}.{p.minor}",
            "sm_count": p.multi_processor_count,
            "total_memory_bytes": int(p.total_memory),
        }
    except Exception:
        return {}


def _device_facts(dev: NvmlDevice) -> dict[str, Any]:
    c = dev.call
    mem = c("nvmlDeviceGetMemoryInfo")
    pci = c("nvmlDeviceGetPciInfo")
    cc = c("nvmlDeviceGetCudaComputeCapability")
    mig = c("nvmlDeviceGetMigMode")
    ecc = c("nvmlDeviceGetEccMode")
    power_limit = c("nvmlDeviceGetEnforcedPowerLimit")
    if power_limit is None:
        power_limit = c("nvmlDeviceGetPowerManagementLimit")
    mask = dev.throttle_mask()
    facts = {
        "nvml_index": dev.index,
        "name": _to_str(c("nvmlDeviceGetName")),
        "uuid": _to_str(c("nvmlDeviceGetUUID")),
        "pci_bus_id": _to_str(getattr(pci, "busId", None)) if pci is not None else None,
        "compute_capability": f"{cc[0]}.{cc[1]}" if cc is not None else None,
        "total_memory_bytes": int(mem.total) if mem is not None else None,
        "sm_clock_mhz": c("nvmlDeviceGetClockInfo", CLOCK_SM),
        "mem_clock_mhz": c("nvmlDeviceGetClockInfo", CLOCK_MEM),
        "sm_clock_max_mhz": c("nvmlDeviceGetMaxClockInfo", CLOCK_SM),
        "mem_clock_max_mhz": c("nvmlDeviceGetMaxClockInfo", CLOCK_MEM),
        "power_limit_w": power_limit / 1000.0 if power_limit is not None else None,
        "persistence_mode": c("nvmlDeviceGetPersistenceMode"),
        "mig_mode_current": mig[0] if mig is not None else None,
        "ecc_mode_current": ecc[0] if ecc is not None else None,
        "temperature_c": dev.temperature_c(),
        "throttle_reasons": mask,
        "throttle_reason_names": reason_names(mask),
    }
    procs = dev.processes()
    facts["foreign_processes"] = None if procs is None else sorted(p for p, _ in procs if p != os.getpid())
    return facts


def _to_str(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def gpu_environment(module: Any = None) -> dict[str, Any] | None:
    """Driver, CUDA and per-GPU facts, or None without NVML or a GPU (CPU-only machine)."""
    nvml, _reason = load_nvml(module)
    if nvml is None:
        return None
    driver = nvml.nvmlSystemGetDriverVersion() if hasattr(nvml, "nvmlSystemGetDriverVersion") else None
    cuda_driver = None
    if hasattr(nvml, "nvmlSystemGetCudaDriverVersion"):
        try:
            v = int(nvml.nvmlSystemGetCudaDriverVersion())
            cuda_driver = f"{v // 1000}.{(v % 1000) // 10}"
        except Exception:
            cuda_driver = None
    devices = []
    for i in range(nvml.nvmlDeviceGetCount()):
        dev = NvmlDevice(nvml, nvml.nvmlDeviceGetHandleByIndex(i), i)
        facts = _device_facts(dev)
        # torch and NVML indices agree only under CUDA_DEVICE_ORDER=PCI_BUS_ID; join on UUID instead.
        facts.update({"torch_index": None, "sm_count": None, "cuda_cores": dev.call("nvmlDeviceGetNumGpuCores")})
        for j in range(16):
            tp = _torch_props(j)
            if not tp:
                break
            if tp.get("torch_uuid") and facts["uuid"] and facts["uuid"].endswith(tp["torch_uuid"]):
                facts.update({"torch_index": j, "sm_count": tp["sm_count"]})
                break
        devices.append(facts)
    return {
        "driver_version": _to_str(driver),
        "cuda_driver_version": cuda_driver,
        "cuda_device_order": os.environ.get("CUDA_DEVICE_ORDER"),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        **_torch_cuda(),
        "devices": devices,
    }
