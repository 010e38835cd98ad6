"""A latency model of the triton kernel from its compiled code: estimates, not measurements.

No GPU has run the kernel yet, so its speed is read from the sm_90 build
(`gpu_profile.py`: Triton's compiler and ptxas on the CPU). The model:
1. In-order issue over the SASS of the common path (`sass.walk`): an instruction issues one
   cycle after the one before it, and not before its source registers are ready; a
   result is ready after its class's latency (LATENCIES, two scenarios); a barrier holds
   the next issue for its cost; tensor-core instructions also wait for the pipe; an async
   copy (LDGSTS, L2 to shared memory) arrives after an L2 load's latency, and a DEPBAR.LE
   SB0, N waits until all but the N most recent committed groups (LDGDEPBAR) arrived.
   A sample is the sample loop's common path issued in order, the layer loop walked
   once per layer: an async copy issued in one pass (a pipelined loop copies the next
   layer's operands) arrives while the pass computes, and the first layer waits for the
   copies issued before the loop.
2. One stream: a program (16 slots, one SM) makes clock / cycles-per-sample samples/s,
   where a sample takes at least the instructions one scheduler issues for its warps
   (num_warps / 4 of them: more warps hide latency but share the issue slots).
3. Many streams: n programs over the GPU's SMs, P = ceil(n / SMs) per SM (at most what
   registers, shared memory and warps allow). With P programs an SM's schedulers
   interleave them: a sample takes max(latency, P x issued instructions, P x tensor-core
   time); and all programs together read their weights from L2 at most at its bandwidth.
   Streams at real time: 16 x the most programs whose streams keep the sample rate.
The constants are spec-sheet clocks and published microbenchmark ranges (docs/
triton-kernel.md, "Speed, estimated"); the two scenarios bracket them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from wavenet_core.bench.sass import Instruction

# result latencies in cycles (dependent issue), per scenario: "fast" (near L2 slice, quick
# barrier) and "slow" (far L2 slice, slow barrier)
LATENCIES = {
    "fast": dict(global_load=230, shared_load=30, local_load=35, mma=33, mma_interval=8,
                 special=20, convert=10, control=20, alu=4, barrier=20),
    "slow": dict(global_load=330, shared_load=34, local_load=40, mma=36, mma_interval=10,
                 special=24, convert=14, control=25, alu=6, barrier=40),
}


@dataclass(frozen=True)
class Device:
    name: str
    sms: int
    clock_ghz: tuple[float, float]   # sustained under load (slow), max boost (fast)
    l2_bytes_per_s: float            # L2 read bandwidth, all SMs together
    registers: int = 65536           # per SM
    shared_bytes: int = 233472       # per SM (228 KiB; 227 KiB per block)
    max_warps: int = 64


DEVICES = {
    "H100": Device("H100 SXM (132 SMs)", 132, (1.755, 1.98), 5.5e12),
    "H200": Device("H200 SXM (132 SMs)", 132, (1.755, 1.98), 5.5e12),
}


def latency(i: Instruction, lat: dict) -> int:
    b = i.base
    if b == "LDG":
        return lat["global_load"]
    if b in ("LDS", "LDSM"):
        return lat["shared_load"]
    if b == "LDL":
        return lat["local_load"]
    if b in ("HMMA", "IMMA"):
        return lat["mma"]
    if b in ("MUFU", "SHFL"):
        return lat["special"]
    if b in ("I2F", "F2I", "F2F", "I2FP", "F2IP", "FRND"):
        return lat["convert"]
    if b in ("S2R", "S2UR", "LDC", "ULDC", "R2UR", "CS2R"):
        return lat["control"]
    return lat["alu"]


def issue_cycles(path: list[Instruction], lat: dict, repeat: int = 1) -> float:
    """Cycles to issue `path` `repeat` times in order (see the module docstring)."""
    ready: dict[str, float] = {}
    t = 0.0
    mma_free = 0.0
    groups: list[float] = []        # committed async-copy groups' arrival, oldest first
    open_group = 0.0
    for _ in range(repeat):
        for i in path:
            start = max([t + 1] + [ready.get(s, 0.0) for s in i.sources])
            if i.base in ("HMMA", "IMMA"):
                start = max(start, mma_free)
                mma_free = start + lat["mma_interval"]
            elif i.base == "LDGSTS":
                open_group = max(open_group, start + lat["global_load"])
            elif i.base == "LDGDEPBAR":
                groups.append(open_group)
                open_group = 0.0
            elif i.base == "DEPBAR" and i.groups is not None:
                done, groups = groups[:max(0, len(groups) - i.groups)], \
                    groups[max(0, len(groups) - i.groups):]
                start = max([start] + done)
            done = start + latency(i, lat)
            for d in i.dests:
                ready[d] = done
            t = start + lat["barrier"] if i.base == "BAR" else start
    return t


def programs_per_sm(profile: dict, device: Device) -> int:
    warps = profile["num_warps"]
    per_warp = math.ceil(profile["registers"] * 32 / 256) * 256
    by_regs = device.registers // (warps * per_warp)
    by_shared = device.shared_bytes // (profile["shared_bytes"] + 1024)
    return max(0, min(by_regs, by_shared, device.max_warps // warps))


def estimate(profile: dict, device: Device, sample_rate: int = 16000) -> dict:
    """Estimated samples/s of one stream and streams at real time, (slow, fast) each."""
    per_sm = programs_per_sm(profile, device)
    warps_per_scheduler = max(1, profile["num_warps"] // 4)
    one, streams, limits = [], [], []
    for scenario, clock in zip(("slow", "fast"), device.clock_ghz):
        cycles = profile["cycles_per_sample"][scenario]
        issued = profile["per_sample"]["instructions"] * warps_per_scheduler
        mma = profile["per_sample"]["mma"] * warps_per_scheduler * \
            LATENCIES[scenario]["mma_interval"]
        bytes_per_sample = profile["per_sample"]["global_load_bytes"] * 32 * profile["num_warps"]
        # one program: its warps share the SM's 4 schedulers, so a sample takes at
        # least the instructions each scheduler issues (more than 4 warps hide latency,
        # they do not add issue slots)
        one.append(clock * 1e9 / max(cycles, issued, mma))
        best, limit = 0, "latency"
        for n in range(1, device.sms * per_sm + 1):
            p = math.ceil(n / device.sms)
            rate = clock * 1e9 / max(cycles, p * issued, p * mma)
            bandwidth = device.l2_bytes_per_s / (n * bytes_per_sample)
            if min(rate, bandwidth) < sample_rate:
                limit = "L2 bandwidth" if bandwidth < rate else (
                    "latency" if rate == clock * 1e9 / cycles else "issue")
                break
            best = n
        else:
            limit = "occupancy"
        streams.append(best * profile["block"])
        limits.append(limit)
    return {"device": device.name, "programs_per_sm": per_sm,
            "one_stream_samples_per_s": one, "real_time_streams": streams,
            "streams_limited_by": limits}


def model_table(profiles: list[dict], devices=("H100", "H200")) -> str:
    lines = ["Static GPU profile (sm_90 build, no GPU) and the latency model's ESTIMATES "
             "(slow - fast scenario; not measured)",
             "| config | precision | regs | spill bytes | shared | instr/layer | dots/layer "
             "| barriers/layer | L2 loads/layer | L2 bytes/sample | device | est. one stream "
             "(samples/s) | est. streams at real time |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for p in profiles:
        for name in devices:
            e = estimate(p, DEVICES[name])
            layer = p["per_layer"]
            lo, hi = e["one_stream_samples_per_s"]
            s_lo, s_hi = e["real_time_streams"]
            dots = p.get("input_precision", "ieee")
            precision = p["precision"] + (f" ({dots})" if dots != "ieee" else "")
            lines.append(
                f"| {p['config']} | {precision} | {p['registers']} | {p['stack_bytes']} | "
                f"{p['shared_bytes']:,} | {layer['instructions']} | {p['dots_per_layer']} | "
                f"{layer['barriers']} | {layer['global_loads']} | "
                f"{p['per_sample']['global_load_bytes'] * 32 * p['num_warps']:,} | "
                f"{name} | {lo:,.0f} - {hi:,.0f} | {s_lo:,} - {s_hi:,} |")
    return "\n".join(lines)
