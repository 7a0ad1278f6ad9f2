"""The disclosure policy (threshold, noise, repeat limits) and the keyed noise of a count."""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass

from careloop.core.errors import InputError
from careloop.trust.disclosure.tables import DEFAULT_THRESHOLD


@dataclass(frozen=True)
class DisclosurePolicy:
    """How aggregates are protected before they leave the installation.

    Suppression (``threshold``) is always on unless the threshold is 0. Noise
    and repeat limits are off by default: with the release ledger, repeating
    a release returns exactly the same numbers, so repeats teach nothing new
    (and noise drawn from a keyed hash gives the same blur every time, so it
    cannot be averaged away either). They are there for networks that want
    the i2b2/SHRINE behaviour on top.
    """

    threshold: int = DEFAULT_THRESHOLD
    """Counts from 1 to this are hidden (0: nothing is hidden)."""
    noise: bool = False
    """Blur every published non-zero count with rounded Gaussian noise."""
    noise_sigma: float = 1.33
    """Standard deviation of the noise (SHRINE's 1.33)."""
    noise_clamp: int = 3
    """The noise never exceeds this in either direction (SHRINE: ±3)."""
    repeat_limit: int = 0
    """Refuse a release made this many times within ``repeat_days`` (0: no limit)."""
    repeat_days: int = 30
    """The window of the repeat limit, in days."""

    def __post_init__(self) -> None:
        if self.threshold < 0:
            raise InputError(f"The suppression threshold must be 0 or more, not {self.threshold}.")
        if not (self.noise_sigma > 0 and self.noise_clamp >= 0):
            raise InputError("Noise needs a standard deviation above 0 and a clamp of 0 or more.")
        if self.repeat_limit < 0 or self.repeat_days < 1:
            raise InputError("The repeat limit must be 0 or more and its window at least a day.")


def blur(value: int, *, key: bytes, label: str, policy: DisclosurePolicy) -> int:
    """``value`` with the policy's noise, drawn from a keyed hash of ``label``.

    The same label (a cell of the same data) always gets the same noise, so a
    repeated release cannot average it away. Zero stays zero (zeros may be
    published), and a count above the threshold never comes out at or below
    it (that would look like a small count that escaped suppression).
    """
    if value == 0 or not policy.noise:
        return value
    digest = hmac.new(key, label.encode("utf-8"), hashlib.sha256).digest()
    u1 = (int.from_bytes(digest[:8], "big") + 1) / 2.0**64
    u2 = int.from_bytes(digest[8:16], "big") / 2.0**64
    z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)  # Box–Muller
    shift = max(-policy.noise_clamp, min(policy.noise_clamp, round(policy.noise_sigma * z)))
    return max(value + shift, policy.threshold + 1, 0)
