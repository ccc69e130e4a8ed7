"""Reader for Li & Lim PDPTW benchmark files (format: shared/bench-data/li_lim/README.md).

Line 1 is `vehicles capacity speed` (speed ignored); then one row per node,
`id x y demand ready due service pickup_idx delivery_idx`, node 0 being the depot.
Travel time = distance = Euclidean distance.

Times are scaled by `TIME_SCALE` to integer model seconds, and travel times are rounded *up*:
every model arrival is then no earlier than the exact one, so a plan feasible in the integer
model is feasible with exact real-valued distances (the converse can fail by at most
1/TIME_SCALE time unit per leg). Reported distances come from the unrounded `dist` matrix.
"""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import numpy as np

from routing.model import Pair, Problem, Task, Vehicle

__all__ = ["TIME_SCALE", "LiLimFormatError", "LiLimInstance", "parse_lilim", "read_lilim"]

TIME_SCALE = 100  # model seconds per Li & Lim time unit; coordinates have <= 2 decimals of slack


class LiLimFormatError(ValueError):
    """A Li & Lim file that cannot be parsed; `line_no` is 1-based (0 when not line-specific)."""

    def __init__(self, source: str, line_no: int, reason: str) -> None:
        self.source = source
        self.line_no = line_no
        self.reason = reason
        where = f"{source}:{line_no}" if line_no else source
        super().__init__(f"{where}: {reason}")

    def __reduce__(self) -> tuple[type[LiLimFormatError], tuple[str, int, str]]:
        # Picklable, so the error survives a process pool (the benchmark's --jobs).
        return (type(self), (self.source, self.line_no, self.reason))


class LiLimInstance(msgspec.Struct, frozen=True, kw_only=True):
    """The parsed file (raw, unscaled values) and the problem built from it."""

    name: str
    n_vehicles: int
    capacity: int
    xy: tuple[tuple[float, float], ...]  # per node, depot first
    problem: Problem


def read_lilim(path: str | Path) -> LiLimInstance:
    """Parse a Li & Lim file; raises `LiLimFormatError` (a ValueError) with the line number."""
    p = Path(path)
    try:
        text = p.read_text(encoding="ascii")
    except UnicodeDecodeError as exc:
        raise LiLimFormatError(str(p), 0, "not an ASCII text file") from exc
    return parse_lilim(text, name=p.stem, source=str(p))


def parse_lilim(text: str, *, name: str = "", source: str = "<string>") -> LiLimInstance:
    """Parse the text of a Li & Lim file (see `read_lilim`)."""
    rows: list[tuple[int, list[str]]] = [
        (no, line.split()) for no, line in enumerate(text.splitlines(), start=1) if line.strip()
    ]
    if not rows:
        raise LiLimFormatError(source, 0, "empty file")

    header_no, header = rows[0]
    if len(header) != 3:
        raise LiLimFormatError(source, header_no, "expected 'vehicles capacity speed'")
    n_vehicles, capacity = (_int(source, header_no, f) for f in header[:2])
    # The speed field is parsed but ignored: the benchmark defines travel time = distance, and
    # ten of the published files carry 0 there.
    _number(source, header_no, header[2])
    if n_vehicles <= 0 or capacity <= 0:
        raise LiLimFormatError(source, header_no, "vehicles and capacity must be positive")

    nodes: list[tuple[int, float, float, int, int, int, int, int, int]] = []
    line_of: list[int] = []
    for no, fields in rows[1:]:
        if len(fields) != 9:
            raise LiLimFormatError(source, no, f"expected 9 fields, got {len(fields)}")
        node_id = _int(source, no, fields[0])
        if node_id != len(nodes):
            raise LiLimFormatError(source, no, f"expected node id {len(nodes)}, got {node_id}")
        x, y = _number(source, no, fields[1]), _number(source, no, fields[2])
        demand, ready, due, service, pick, deliv = (_int(source, no, f) for f in fields[3:])
        if ready > due or service < 0:
            raise LiLimFormatError(source, no, f"bad window [{ready}, {due}] or service")
        nodes.append((node_id, x, y, demand, ready, due, service, pick, deliv))
        line_of.append(no)
    if len(nodes) < 3:
        raise LiLimFormatError(source, 0, "need a depot and at least one pickup/delivery pair")

    if nodes[0][3] != 0 or nodes[0][7] != 0 or nodes[0][8] != 0:
        raise LiLimFormatError(source, line_of[0], "the depot needs demand 0 and no partner")
    n = len(nodes)
    pairs: list[Pair] = []
    for node_id, _x, _y, demand, _r, _d, _s, pick, deliv in nodes[1:]:
        no = line_of[node_id]
        if (pick == 0) == (deliv == 0):
            raise LiLimFormatError(source, no, "exactly one of pickup_idx/delivery_idx must be 0")
        partner = deliv or pick
        if not 0 < partner < n:
            raise LiLimFormatError(source, no, f"partner node {partner} does not exist")
        back = nodes[partner][7] if deliv else nodes[partner][8]
        if back != node_id or nodes[partner][3] != -demand:
            raise LiLimFormatError(source, no, f"node {partner} is not this node's partner")
        if deliv:
            if demand < 0:
                raise LiLimFormatError(source, no, "a pickup must have demand >= 0")
            pairs.append(Pair(pickup_id=node_id, delivery_id=deliv))

    xy = np.array([(x, y) for _, x, y, *_rest in nodes], dtype=np.float64)
    dist = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))
    # The 1e-9 keeps exact integers (e.g. a 3-4-5 leg) from rounding up by float noise.
    travel_s = np.ceil(dist * TIME_SCALE - 1e-9).astype(np.int64)
    depot = nodes[0]
    tasks = tuple(
        Task(
            id=node_id,
            location=node_id,
            demand=demand,
            ready_s=ready * TIME_SCALE,
            due_s=due * TIME_SCALE,
            service_s=service * TIME_SCALE,
        )
        for node_id, _x, _y, demand, ready, due, service, _p, _d in nodes[1:]
    )
    vehicles = tuple(
        Vehicle(
            id=k,
            start=0,
            end=0,
            shift_start_s=depot[4] * TIME_SCALE,
            shift_end_s=depot[5] * TIME_SCALE,
            capacity=capacity,
        )
        for k in range(n_vehicles)
    )
    problem = Problem(
        travel_s=travel_s, dist=dist, tasks=tasks, pairs=tuple(pairs), vehicles=vehicles, name=name
    )
    return LiLimInstance(
        name=name,
        n_vehicles=n_vehicles,
        capacity=capacity,
        xy=tuple((float(x), float(y)) for x, y in xy),
        problem=problem,
    )


def _int(source: str, line_no: int, field: str) -> int:
    value = _number(source, line_no, field)
    if not value.is_integer():
        raise LiLimFormatError(source, line_no, f"expected an integer, got {field!r}")
    return int(value)


def _number(source: str, line_no: int, field: str) -> float:
    try:
        value = float(field)
    except ValueError:
        raise LiLimFormatError(source, line_no, f"not a number: {field!r}") from None
    if not math.isfinite(value):
        raise LiLimFormatError(source, line_no, f"not a finite number: {field!r}")
    return value
