"""Prometheus text exposition of the server metrics."""

from __future__ import annotations

import pytest

from ganrt.serve.metrics import Counter, Histogram, ServerMetrics


def test_histogram_buckets_are_cumulative():
    h = Histogram("lat_seconds", "Latency.", ("model",), (0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 2.0):
        h.observe(value, model="g")
    lines = h.render()
    assert lines[:2] == ["# HELP lat_seconds Latency.", "# TYPE lat_seconds histogram"]
    assert 'lat_seconds_bucket{model="g",le="0.1"} 2' in lines  # le is inclusive
    assert 'lat_seconds_bucket{model="g",le="1"} 3' in lines
    assert 'lat_seconds_bucket{model="g",le="+Inf"} 4' in lines
    assert 'lat_seconds_sum{model="g"} 2.65' in lines
    assert 'lat_seconds_count{model="g"} 4' in lines
    assert h.counts(model="g") == {0.1: 2, 1.0: 1, float("inf"): 1}


def test_counter_labels_are_escaped_and_checked():
    c = Counter("req_total", "Requests.", ("path",))
    c.inc(path='a"b\\c\nd')
    assert c.render()[-1] == 'req_total{path="a\\"b\\\\c\\nd"} 1'
    assert c.value(path='a"b\\c\nd') == 1
    with pytest.raises(ValueError, match="takes labels \\('path',\\), got \\('model',\\)"):
        c.inc(model="x")


def test_server_metrics_render_gauges_from_callbacks():
    m = ServerMetrics(queue_depths=lambda: {"g": 3}, in_flight=lambda: {"g": 5})
    m.requests.inc(model="g", endpoint="infer", code="200")
    m.batch_size.observe(4, model="g")
    text = m.render()
    assert text.endswith("\n")
    assert 'ganrt_queue_depth{model="g"} 3' in text
    assert 'ganrt_requests_in_flight{model="g"} 5' in text
    assert 'ganrt_requests_total{model="g",endpoint="infer",code="200"} 1' in text
    assert 'ganrt_batch_size_bucket{model="g",le="4"} 1' in text
    assert 'ganrt_batch_size_bucket{model="g",le="2"} 0' in text
    for line in text.splitlines():
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2
