"""Property metrics that show whether answers follow the molecule: distinct values, Spearman."""

from __future__ import annotations

import pytest

from llamo_plugin.eval.property import average_ranks, property_metrics, spearman


def test_average_ranks_share_ties() -> None:
    assert average_ranks([3.0, 1.0, 2.0, 1.0]) == [4.0, 1.5, 3.0, 1.5]


def test_spearman_known_values() -> None:
    refs = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert spearman(refs, [10.0, 20.0, 30.0, 40.0, 50.0]) == pytest.approx(1.0)
    assert spearman(refs, [5.0, 4.0, 3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    # scipy.stats.spearmanr([1,2,3,4,5], [2,1,4,3,5]) = 0.8
    assert spearman(refs, [2.0, 1.0, 4.0, 3.0, 5.0]) == pytest.approx(0.8)
    assert spearman(refs, [7.0] * 5) is None  # a constant answer ranks nothing


def test_metrics_count_distinct_values_of_parsed_answers() -> None:
    refs = [-0.30, -0.25, -0.20, -0.22]
    constant = property_metrics(refs, [-0.2459] * 4)
    assert constant["n_distinct"] == 1 and constant["spearman"] is None
    varied = property_metrics(refs, [-0.31, None, -0.21, -0.23])
    assert varied["n_distinct"] == 3 and varied["n_unparseable"] == 1
    assert varied["spearman"] == pytest.approx(1.0)
