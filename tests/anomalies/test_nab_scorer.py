"""The NAB scorer (bench/nab_score.py) against the examples of the NAB paper and of NAB's own scorer tests.

Lavin & Ahmad 2015 give the reward curve's values at a window's left edge, middle and right edge and one
window past it; NAB's `tests/integration/scorer_test.py` scores small series whose windows NAB's
`generateWindows` places evenly: the same series are rebuilt here and must score what NAB's tests assert.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bench.nab_score import (
    PROFILES,
    Profile,
    normalised,
    probationary_length,
    scaled_sigmoid,
    score_corpus,
    score_series,
)

STANDARD, LOW_FP, LOW_FN = PROFILES
UNIT_WEIGHTS = Profile("test", tp_weight=1.0, fp_weight=1.0, fn_weight=1.0)
START = datetime(2015, 1, 1)


def timestamps(length: int) -> list[datetime]:
    return [START + timedelta(minutes=5 * i) for i in range(length)]


def even_windows(times: list[datetime], count: int, size: int) -> list[tuple[datetime, datetime]]:
    """NAB's generateWindows: `count` windows of `size` readings, evenly spaced."""
    step = times[1] - times[0]
    spacing = int(round((len(times) - count * size) / float(count + 1)))
    windows = []
    for i in range(count):
        first = times[0] + step * spacing * (i + 1) + step * size * i
        windows.append((first, first + step * (size - 1)))
    return windows


def test_the_reward_curve_takes_the_papers_values_at_the_edges_and_the_middle_of_a_window():
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.5) == -1.0


def test_the_profiles_carry_nabs_weights():
    assert [(p.name, p.tp_weight, p.fp_weight, p.fn_weight) for p in PROFILES] == [
        ("standard", 1.0, 0.11, 1.0),
        ("reward_low_FP_rate", 1.0, 0.22, 1.0),
        ("reward_low_FN_rate", 1.0, 0.11, 2.0),
    ]


def test_no_windows_and_no_detections_score_zero():
    result = score_series(timestamps(10), [], [], UNIT_WEIGHTS, probation_percent=0)
    assert (result.raw, result.windows, result.false_positives) == (0.0, 0, 0)


def test_a_detection_in_a_window_a_second_one_and_a_false_positive_score_as_in_nabs_own_test():
    """NAB's testScoringAllMetrics: 100 readings, two windows of 5; detections at the first window's first
    two readings and 7 readings after its start (past its end): -0.9540."""
    times = timestamps(100)
    windows = even_windows(times, 2, 5)
    first = times.index(windows[0][0])
    detections = [times[first], times[first + 1], times[first + 7]]
    result = score_series(times, detections, windows, UNIT_WEIGHTS, probation_percent=0)
    assert result.raw == pytest.approx(-0.9540, abs=1e-4)
    assert (result.windows, result.windows_found, result.false_positives) == (2, 1, 1)


def test_the_earliest_detection_in_a_window_is_the_one_that_counts():
    times = timestamps(100)
    windows = even_windows(times, 1, 10)
    first = times.index(windows[0][0])
    early = score_series(times, [times[first]], windows, STANDARD, probation_percent=0)
    late = score_series(times, [times[first + 8]], windows, STANDARD, probation_percent=0)
    both = score_series(times, [times[first + 8], times[first]], windows, STANDARD, probation_percent=0)
    assert early.raw == pytest.approx(1.0)  # the left edge is worth the whole TP weight
    assert 0 < late.raw < early.raw
    assert both.raw == early.raw


def test_missed_windows_cost_twice_as_much_under_the_low_fn_profile():
    """NAB's testRewardLowFalseNegatives: no detections, one window."""
    times = timestamps(100)
    windows = even_windows(times, 1, 10)
    standard = score_series(times, [], windows, STANDARD, probation_percent=0)
    low_fn = score_series(times, [], windows, LOW_FN, probation_percent=0)
    assert standard.raw == -1.0
    assert low_fn.raw == 2 * standard.raw


def test_a_false_positive_before_any_window_costs_the_whole_fp_weight_and_twice_under_low_fp():
    times = timestamps(100)
    standard = score_series(times, [times[0]], [], STANDARD, probation_percent=0)
    low_fp = score_series(times, [times[0]], [], LOW_FP, probation_percent=0)
    assert standard.raw == pytest.approx(-0.11)
    assert low_fp.raw == pytest.approx(2 * standard.raw)


def test_a_false_positive_right_after_a_window_costs_less_than_one_far_after_it():
    times = timestamps(100)
    windows = [(times[20], times[29])]
    near = score_series(times, [times[31]], windows, STANDARD, probation_percent=0)
    far = score_series(times, [times[90]], windows, STANDARD, probation_percent=0)
    # Both miss the window (-1); the far one costs the whole FP weight, the near one about half of it.
    assert far.raw == pytest.approx(-1.0 - 0.11)
    assert near.raw == pytest.approx(-1.0 + 0.11 * scaled_sigmoid(2 / 9))
    assert -1.0 - 0.11 < near.raw < -1.0


def test_detections_in_the_probationary_period_are_not_scored():
    times = timestamps(1000)
    assert probationary_length(1000) == 150
    assert probationary_length(100_000) == 750
    result = score_series(times, [times[10], times[149]], [], STANDARD)
    assert (result.raw, result.detections) == (0.0, 0)


def test_the_corpus_score_is_zero_for_the_null_detector_and_100_for_the_perfect_one():
    times = timestamps(1000)
    windows = even_windows(times, 2, 50)
    null = score_corpus([(times, [], windows)], STANDARD)
    perfect = score_corpus([(times, [w[0] for w in windows], windows)], STANDARD)
    assert null.score == 0.0
    assert perfect.score == pytest.approx(100.0)
    assert normalised(0.0, -2.0, 2, STANDARD) == pytest.approx(50.0)
