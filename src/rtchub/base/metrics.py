"""Counters kept as plain integers on the hot path, exposed through prometheus-client.

prometheus-client's labelled ``inc()`` costs about a microsecond per call; the
relay path counts several things per frame, so rtchub keeps ints and dicts in
:class:`Stats` and renders them with a custom collector at scrape time. Each
app has its own registry (no module globals), with the default process and
platform collectors added.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Collection, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

__all__ = ["Histogram", "Stats", "new_registry", "render"]

LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                   0.1, 0.25, 1.0)


class Histogram:
    """A cumulative-bucket histogram: ``observe`` is one bisect and two adds."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation (seconds)."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative (le, count) pairs, ending with +Inf."""
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            total += count
            out.append((bound, float(total)))
        return out


Gauges = Callable[[], dict[str, float]]


class Stats:
    """Everything rtchub counts. Attributes are bumped directly by the code that knows."""

    def __init__(self) -> None:
        self.connections_total = 0
        self.connections_open = 0
        self.frames_in: Counter[str] = Counter()
        self.frames_out: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.closes: Counter[str] = Counter()
        self.relay_latency = Histogram()
        self.http_rejections: Counter[str] = Counter()
        self._gauges: list[tuple[str, str, Gauges, str | None]] = []
        self._counters: list[tuple[str, str, str, Callable[[], dict[str, float]]]] = []

    def add_gauges(self, name: str, doc: str, read: Gauges, label: str | None = None) -> None:
        """Register gauges read at scrape time: ``read()`` returns {label value: number}.

        The label is ``label``, else named after the last word of ``name``, unless
        ``read`` returns the key ``""`` (no label).
        """
        self._gauges.append((name, doc, read, label))

    def add_counters(self, name: str, doc: str, label: str,
                     read: Callable[[], dict[str, float]]) -> None:
        """Register a counter family read at scrape time, labelled by ``label``."""
        self._counters.append((name, doc, label, read))

    def gauge_values(self, names: Collection[str]) -> dict[str, float]:
        """The current value of the unlabelled gauges named ``names``, by name."""
        values: dict[str, float] = {}
        for name, _, read, _ in self._gauges:
            if name not in names:
                continue
            read_values = read()
            if "" in read_values:
                values[name] = float(read_values[""])
        return values

    def collect(self) -> Iterator[Metric]:
        """The prometheus-client collector protocol."""
        yield _counter("rtchub_ws_connections", "WebSocket connections accepted.", "", {
            "": self.connections_total})
        yield _gauge("rtchub_ws_connections_open", "WebSocket connections open now.", "",
                     {"": self.connections_open})
        yield _counter("rtchub_ws_frames_in", "Frames received, by message type.", "type",
                       self.frames_in)
        yield _counter("rtchub_ws_frames_out", "Frames sent, by message type.", "type",
                       self.frames_out)
        yield _counter("rtchub_errors", "Errors reported to clients, by code.", "code",
                       self.errors)
        yield _counter("rtchub_ws_closes", "Connections closed by the server, by reason.",
                       "reason", self.closes)
        yield _counter("rtchub_http_rejections", "HTTP requests refused, by reason.", "reason",
                       self.http_rejections)
        hist = HistogramMetricFamily("rtchub_relay_latency_seconds",
                                     "Time from a signaling frame's arrival to its relay write.")
        hist.add_metric([], self.relay_latency.buckets(), self.relay_latency.sum)
        yield hist
        for name, doc, read, named in self._gauges:
            values = read()
            label = "" if "" in values else named or name.rsplit("_", 1)[-1]
            yield _gauge(name, doc, label, values)
        for name, doc, label, read_counts in self._counters:
            yield _counter(name, doc, label, read_counts())


def _counter(name: str, doc: str, label: str, values: dict[str, int] | dict[str, float]
             | Counter[str]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label] if label else None)
    for key, value in values.items():
        family.add_metric([key] if label else [], float(value))
    return family


def _gauge(name: str, doc: str, label: str, values: dict[str, int] | dict[str, float]
           ) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label] if label else None)
    for key, value in values.items():
        family.add_metric([key] if label else [], float(value))
    return family


def new_registry(stats: Stats) -> CollectorRegistry:
    """A registry with rtchub's stats and the default process/platform collectors."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(stats)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """Prometheus text exposition."""
    return generate_latest(registry)
