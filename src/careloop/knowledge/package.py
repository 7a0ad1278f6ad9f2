"""Knowledge object packages: read, validate, evaluate, test, write.

A package is a folder (or a zip of one) holding:

- ``metadata.json`` — JSON-LD in the spirit of KOIO: ``identifier``,
  semantic ``version``, ``title``, ``description``, ``keywords``,
  ``contributors``, ``license``, ``status``, ``evidence`` (links to the
  analyses, measures and provenance records it was learned from) and
  ``measures`` (the measure ids it should move);
- ``service.json`` — the CDS service: ``id``, ``hook``, ``title``,
  ``description``, ``prefetch`` templates;
- ``rules.json`` — ``{"rules": [...], "systemActions"?: [...]}`` (see
  :mod:`careloop.knowledge.rules`), each rule with the card it returns and
  optional card ``variants`` allocated through :mod:`careloop.analysis.trials`;
- ``tests.json`` — cases: context and prefetch in, expected cards out;
- ``model.json`` (optional) — a fitted :class:`careloop.analysis.risk.RiskModel`.

Every problem is reported with its file and JSON path
(``rules.json:$.rules[0].card.summary``) and nothing is stored until the
whole package is valid.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from careloop.analysis.trials import TrialDesign
from careloop.core.errors import (
    CareloopError,
    ErrorDetail,
    InputError,
    InputTooLarge,
    ValidationFailed,
)
from careloop.knowledge.cards import action_problems, card_problems
from careloop.knowledge.rules import Facts, condition_problems, fill_tokens, holds

if TYPE_CHECKING:  # the risk module pulls in scikit-learn: loaded only for packages with a model
    from careloop.analysis.risk import RiskModel

FILES = ("metadata.json", "service.json", "rules.json", "tests.json")
OPTIONAL_FILES = ("model.json",)
MAX_PACKAGE_BYTES = 5 * 1024 * 1024
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")
IDENTIFIER = re.compile(r"^[a-z0-9][a-z0-9._-]{1,99}$")
STATUSES = ("draft", "in_review", "approved", "active", "retired")
KOIO_CONTEXT = "https://kgrid.org/koio/2.0/context"

ArmChooser = Callable[[TrialDesign], str | None]
"""Picks a trial's arm for one call: an arm, None for the first (comparator) arm, or
:data:`USUAL_CARE` for no variant at all."""
USUAL_CARE = ""
"""What an :data:`ArmChooser` returns for a unit that is not allocated (a patient whose
consent does not cover the test): the rule's own card, no variant wording, no arm."""


@dataclass(frozen=True)
class ProposedCard:
    """A card a rule proposes for one request, before the service gives it a uuid."""

    rule_id: str
    """The rule that fired."""
    card: dict[str, Any]
    """The card (CDS Hooks 2.0 shape, without ``uuid``), variant wording applied."""
    trial: str | None = None
    """The variant test the card belongs to, if any."""
    variant: str | None = None
    """The arm whose wording the card carries, if any."""


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one of a package's tests."""

    name: str
    """The test's name."""
    passed: bool
    """Whether the cards matched the expectation."""
    message: str
    """Why it failed (empty when it passed)."""


@dataclass(frozen=True)
class TestReport:
    """The outcome of running a package's tests."""

    __test__ = False  # not a pytest class

    cases: tuple[CaseResult, ...]
    """One result per test, in file order."""

    @property
    def passed(self) -> bool:
        """True when there is at least one test and every test passed."""
        return bool(self.cases) and all(c.passed for c in self.cases)

    def summary(self) -> str:
        """One line per failure, and a count."""
        failed = [c for c in self.cases if not c.passed]
        lines = [f"{len(self.cases) - len(failed)} of {len(self.cases)} tests passed."]
        lines += [f"FAILED {c.name}: {c.message}" for c in failed]
        return "\n".join(lines)


@dataclass(frozen=True)
class KnowledgePackage:
    """A validated knowledge object package (build with :func:`load_package`)."""

    metadata: dict[str, Any]
    """metadata.json."""
    service: dict[str, Any]
    """service.json."""
    rules: dict[str, Any]
    """rules.json."""
    tests: list[dict[str, Any]]
    """tests.json."""
    model: dict[str, Any] | None = None
    """model.json (a RiskModel as a dict), if any."""
    _risk: RiskModel | None = field(default=None, compare=False, repr=False)

    @property
    def identifier(self) -> str:
        """The knowledge object's identifier (shared by its versions)."""
        return str(self.metadata["identifier"])

    @property
    def version(self) -> str:
        """The semantic version."""
        return str(self.metadata["version"])

    @property
    def service_id(self) -> str:
        """The CDS service id (``/cds-services/{id}``)."""
        return str(self.service["id"])

    @property
    def hook(self) -> str:
        """The CDS hook the service answers."""
        return str(self.service["hook"])

    @property
    def measures(self) -> list[str]:
        """Ids of the measures this knowledge object declares it should move."""
        return [str(m) for m in self.metadata.get("measures", [])]

    def to_dict(self) -> dict[str, Any]:
        """The package as one JSON-ready dict (what the registry stores)."""
        out: dict[str, Any] = {
            "metadata": self.metadata,
            "service": self.service,
            "rules": self.rules,
            "tests": self.tests,
        }
        if self.model is not None:
            out["model"] = self.model
        return out

    def canonical_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces) of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def sha256(self) -> str:
        """SHA-256 of the canonical JSON: the content's identity."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def discovery_entry(self) -> dict[str, Any]:
        """The service as the CDS Hooks discovery endpoint lists it."""
        entry = {
            "hook": self.hook,
            "title": self.service.get("title") or self.metadata["title"],
            "description": self.service.get("description") or self.metadata["description"],
            "id": self.service_id,
        }
        if self.service.get("prefetch"):
            entry["prefetch"] = dict(self.service["prefetch"])
        return entry

    def trials(self) -> dict[str, TrialDesign]:
        """The card-variant tests the rules carry, by trial name."""
        out = {}
        for rule in self.rules["rules"]:
            variants = rule.get("variants")
            if variants:
                design = TrialDesign.from_dict(variants["design"])
                out[design.name] = design
        return out

    def _risk_function(self) -> Callable[[dict[str, float]], float] | None:
        if self.model is None:
            return None
        import pandas as pd

        from careloop.analysis.risk import RiskModel

        model = self._risk or RiskModel.from_dict(self.model)
        object.__setattr__(self, "_risk", model)

        def risk(features: dict[str, float]) -> float:
            return float(model.predict_risk(pd.DataFrame([features])).iloc[0])

        return risk

    def evaluate(
        self,
        context: Mapping[str, Any],
        prefetch: Mapping[str, Any],
        *,
        today: date,
        choose_arm: ArmChooser | None = None,
    ) -> list[ProposedCard]:
        """The cards this knowledge proposes for one hook call.

        Args:
            context: The hook's ``context``.
            prefetch: Prefetch data by key (a missing key reads as no data).
            today: The date relative to which ``within_days`` and ages count.
            choose_arm: Picks a variant arm for a trial (the service allocates
                through the trials module); None gives every trial's first
                (comparator) arm, :data:`USUAL_CARE` the rule's own card with no
                variant.
        """
        facts = Facts(context, prefetch, today=today, risk=self._risk_function())
        out: list[ProposedCard] = []
        for rule in self.rules["rules"]:
            if not holds(rule["when"], facts):
                continue
            card = dict(rule["card"])
            trial = variant = None
            variants = rule.get("variants")
            if variants:
                design = TrialDesign.from_dict(variants["design"])
                trial = design.name
                chosen = choose_arm(design) if choose_arm else None
                if chosen != USUAL_CARE:
                    variant = chosen or design.arms[0]
                    card.update(variants["cards"].get(variant, {}))
            out.append(
                ProposedCard(
                    rule_id=str(rule["id"]),
                    card=fill_tokens(card, context),
                    trial=trial,
                    variant=variant,
                )
            )
        return out

    def system_actions(self, context: Mapping[str, Any]) -> list[dict[str, Any]]:
        """System actions the package returns with its cards (tokens filled)."""
        actions = self.rules.get("systemActions") or []
        return [fill_tokens(a, context) for a in actions]

    def run_tests(self) -> TestReport:
        """Run the package's tests: each case's context and prefetch in, expected cards out."""
        results = []
        for i, case in enumerate(self.tests):
            name = str(case.get("name", f"test {i}"))
            wanted_arms = case.get("variants", {})

            def chooser(design: TrialDesign, arms: Mapping[str, str] = wanted_arms) -> str | None:
                return arms.get(design.name)

            try:
                cards = self.evaluate(
                    case.get("context", {}),
                    case.get("prefetch", {}),
                    today=date.fromisoformat(str(case.get("today", date.today().isoformat()))),
                    choose_arm=chooser,
                )
            except (CareloopError, ValueError, KeyError, TypeError) as exc:
                results.append(CaseResult(name, False, f"evaluation failed: {exc}"))
                continue
            results.append(_compare(name, cards, case.get("expect", [])))
        return TestReport(tuple(results))


def _subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            k in actual and _subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_subset(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual)


def _compare(name: str, cards: Sequence[ProposedCard], expect: Sequence[Any]) -> CaseResult:
    got = [{"rule": c.rule_id, "variant": c.variant, **c.card} for c in cards]
    if len(got) != len(expect):
        fired = [g["rule"] for g in got]
        return CaseResult(name, False, f"expected {len(expect)} card(s), got {len(got)}: {fired}")
    for i, (want, have) in enumerate(zip(expect, got, strict=True)):
        if not _subset(want, have):
            return CaseResult(name, False, f"card {i} differs: expected {want}, got {have}")
    return CaseResult(name, True, "")


# --------------------------------------------------------------------------
# Reading and validating
# --------------------------------------------------------------------------


def _read_files(source: Path) -> dict[str, bytes]:
    if not source.exists():
        raise InputError(f"No knowledge object package at {source}.")
    if source.is_dir():
        return {
            name: (source / name).read_bytes()
            for name in (*FILES, *OPTIONAL_FILES)
            if (source / name).is_file()
        }
    if source.stat().st_size > MAX_PACKAGE_BYTES:
        raise InputError(f"{source} is larger than {MAX_PACKAGE_BYTES // 1024 // 1024} MB.")
    try:
        with zipfile.ZipFile(source) as archive:
            out: dict[str, bytes] = {}
            total = 0
            for info in archive.infolist():
                base = info.filename.rsplit("/", 1)[-1]
                if base in (*FILES, *OPTIONAL_FILES) and info.filename.count("/") <= 1:
                    # The sizes a zip declares may lie (a zip bomb's do): count the bytes
                    # actually unpacked, and stop one byte past what may remain.
                    try:
                        with archive.open(info) as member:
                            data = member.read(MAX_PACKAGE_BYTES - total + 1)
                    except zipfile.BadZipFile as exc:
                        raise InputError(
                            f"{source} is damaged: {exc} (its sizes or checksum do not match "
                            "what it holds). Export the package again."
                        ) from None
                    total += len(data)
                    if total > MAX_PACKAGE_BYTES:
                        raise InputTooLarge(
                            f"{source} unpacks to more than 5 MB; a knowledge object package "
                            "is a few files of text. Check that it is the package you meant.",
                            details=[ErrorDetail(f"{source.name}:{info.filename}", "too large")],
                        )
                    out[base] = data
            return out
    except zipfile.BadZipFile as exc:
        raise InputError(
            f"{source} is neither a folder nor a zip file of a knowledge object package."
        ) from exc


def load_package(source: Path | str) -> KnowledgePackage:
    """Read and validate a package from a folder or a zip file.

    Raises:
        ValidationFailed: listing every problem with its file and JSON path.
    """
    files = _read_files(Path(source))
    problems: list[ErrorDetail] = []
    parsed: dict[str, Any] = {}
    for name in FILES:
        if name not in files:
            problems.append(ErrorDetail(name, f"{name} is missing from the package."))
            continue
        try:
            parsed[name] = json.loads(files[name])
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            line = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
            problems.append(ErrorDetail(name, f"{name} is not valid JSON{line}: {exc}"))
    if "model.json" in files:
        try:
            parsed["model.json"] = json.loads(files["model.json"])
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(ErrorDetail("model.json", f"model.json is not valid JSON: {exc}"))
    if problems:
        raise ValidationFailed(f"The package at {source} cannot be read.", problems)
    return package_from_dict(
        {
            "metadata": parsed["metadata.json"],
            "service": parsed["service.json"],
            "rules": parsed["rules.json"],
            "tests": parsed["tests.json"],
            **({"model": parsed["model.json"]} if "model.json" in parsed else {}),
        },
        origin=str(source),
    )


def package_from_dict(data: Mapping[str, Any], *, origin: str = "package") -> KnowledgePackage:
    """Validate a package given as a dict (as :meth:`KnowledgePackage.to_dict` makes)."""
    problems = _metadata_problems(data.get("metadata"))
    problems += _service_problems(data.get("service"))
    model: RiskModel | None = None
    if data.get("model") is not None:
        from careloop.analysis.risk import RiskModel

        try:
            model = RiskModel.from_dict(data["model"])
        except (CareloopError, KeyError, TypeError, ValueError) as exc:
            problems.append(ErrorDetail("model.json:$", f"Not a careloop risk model: {exc}"))
    service = data.get("service")
    keys = (
        frozenset(service.get("prefetch", {}))
        if isinstance(service, Mapping) and isinstance(service.get("prefetch", {}), Mapping)
        else frozenset()
    )
    problems += _rules_problems(data.get("rules"), keys, has_model=data.get("model") is not None)
    tests = data.get("tests")
    if not isinstance(tests, list) or not tests:
        problems.append(
            ErrorDetail("tests.json:$", "tests.json must be a non-empty list of test cases.")
        )
    else:
        for i, case in enumerate(tests):
            problems += _test_problems(case, f"tests.json:$[{i}]")
    if problems:
        raise ValidationFailed(
            f"The knowledge object package {origin} is not valid ({len(problems)} problem(s)).",
            problems,
        )
    return KnowledgePackage(
        metadata=dict(data["metadata"]),
        service=dict(data["service"]),
        rules=dict(data["rules"]),
        tests=list(data["tests"]),
        model=dict(data["model"]) if data.get("model") is not None else None,
        _risk=model,
    )


def _need_string(obj: Mapping[str, Any], key: str, where: str) -> list[ErrorDetail]:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        return [ErrorDetail(f"{where}.{key}", f"`{key}` is required (a non-empty string).")]
    return []


def _metadata_problems(meta: Any) -> list[ErrorDetail]:
    where = "metadata.json:$"
    if not isinstance(meta, Mapping):
        return [ErrorDetail(where, "metadata.json must be a JSON object.")]
    out: list[ErrorDetail] = []
    for key in ("identifier", "version", "title", "description", "license"):
        out += _need_string(meta, key, where)
    if isinstance(meta.get("identifier"), str) and not IDENTIFIER.match(meta["identifier"]):
        out.append(
            ErrorDetail(
                f"{where}.identifier",
                "Use lower-case letters, digits, '.', '_' or '-' (2–100 characters).",
                meta["identifier"],
            )
        )
    if isinstance(meta.get("version"), str) and not SEMVER.match(meta["version"]):
        out.append(
            ErrorDetail(
                f"{where}.version", "Use a semantic version such as 1.0.0.", meta["version"]
            )
        )
    if "status" in meta and meta["status"] not in STATUSES:
        out.append(ErrorDetail(f"{where}.status", f"Use one of {', '.join(STATUSES)}."))
    for key in ("keywords", "measures"):
        items = meta.get(key, [])
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            out.append(ErrorDetail(f"{where}.{key}", f"`{key}` must be a list of strings."))
    contributors = meta.get("contributors")
    if not isinstance(contributors, list) or not contributors:
        out.append(ErrorDetail(f"{where}.contributors", "Name at least one contributor."))
    evidence = meta.get("evidence", [])
    if not isinstance(evidence, list):
        out.append(ErrorDetail(f"{where}.evidence", "`evidence` must be a list."))
    else:
        for i, item in enumerate(evidence):
            if not isinstance(item, Mapping) or not any(
                isinstance(item.get(k), str) and item.get(k) for k in ("url", "ref")
            ):
                out.append(
                    ErrorDetail(
                        f"{where}.evidence[{i}]",
                        "Each evidence item needs a `url` or a `ref` (e.g. provenance:12).",
                    )
                )
    return out


def _service_problems(service: Any) -> list[ErrorDetail]:
    where = "service.json:$"
    if not isinstance(service, Mapping):
        return [ErrorDetail(where, "service.json must be a JSON object.")]
    out: list[ErrorDetail] = []
    for key in ("id", "hook", "description"):
        out += _need_string(service, key, where)
    if isinstance(service.get("id"), str) and not IDENTIFIER.match(service["id"]):
        out.append(ErrorDetail(f"{where}.id", "Use a URL-safe id (letters, digits, . _ -)."))
    prefetch = service.get("prefetch", {})
    if not isinstance(prefetch, Mapping):
        out.append(ErrorDetail(f"{where}.prefetch", "`prefetch` must map keys to templates."))
    else:
        for key, template in prefetch.items():
            if not isinstance(template, str) or not template:
                out.append(
                    ErrorDetail(f"{where}.prefetch.{key}", "A prefetch template is a string.")
                )
    return out


def _rules_problems(rules: Any, keys: frozenset[str], *, has_model: bool) -> list[ErrorDetail]:
    where = "rules.json:$"
    if not isinstance(rules, Mapping) or not isinstance(rules.get("rules"), list):
        return [ErrorDetail(where, 'rules.json must be {"rules": [...]}.')]
    out: list[ErrorDetail] = []
    seen: set[str] = set()
    trials: set[str] = set()
    for i, rule in enumerate(rules["rules"]):
        at = f"{where}.rules[{i}]"
        if not isinstance(rule, Mapping):
            out.append(ErrorDetail(at, "A rule is an object with id, when and card."))
            continue
        out += _need_string(rule, "id", at)
        if rule.get("id") in seen:
            out.append(ErrorDetail(f"{at}.id", f"Rule id {rule['id']!r} is used twice."))
        seen.add(str(rule.get("id")))
        out += condition_problems(
            rule.get("when"), f"{at}.when", prefetch_keys=keys, has_model=has_model
        )
        card = rule.get("card")
        out += [ErrorDetail(f"{at}.{p.path}", p.message) for p in card_problems(card, "card")]
        if "uuid" in (card or {}):
            out.append(ErrorDetail(f"{at}.card.uuid", "The service assigns card uuids."))
        if "variants" in rule:
            out += _variant_problems(rule["variants"], card, f"{at}.variants", trials)
    actions = rules.get("systemActions")
    if actions is not None:
        if not isinstance(actions, list) or not actions:
            out.append(ErrorDetail(f"{where}.systemActions", "Must be a non-empty list."))
        else:
            for i, action in enumerate(actions):
                out += [
                    ErrorDetail(f"{where}.{p.path}", p.message)
                    for p in action_problems(action, f"systemActions[{i}]")
                ]
    return out


def _variant_problems(variants: Any, card: Any, at: str, trials: set[str]) -> list[ErrorDetail]:
    if not isinstance(variants, Mapping):
        return [ErrorDetail(at, "`variants` is {design, cards}.")]
    try:
        design = TrialDesign.from_dict(variants.get("design") or {})
    except (CareloopError, TypeError, ValueError) as exc:
        return [ErrorDetail(f"{at}.design", f"Not a trial design: {exc}")]
    out: list[ErrorDetail] = []
    if design.unit not in ("clinician", "patient"):
        out.append(
            ErrorDetail(f"{at}.design.unit", "Card variants are allocated by clinician or patient.")
        )
    if design.allocation == "stratified":
        out.append(ErrorDetail(f"{at}.design.allocation", "Use simple or blocks allocation."))
    if design.name in trials:
        out.append(ErrorDetail(f"{at}.design.name", f"Trial {design.name!r} is used twice."))
    trials.add(design.name)
    cards = variants.get("cards")
    if not isinstance(cards, Mapping) or set(cards) - set(design.arms):
        return [*out, ErrorDetail(f"{at}.cards", f"Give overrides for arms {list(design.arms)}.")]
    for arm, override in cards.items():
        if not isinstance(override, Mapping):
            out.append(ErrorDetail(f"{at}.cards.{arm}", "An arm's card is an object."))
            continue
        merged = {**(card if isinstance(card, Mapping) else {}), **override}
        out += [
            ErrorDetail(f"{at}.cards.{arm}{p.path[4:]}", p.message)
            for p in card_problems(merged, "card")
        ]
    return out


def _test_problems(case: Any, at: str) -> list[ErrorDetail]:
    if not isinstance(case, Mapping):
        return [ErrorDetail(at, "A test case is an object.")]
    out = _need_string(case, "name", at)
    for key in ("context", "prefetch"):
        if not isinstance(case.get(key, {}), Mapping):
            out.append(ErrorDetail(f"{at}.{key}", f"`{key}` must be an object."))
    if not isinstance(case.get("expect"), list):
        out.append(ErrorDetail(f"{at}.expect", "`expect` lists the expected cards ([] for none)."))
    if "today" in case:
        try:
            date.fromisoformat(str(case["today"]))
        except ValueError:
            out.append(ErrorDetail(f"{at}.today", "Use an ISO date (YYYY-MM-DD).", case["today"]))
    return out


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def package_files(package: KnowledgePackage) -> dict[str, bytes]:
    """The package's files, pretty-printed JSON."""
    files = {
        "metadata.json": package.metadata,
        "service.json": package.service,
        "rules.json": package.rules,
        "tests.json": package.tests,
    }
    if package.model is not None:
        files["model.json"] = package.model
    return {
        name: (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()
        for name, value in files.items()
    }


def write_package(package: KnowledgePackage, target: Path, *, zip_file: bool = False) -> Path:
    """Write a package as a folder, or as a reproducible zip (fixed timestamps)."""
    files = package_files(package)
    if zip_file:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(files):
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, files[name])
        target.write_bytes(buffer.getvalue())
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (target / name).write_bytes(content)
    return target


def new_package_skeleton(identifier: str, *, hook: str = "patient-view") -> dict[str, Any]:
    """A minimal valid package to start from (``careloop knowledge new``)."""
    if not IDENTIFIER.match(identifier):
        raise InputError(
            f"{identifier!r} is not a usable identifier: use lower-case letters, digits, . _ -."
        )
    return {
        "metadata": {
            "@context": KOIO_CONTEXT,
            "@type": "KnowledgeObject",
            "identifier": identifier,
            "version": "0.1.0",
            "title": identifier.replace("-", " ").capitalize(),
            "description": "What this knowledge does, for whom, and why.",
            "keywords": [],
            "contributors": ["Your name"],
            "license": "CC-BY-4.0",
            "status": "draft",
            "evidence": [],
            "measures": [],
        },
        "service": {
            "id": identifier,
            "hook": hook,
            "title": identifier,
            "description": "Shown in the CDS Hooks discovery response.",
            "prefetch": {"patient": "Patient/{{context.patientId}}"},
        },
        "rules": {
            "rules": [
                {
                    "id": "example",
                    "when": {"value": {"prefetch": "patient", "path": "active"}, "==": True},
                    "card": {
                        "summary": "Replace with a one-sentence summary (under 140 characters).",
                        "indicator": "info",
                        "source": {"label": "careloop knowledge object"},
                    },
                }
            ]
        },
        "tests": [
            {
                "name": "an active patient gets the card",
                "context": {"userId": "Practitioner/1", "patientId": "1"},
                "prefetch": {"patient": {"resourceType": "Patient", "id": "1", "active": True}},
                "today": "2026-01-01",
                "expect": [{"rule": "example", "indicator": "info"}],
            }
        ],
    }
