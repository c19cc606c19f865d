"""The Numenta Anomaly Benchmark's score, as its paper and scorer define it (pure functions, no I/O).

Lavin & Ahmad, "Evaluating real-time anomaly detection algorithms: the Numenta Anomaly Benchmark"
(ICMLA 2015), and NAB's scorer (``nab/sweeper.py``, ``config/profiles.json``, commit ea702d7):

- Each labelled window rewards only its *earliest* detection, by a scaled sigmoid of the detection's
  position relative to the window's right edge: ``2 / (1 + exp(5 y)) - 1`` with ``y = -(right - i + 1) /
  width`` in readings (0.98661 at the left edge, 0.84828 half-way, 0 at the right edge), divided by its
  value at the left edge and multiplied by the profile's TP weight; later detections in the window count
  for nothing.
- A detection outside every window is a false positive weighted by the profile's FP weight: -1 before the
  first window, and after a window the sigmoid of its distance past that window's right edge relative to
  the window's width (close after a window costs little, far after costs the full weight).
- A window without detection costs the FN weight.
- Readings of the probationary period (the first 15 % of a series, at most 750 readings) are not scored:
  neither their detections nor a window lying wholly inside it.
- The corpus score is the sum over series, normalised as ``100 * (raw - null) / (perfect - null)``: the
  detector that never fires scores 0 and the one that fires at the start of every window 100.

A detector here outputs anomaly windows; each window becomes one detection, at the first reading at or
after its start (NAB's detections are readings).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Profile:
    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


# config/profiles.json of NAB (tnWeight 1.0 everywhere, unused by the scorer).
PROFILES = (
    Profile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0),
    Profile("reward_low_FP_rate", tp_weight=1.0, fp_weight=0.22, fn_weight=1.0),
    Profile("reward_low_FN_rate", tp_weight=1.0, fp_weight=0.11, fn_weight=2.0),
)
PROBATION_PERCENT = 0.15


def scaled_sigmoid(relative_position: float) -> float:
    """NAB's reward curve: 0.98661 at -1 (a window's left edge), 0 at 0 (its right edge), -1 past 3."""
    if relative_position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * relative_position)) - 1.0


def probationary_length(readings: int, percent: float = PROBATION_PERCENT) -> float:
    return min(math.floor(percent * readings), percent * 5000)


@dataclass
class SeriesScore:
    """One series scored under one profile."""

    raw: float
    windows: int  # labelled windows that count (not wholly in the probationary period)
    windows_found: int
    false_positives: int  # detections outside every window (after the probationary period)
    detections: int  # detections scored (after the probationary period)
    window_rewards: list[float] = field(default_factory=list)


def score_series(
    timestamps: Sequence[datetime],
    detections: Iterable[datetime],
    windows: Sequence[tuple[datetime, datetime]],
    profile: Profile,
    probation_percent: float = PROBATION_PERCENT,
) -> SeriesScore:
    """Score one series' detections (times) against its labelled windows (inclusive [start, end] times).

    ``timestamps`` are the series' readings in time order; a detection counts at the first reading at or
    after its time (one detection per reading at most), a window spans the readings within it.
    """
    n = len(timestamps)
    probation = probationary_length(n, probation_percent)
    detected = sorted({i for i in (bisect.bisect_left(timestamps, t) for t in detections) if i < n})
    # Windows as reading indices [left, right].
    spans = []
    for start, end in sorted(windows):
        left, right = bisect.bisect_left(timestamps, start), bisect.bisect_right(timestamps, end) - 1
        if left <= right:
            spans.append((left, right))
    max_tp = scaled_sigmoid(-1.0)

    counted = [right >= probation for left, right in spans]
    best: list[float | None] = [None] * len(spans)
    fp_total = 0.0
    false_positives = 0
    scored = 0
    for i in detected:
        if i < probation:
            continue
        scored += 1
        inside = next((w for w, (left, right) in enumerate(spans) if left <= i <= right), None)
        if inside is not None:
            left, right = spans[inside]
            width = right - left + 1
            reward = scaled_sigmoid(-(right - i + 1) / width) * profile.tp_weight / max_tp
            best[inside] = reward if best[inside] is None else max(best[inside], reward)
            continue
        false_positives += 1
        before = [w for w, (_, right) in enumerate(spans) if right < i]
        if not before:
            fp_total += -1.0 * profile.fp_weight
        else:
            left, right = spans[before[-1]]
            width = right - left + 1
            # NAB divides by (width - 1); a one-reading window would divide by zero there, so floor it at 1.
            fp_total += scaled_sigmoid(abs(right - i) / max(width - 1.0, 1.0)) * profile.fp_weight
    rewards = [
        (-profile.fn_weight if reward is None else reward)
        for reward, counts in zip(best, counted, strict=True)
        if counts
    ]
    return SeriesScore(
        raw=sum(rewards) + fp_total,
        windows=sum(counted),
        windows_found=sum(1 for reward, counts in zip(best, counted, strict=True) if counts and reward is not None),
        false_positives=false_positives,
        detections=scored,
        window_rewards=rewards,
    )


def normalised(raw_total: float, null_total: float, windows_total: int, profile: Profile) -> float:
    """NAB's final score: 0 for the detector that never fires, 100 for the perfect one (a detection at the
    left edge of every labelled window, worth the TP weight each)."""
    perfect = windows_total * profile.tp_weight
    if perfect == null_total:
        return 0.0
    return 100.0 * (raw_total - null_total) / (perfect - null_total)


@dataclass(frozen=True)
class CorpusScore:
    profile: Profile
    raw: float
    null: float
    score: float


def score_corpus(
    series: Sequence[tuple[Sequence[datetime], Iterable[datetime], Sequence[tuple[datetime, datetime]]]],
    profile: Profile,
) -> CorpusScore:
    """Score several series (timestamps, detections, windows) together and normalise, as NAB's runner does."""
    raw = null = 0.0
    windows_total = 0
    for timestamps, detections, windows in series:
        raw += score_series(timestamps, list(detections), windows, profile).raw
        null += score_series(timestamps, [], windows, profile).raw
        windows_total += len(windows)
    return CorpusScore(profile, raw, null, normalised(raw, null, windows_total, profile))
