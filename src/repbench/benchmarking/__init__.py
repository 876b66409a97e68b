"""The bench layer: latency cells over backbones, encoders and retrieval, measured with repbench.telemetry.

It sits above the encoders and retrieval (it drives them) and below analysis and report (which read
its JSON); telemetry below it only measures (timers, NVML, CPU, GPU, environment).
"""
