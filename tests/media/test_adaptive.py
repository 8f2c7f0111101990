"""Adaptive quality: the layer policy (down at once, up slowly, ceilings, loss and round
trip), the publisher cap, and the driver on a fake clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from rtchub.media.sfu.adaptive import (
    AdaptationDriver,
    AdaptivePolicy,
    LayerChoice,
    SubscriberLink,
    decide,
    publisher_cap,
)
from tests.support import FakeClock

RATES = [150_000, 500_000, 1_500_000]  # q, h, f
POLICY = AdaptivePolicy(up_after=8.0)


def link(estimate: int | None, loss: float | None = None, rtt: float | None = None
         ) -> SubscriberLink:
    return SubscriberLink(estimate, loss, rtt)


@pytest.mark.parametrize("estimate,expected", [
    (None, 2),          # no estimate yet: the top (the ceiling still applies)
    (10_000_000, 2),
    (1_764_706, 2),     # 1.5 M is exactly 85 % of it
    (1_764_705, 1),     # one bit/s less: the middle
    (588_236, 1),
    (588_234, 0),
    (1_000, 0),         # nothing fits: the lowest all the same
])
def test_a_first_decision_takes_the_highest_layer_that_fits(estimate: int | None,
                                                             expected: int) -> None:
    assert decide(None, RATES, None, link(estimate), 0.0, POLICY).layer == expected


def test_the_explicit_quality_is_a_ceiling() -> None:
    assert decide(None, RATES, 1, link(None), 0.0, POLICY).layer == 1
    assert decide(None, RATES, 0, link(10**9), 0.0, POLICY).layer == 0
    assert decide(None, RATES, 7, link(None), 0.0, POLICY).layer == 2  # above the top
    # lowered while on the top layer: down at once, even while the link is fine
    assert decide(LayerChoice(2), RATES, 0, link(10**9), 5.0, POLICY) == LayerChoice(0)
    # raised: up one step at a time, after the hysteresis
    held = decide(LayerChoice(0), RATES, 2, link(10**9), 5.0, POLICY)
    assert held == LayerChoice(0, 5.0)


def test_down_at_once_up_one_step_after_a_steady_while() -> None:
    now = 100.0
    choice = LayerChoice(2, estimate=3_000_000)
    choice = decide(choice, RATES, None, link(200_000), now, POLICY)
    assert choice == LayerChoice(0)  # two layers down in one decision
    # the estimate recovers: higher layers are allowed from now on, but not taken yet
    choice = decide(choice, RATES, None, link(10**9), now + 1, POLICY)
    assert choice == LayerChoice(0, now + 1)
    choice = decide(choice, RATES, None, link(10**9), now + 8.9, POLICY)
    assert choice.layer == 0
    choice = decide(choice, RATES, None, link(10**9), now + 9, POLICY)
    assert choice == LayerChoice(1, now + 9, now + 9)  # one step; the next one waits again
    choice = decide(choice, RATES, None, link(10**9), now + 16.9, POLICY)
    assert choice.layer == 1
    choice = decide(choice, RATES, None, link(10**9), now + 17, POLICY)
    assert choice == LayerChoice(2, None, now + 17)


def test_an_estimate_that_only_follows_what_arrives_still_lets_it_climb() -> None:
    # on q (150 k), a receiver's REMB stays near 1.5x what it gets: 235 k never covers
    # h (500 k / 0.85), but it says the link is not congested
    choice = decide(LayerChoice(0), RATES, None, link(235_000), 0.0, POLICY)
    assert choice == LayerChoice(0, 0.0)
    choice = decide(choice, RATES, None, link(235_000), 8.0, POLICY)
    assert choice == LayerChoice(1, None, 8.0)
    # the estimate lags the new rate: only loss or RTT take it down for up_after
    choice = decide(choice, RATES, None, link(260_000), 9.0, POLICY)
    assert choice == LayerChoice(1, None, 8.0)
    assert decide(choice, RATES, None, link(260_000, loss=12.0), 10.0,
                  POLICY) == LayerChoice(0)
    # after up_after, an estimate climbing or holding below the layer keeps it (a
    # receiver's estimate rises 8 %/s at most, and holds now and then) ...
    assert decide(choice, RATES, None, link(260_000), 16.0, POLICY) == LayerChoice(1)
    assert decide(choice, RATES, None, link(300_000), 16.0, POLICY) == LayerChoice(1)
    # ... one that falls below 70 % of it (a congested receiver's estimator cuts again
    # and again) takes it down
    assert decide(choice, RATES, None, link(250_000), 16.0, POLICY) == LayerChoice(0)
    # once up, an estimate that covers 70 % of what the layer sends keeps it (the
    # headroom is for going up; one cut to 0.85x is a hiccup): only one that falls below
    # that takes it down; a first estimate (none to compare with: the layer was not
    # arriving, or no REMB yet) does not
    steady = LayerChoice(1, estimate=520_000)
    assert decide(steady, RATES, None, link(425_000), 20.0, POLICY) == LayerChoice(1)
    assert decide(steady, RATES, None, link(350_000), 20.0, POLICY) == LayerChoice(1)
    assert decide(steady, RATES, None, link(349_999), 20.0, POLICY) == LayerChoice(0)
    assert decide(LayerChoice(1), RATES, None, link(150_000), 20.0, POLICY) == LayerChoice(1)
    held = decide(LayerChoice(1, estimate=400_000), RATES, None, link(400_000), 20.0, POLICY)
    assert held == LayerChoice(1) and held.estimate == 400_000
    # an estimate just at what arrives is congestion: no step up
    assert decide(LayerChoice(0), RATES, None, link(160_000), 0.0, POLICY) == LayerChoice(0)


def test_a_break_in_good_conditions_restarts_the_wait() -> None:
    choice = decide(LayerChoice(0), RATES, None, link(10**9), 0.0, POLICY)
    assert choice == LayerChoice(0, 0.0)
    choice = decide(choice, RATES, None, link(100_000), 5.0, POLICY)  # the estimate dips
    assert choice == LayerChoice(0)
    choice = decide(choice, RATES, None, link(10**9), 6.0, POLICY)
    assert choice == LayerChoice(0, 6.0)
    choice = decide(choice, RATES, None, link(10**9, loss=3.0), 10.0, POLICY)  # loss holds
    assert choice == LayerChoice(0)


def test_loss_and_round_trip_step_down_one_layer_per_decision() -> None:
    assert decide(LayerChoice(2), RATES, None, link(10**9, loss=10.0), 0, POLICY).layer == 1
    assert decide(LayerChoice(2), RATES, None, link(10**9, loss=9.9), 0, POLICY).layer == 2
    assert decide(LayerChoice(1), RATES, None, link(10**9, rtt=500.0), 0, POLICY).layer == 0
    assert decide(LayerChoice(0), RATES, None, link(10**9, loss=50.0), 0, POLICY).layer == 0
    assert decide(None, RATES, None, link(10**9, loss=20.0), 0, POLICY).layer == 1


def test_no_layers_known_means_layer_zero() -> None:
    assert decide(None, [], None, link(None), 0.0, POLICY) == LayerChoice(0)


def test_the_publisher_is_capped_when_nobody_needs_its_top_layer() -> None:
    assert publisher_cap([2, 0], RATES, 0.25) is None     # someone gets the top
    assert publisher_cap([], RATES, 0.25) is None         # nobody subscribes
    assert publisher_cap([1, 0], RATES, 0.25) == 812_500  # (150k + 500k) * 1.25
    assert publisher_cap([0], RATES, 0.0) == 150_000
    assert publisher_cap([0], [0, 0, 0], 0.25) is None    # nothing known
    # a layer needed but never measured (capped since the start): no cap, or it could
    # never start
    assert publisher_cap([1, 0], [150_000, 0, 0], 0.25) is None


@pytest.mark.parametrize("fields", [{"headroom": 0}, {"headroom": 1.5},
                                    {"loss_hold": 20.0}, {"rtt_down": 0},
                                    {"up_after": -1}, {"keep": 0}, {"keep": 1.1}])
def test_the_policy_refuses_nonsense(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AdaptivePolicy(**fields)


@dataclass
class Control:
    """A downtrack's layer control as simulcast forwarding will give it."""

    bitrates: list[int]
    ceiling: int | None = None
    targets: list[int] = field(default_factory=list)

    def layer_bitrates(self) -> list[int]:
        return list(self.bitrates)

    def set_target(self, layer: int) -> None:
        self.targets.append(layer)


def test_the_driver_applies_the_policy_every_interval() -> None:
    clock = FakeClock()
    driver = AdaptationDriver(clock, AdaptivePolicy(up_after=3.0), interval=1.0)
    good, poor = Control(list(RATES)), Control(list(RATES))
    links = {"good": link(10**9), "poor": link(10**9)}
    driver.add("good", good, lambda: links["good"], "cam")
    driver.add("poor", poor, lambda: links["poor"], "cam")
    assert good.targets == [2] and poor.targets == [2]  # decided at once
    assert clock.pending == 1 and driver.cap_for("cam") is None
    links["poor"] = link(200_000, loss=12.0)
    clock.advance(1.0)
    assert poor.targets == [2, 0] and good.targets == [2]  # only the poor one moves
    driver.remove("good")
    # nobody needs the top layer now: the publisher is told to send the lowest only
    assert driver.cap_for("cam") == int(RATES[0] * 1.25)
    # the top layer pauses under the cap; its last known rate still counts
    poor.bitrates = [RATES[0], 0, 0]
    links["poor"] = link(10**9)
    clock.advance(1.0)
    assert driver.layer_of("poor") == 0
    clock.advance(3.0)
    assert poor.targets == [2, 0, 1] and driver.cap_for("cam") == int(sum(RATES[:2]) * 1.25)
    clock.advance(3.0)
    assert poor.targets == [2, 0, 1, 2] and driver.cap_for("cam") is None
    poor.ceiling = 1
    clock.advance(1.0)
    assert poor.targets[-1] == 1
    driver.remove("poor")
    assert clock.pending == 0 and driver.cap_for("cam") is None
    driver.close()


def test_a_chosen_layer_that_does_not_arrive_is_not_judged_by_the_estimate() -> None:
    clock = FakeClock()
    driver = AdaptationDriver(clock, AdaptivePolicy(up_after=3.0), interval=1.0)
    control = Control(list(RATES))
    links = {"sub": link(None)}
    driver.add("sub", control, lambda: links["sub"], "cam")
    assert control.targets == [2]
    # the publisher drops its two upper layers: the subscriber falls back to q by itself
    # and its estimate follows q; that is no reason to leave layer 2
    control.bitrates = [RATES[0], 0, 0]
    links["sub"] = link(int(RATES[0] * 1.5))
    clock.advance(5.0)
    assert control.targets == [2]
    # loss still counts
    links["sub"] = link(int(RATES[0] * 1.5), loss=20.0)
    clock.advance(1.0)
    assert control.targets == [2, 1]
    # and once the layer chosen arrives, its estimate counts again: the first one is
    # what later ones are compared with, and one that falls below the layer's rate
    # takes it down
    control.bitrates = list(RATES)
    links["sub"] = link(300_000)
    clock.advance(1.0)
    assert control.targets == [2, 1]
    links["sub"] = link(200_000)
    clock.advance(1.0)
    assert control.targets == [2, 1, 0]
    driver.close()
