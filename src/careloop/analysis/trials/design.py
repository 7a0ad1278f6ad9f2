"""Design and concealed allocation of a rapid-cycle randomised test.

:class:`TrialDesign` holds the arms, the unit of randomisation and the
allocation (simple, permuted blocks, stratified) from a seed; the sequence is
a pure function of the seed, the stratum and the unit's position in it, so it
can be stored and audited, while :meth:`Allocator.assign` reveals one
allocation at a time (concealment). :meth:`Allocator.to_dict` and
:meth:`Allocator.from_dict` store the design and the allocations made.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from careloop.core.errors import InputError, IntegrityFailure

__all__ = [
    "Allocation",
    "Allocator",
    "Assignment",
    "TrialDesign",
    "Unit",
]

Unit = Literal["patient", "clinician", "site", "day"]
Allocation = Literal["simple", "blocks", "stratified"]
_UNITS = ("patient", "clinician", "site", "day")
_ALLOCATIONS = ("simple", "blocks", "stratified")


@dataclass(frozen=True)
class TrialDesign:
    """What is randomised, to which arms, and how; with the seed the sequence comes from."""

    name: str
    """Short name of the test, e.g. ``"sepsis-card-wording"``."""
    arms: tuple[str, ...]
    """Arm labels; the first is the comparator (usual care / control)."""
    seed: int
    """Seed of the allocation sequence (store it; do not show it to recruiters)."""
    unit: Unit = "patient"
    """Unit of randomisation."""
    allocation: Allocation = "blocks"
    """``simple`` (independent draws), ``blocks`` (permuted blocks) or
    ``stratified`` (permuted blocks within each stratum)."""
    ratio: tuple[int, ...] = ()
    """Allocation ratio per arm (default 1:1:…)."""
    block_multiples: tuple[int, ...] = (1, 2)
    """Block sizes as multiples of ``sum(ratio)``, chosen at random per block
    (varying sizes keep the next allocation hard to guess)."""
    strata: tuple[str, ...] = ()
    """Names of the stratification factors (``stratified`` only)."""

    def __post_init__(self) -> None:
        if len(self.arms) < 2 or len(set(self.arms)) != len(self.arms):
            raise InputError("A trial needs at least two arms with distinct names.")
        if self.unit not in _UNITS:
            raise InputError(
                f"Unknown unit of randomisation {self.unit!r}: use {', '.join(_UNITS)}."
            )
        if self.allocation not in _ALLOCATIONS:
            raise InputError(
                f"Unknown allocation {self.allocation!r}: use {', '.join(_ALLOCATIONS)}."
            )
        if not self.ratio:
            object.__setattr__(self, "ratio", tuple(1 for _ in self.arms))
        if len(self.ratio) != len(self.arms) or any(int(r) < 1 for r in self.ratio):
            raise InputError("The allocation ratio needs one positive integer per arm.")
        if not self.block_multiples or any(int(m) < 1 for m in self.block_multiples):
            raise InputError("Block multiples must be positive integers.")
        if self.allocation == "stratified" and not self.strata:
            raise InputError("A stratified allocation needs the names of its strata factors.")
        if self.allocation != "stratified" and self.strata:
            raise InputError("Strata factors are only used with allocation='stratified'.")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise InputError("The seed must be an integer.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the design."""
        return {
            "name": self.name,
            "arms": list(self.arms),
            "seed": self.seed,
            "unit": self.unit,
            "allocation": self.allocation,
            "ratio": list(self.ratio),
            "block_multiples": list(self.block_multiples),
            "strata": list(self.strata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialDesign:
        """Rebuild a design from :meth:`to_dict`."""
        try:
            return cls(
                name=str(data["name"]),
                arms=tuple(data["arms"]),
                seed=int(data["seed"]),
                unit=data.get("unit", "patient"),
                allocation=data.get("allocation", "blocks"),
                ratio=tuple(int(r) for r in data.get("ratio", ())),
                block_multiples=tuple(int(m) for m in data.get("block_multiples", (1, 2))),
                strata=tuple(data.get("strata", ())),
            )
        except KeyError as exc:
            raise InputError(f"The trial design is missing {exc.args[0]!r}.") from exc

    def stratum_key(self, strata: Mapping[str, Any] | None = None) -> str:
        """The canonical text key of a stratum (``""`` when not stratified)."""
        if self.allocation != "stratified":
            return ""
        given = dict(strata or {})
        missing = [s for s in self.strata if s not in given]
        if missing:
            raise InputError(f"Stratified allocation needs a value for {', '.join(missing)}.")
        return json.dumps({s: str(given[s]) for s in self.strata}, sort_keys=True)

    def _rng(self, key: str) -> np.random.Generator:
        digest = hashlib.sha256(f"{self.name}\x00{key}".encode()).digest()
        words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, *words])))

    def sequence(self, n: int, strata: Mapping[str, Any] | None = None) -> list[str]:
        """The first ``n`` allocations of a stratum, for audit (not for recruiters).

        Deterministic: the same design, stratum and position always give the
        same arm (NumPy PCG64 seeded from the seed, the design name and the
        stratum key).
        """
        key = self.stratum_key(strata)
        rng = self._rng(key)
        ratio = np.asarray(self.ratio, dtype=int)
        out: list[str] = []
        if self.allocation == "simple":
            probs = ratio / ratio.sum()
            draws = rng.choice(len(self.arms), size=n, p=probs)
            return [self.arms[int(i)] for i in draws]
        base = np.repeat(np.arange(len(self.arms)), ratio)
        while len(out) < n:
            mult = int(rng.choice(np.asarray(self.block_multiples, dtype=int)))
            block = np.tile(base, mult)
            rng.shuffle(block)
            out.extend(self.arms[int(i)] for i in block)
        return out[:n]


@dataclass(frozen=True)
class Assignment:
    """One revealed allocation."""

    unit_id: str
    """Identifier of the randomised unit."""
    arm: str
    """The arm allocated."""
    stratum: str
    """Stratum key (``""`` when not stratified)."""
    position: int
    """0-based position of the unit in its stratum's sequence."""


class Allocator:
    """Concealed allocation: each :meth:`assign` reveals the next arm of the unit's stratum.

    Assigning a unit again returns its existing allocation. The allocator
    keeps no sequence in memory beyond what was revealed; :meth:`to_dict`
    stores the design and the assignments so far, and :meth:`from_dict`
    checks them against the seed (a tampered record fails).
    """

    def __init__(self, design: TrialDesign) -> None:
        self.design = design
        self._by_unit: dict[str, Assignment] = {}
        self._counts: dict[str, int] = {}

    @property
    def assignments(self) -> list[Assignment]:
        """Allocations revealed so far, in order."""
        return list(self._by_unit.values())

    def assign(self, unit_id: str, strata: Mapping[str, Any] | None = None) -> Assignment:
        """Allocate ``unit_id`` (with its stratum values, if stratified) and reveal its arm."""
        unit_id = str(unit_id)
        if not unit_id:
            raise InputError("The unit identifier must not be empty.")
        key = self.design.stratum_key(strata)
        existing = self._by_unit.get(unit_id)
        if existing is not None:
            if existing.stratum != key:
                raise InputError(
                    f"Unit {unit_id!r} was already allocated in another stratum "
                    f"({existing.stratum})."
                )
            return existing
        position = self._counts.get(key, 0)
        arm = self.design.sequence(position + 1, _decode(key))[position]
        assignment = Assignment(unit_id=unit_id, arm=arm, stratum=key, position=position)
        self._by_unit[unit_id] = assignment
        self._counts[key] = position + 1
        return assignment

    def counts(self) -> pd.DataFrame:
        """Units allocated per stratum and arm."""
        rows = [(a.stratum, a.arm) for a in self._by_unit.values()]
        frame = pd.DataFrame(rows, columns=["stratum", "arm"])
        table = pd.crosstab(frame["stratum"], frame["arm"]) if rows else pd.DataFrame()
        return table.reindex(columns=list(self.design.arms), fill_value=0)

    def to_dict(self) -> dict[str, Any]:
        """The design and the allocations made (JSON-ready), for storage and audit."""
        return {
            "version": 1,
            "design": self.design.to_dict(),
            "assignments": [
                {"unit_id": a.unit_id, "arm": a.arm, "stratum": a.stratum, "position": a.position}
                for a in self._by_unit.values()
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Allocator:
        """Restore an allocator; every stored allocation is re-derived from the seed and checked."""
        if data.get("version") != 1:
            raise InputError("Unknown allocation record version; expected 1.")
        alloc = cls(TrialDesign.from_dict(data["design"]))
        for row in data.get("assignments", []):
            stratum = str(row["stratum"])
            position = alloc._counts.get(stratum, 0)
            if int(row["position"]) != position:
                raise IntegrityFailure(
                    f"Allocation record out of order at unit {row['unit_id']!r}: "
                    f"position {row['position']} where {position} was expected."
                )
            got = alloc.assign(str(row["unit_id"]), _decode(stratum))
            if got.arm != row["arm"]:
                raise IntegrityFailure(
                    f"Allocation record does not match the seed: unit {row['unit_id']!r} is "
                    f"stored in {row['arm']!r} but the sequence gives {got.arm!r}."
                )
        return alloc


def _decode(key: str) -> dict[str, Any] | None:
    return json.loads(key) if key else None
