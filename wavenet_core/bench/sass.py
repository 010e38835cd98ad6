"""Read a compiled kernel's SASS (from `cuobjdump -sass`): instructions, loops, counts.

Pure text processing, so it is tested on the CPU. `parse` turns the listing into
`Instruction`s (address, predicate, opcode, destination and source registers with their
widths); `loops` finds the loops (a backward branch closes one); `walk` follows the
common path through a range (every conditional forward branch falls through, every
unconditional branch is taken: the kernel's rare paths, such as the 64-bit division's
subroutine, are branched over; an inner loop whose trip count is known, such as the
pipelined loop over a layer's channel blocks, is walked that many times). The latency
model (gpu_model.py) runs an in-order issue model over such a walk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE = re.compile(r"^\s*/\*([0-9a-f]{4,})\*/\s+(@!?U?P\w+\s+)?([A-Z0-9_.]+)\s*([^;]*);")
_REG = re.compile(r"\b(U?R\d+|U?P\d)(\.64)?\b")
NO_DEST = ("ST", "BAR", "BRA", "EXIT", "RED", "CALL", "RET", "BSSY", "BSYNC", "WARPSYNC",
           "NOP", "MEMBAR", "FENCE", "DEPBAR", "ERRBAR", "CCTL", "YIELD")


@dataclass(frozen=True)
class Instruction:
    address: int
    opcode: str                  # with its modifiers: "LDG.E.128"
    predicate: str               # "" or "P2", "!P2"
    dests: tuple[str, ...]       # registers written (expanded to their width)
    sources: tuple[str, ...]     # registers read
    target: int | None           # a branch's target address
    groups: int | None = None    # DEPBAR.LE SB0, N: wait until N async-copy groups remain

    @property
    def base(self) -> str:
        return self.opcode.split(".")[0]


def _dest_width(opcode: str) -> int:
    parts = opcode.split(".")
    if parts[0] == "HMMA":
        return 4 if parts[-1] == "F32" else 2
    if parts[0] == "LDSM":
        return int(parts[-1]) if parts[-1].isdigit() else 1
    if "128" in parts:
        return 4
    if "64" in parts or "WIDE" in parts:
        return 2
    return 1


def _expand(name: str, width: int) -> list[str]:
    if name in ("RZ", "URZ", "PT", "UPT") or width == 1:
        return [name]
    prefix = "UR" if name.startswith("UR") else "R"
    first = int(name[len(prefix):])
    return [f"{prefix}{first + i}" for i in range(width)]


def _source_widths(opcode: str, count: int) -> list[int]:
    """Register widths of an instruction's sources (HMMA: A 4, B 2, C 4 or 2)."""
    if opcode.startswith("HMMA"):
        acc = 4 if opcode.endswith("F32") else 2
        return [4, 2, acc][:count] + [1] * max(0, count - 3)
    return [1] * count


def parse(listing: str) -> list[Instruction]:
    out = []
    for line in listing.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        address, predicate, opcode, operands = m.groups()
        predicate = (predicate or "").strip().lstrip("@")
        regs = [(r, wide) for r, wide in _REG.findall(operands)]
        has_dest = not opcode.startswith(NO_DEST) and bool(regs)
        dests: list[str] = []
        if has_dest and not operands.strip().startswith("["):
            name, _ = regs.pop(0)
            dests = _expand(name, _dest_width(opcode))
        widths = _source_widths(opcode, len(regs))
        sources: list[str] = []
        for (name, wide), width in zip(regs, widths):
            sources += _expand(name, 2 if wide else width)
        if predicate:
            sources.append(predicate.lstrip("!"))
        target = None
        if opcode.startswith(("BRA", "CALL")):
            t = re.search(r"0x([0-9a-f]+)", operands)
            target = int(t.group(1), 16) if t else None
        groups = None
        if opcode.startswith("DEPBAR"):
            g = re.search(r"SB0,\s*(?:0x)?([0-9a-f]+)", operands)
            groups = int(g.group(1), 16) if g else None
        out.append(Instruction(int(address, 16), opcode, predicate, tuple(d for d in dests
                               if d not in ("RZ", "URZ", "PT", "UPT")), tuple(sources), target,
                               groups))
    return out


def loops(code: list[Instruction]) -> list[tuple[int, int]]:
    """(first, last) addresses of every loop: a branch back to an earlier address."""
    return sorted((i.target, i.address) for i in code
                  if i.base == "BRA" and i.target is not None and i.target < i.address)


def inside(code: list[Instruction], span: tuple[int, int]) -> list[Instruction]:
    return [i for i in code if span[0] <= i.address <= span[1]]


def children(code: list[Instruction], span: tuple[int, int]) -> list[tuple[int, int]]:
    """The loops directly inside `span` (inside no other loop inside it), in address order."""
    inner = [s for s in loops(code) if s != span and span[0] <= s[0] and s[1] <= span[1]]
    return [s for s in inner if not any(o != s and o[0] <= s[0] and s[1] <= o[1]
                                        for o in inner)]


def layer_loop(code: list[Instruction]) -> tuple[int, int]:
    """The layer loop: the first loop directly inside the outermost loop (the sample
    loop, which holds the head's loop after it, where it has one: in source order, as
    the compiler lays them out; the head's may be the larger)."""
    found = loops(code)
    if not found:
        raise ValueError("no loop in the SASS listing")
    outer = [s for s in found if not any(o != s and o[0] <= s[0] and s[1] <= o[1]
                                         for o in found)]
    sample = max(outer, key=lambda s: len(inside(code, s)))
    return (children(code, sample) or [sample])[0]


def sample_loop(code: list[Instruction], layers: tuple[int, int]) -> tuple[int, int]:
    """The innermost loop that holds the layer loop."""
    outer = [s for s in loops(code) if s != layers and s[0] <= layers[0] and layers[1] <= s[1]]
    if not outer:
        raise ValueError("no loop around the layer loop")
    return min(outer, key=lambda s: s[1] - s[0])


def walk(code: list[Instruction], span: tuple[int, int],
         skip: tuple[int, int] | None = None,
         trips: dict[tuple[int, int], int] | None = None) -> list[Instruction]:
    """The common path through `span` (see the module docstring), leaving out the
    instructions of `skip` (an inner loop accounted for separately) and the loop's own
    closing branch. An inner loop named in `trips` is walked that many times (its
    closing branch each time); any other inner loop once."""
    by_address = {i.address: n for n, i in enumerate(code)}
    trips = trips or {}
    n = by_address[span[0]]
    path = []
    while n < len(code) and code[n].address < span[1]:
        i = code[n]
        if skip and skip[0] <= i.address <= skip[1]:
            n = by_address[skip[1]] + 1
            continue
        inner = next((s for s in trips if s != span and s[0] == i.address), None)
        if inner is not None:
            body = walk(code, inner, trips=trips) + [code[by_address[inner[1]]]]
            path += body * trips[inner]
            n = by_address[inner[1]] + 1
            continue
        path.append(i)
        if i.base == "BRA" and not i.predicate and i.target is not None and \
                i.target > i.address:
            n = by_address.get(i.target, n + 1)
            continue
        n += 1
    return path


def mma_macs(i: Instruction) -> int:
    """Multiply-adds per thread of a tensor-core instruction, from its shape: a warp's
    HMMA.16816 (16 x 8 x 16, fp16) 64, HMMA.1688 (16 x 8 x 8: fp16, or TF32 with .TF32)
    32, HMMA.1684 16; 0 for anything else."""
    if i.base != "HMMA":
        return 0
    shape = i.opcode.split(".")[1]
    return {"16816": 64, "1688": 32, "1684": 16}.get(shape, 0)


def counts(path: list[Instruction]) -> dict[str, int]:
    """Instructions, barriers, global loads (and bytes per thread; async copies among
    them), shared loads/stores, tensor-core instructions (and their multiply-adds per
    thread; TF32 ones among them) and FMA instructions, local (spill) loads and stores of
    a path."""
    def width(i: Instruction) -> int:
        parts = i.opcode.split(".")
        return 16 if "128" in parts else 8 if "64" in parts else 2 if (
            "U16" in parts or "S16" in parts) else 1 if ("U8" in parts or "S8" in parts) else 4

    c = dict(instructions=len(path), barriers=0, global_loads=0, global_load_bytes=0,
             async_copies=0, shared_loads=0, shared_stores=0, mma=0, mma_macs=0, mma_tf32=0,
             ffma=0, local_loads=0, local_stores=0)
    for i in path:
        b = i.base
        if b == "BAR":
            c["barriers"] += 1
        elif b in ("LDG", "LDGSTS"):          # LDGSTS: an async copy, L2 to shared
            c["global_loads"] += 1
            c["global_load_bytes"] += width(i)
            c["async_copies"] += b == "LDGSTS"
        elif b in ("LDS", "LDSM"):
            c["shared_loads"] += 1
        elif b == "STS":
            c["shared_stores"] += 1
        elif b in ("HMMA", "HGMMA", "IMMA"):
            c["mma"] += 1
            c["mma_macs"] += mma_macs(i)
            c["mma_tf32"] += i.opcode.endswith(".TF32")
        elif b == "FFMA":
            c["ffma"] += 1
        elif b == "LDL":
            c["local_loads"] += 1
        elif b == "STL":
            c["local_stores"] += 1
    return c
