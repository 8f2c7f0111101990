"""Adaptive quality in call rooms: a simulcast subscription is driven while active, a
single-layer one is left alone, and the room's quality monitor feeds the link."""

from __future__ import annotations

from dataclasses import dataclass, field

from rtchub.features.calls.adapting import CallAdaptation, is_layer_control
from rtchub.features.calls.quality import QualityMonitor
from rtchub.media.fanout import ForwardingStats
from rtchub.media.sfu import PublishedTrack, Subscription, SubscriptionState, TrackUplink
from rtchub.media.sfu.adaptive import AdaptationDriver
from tests.support import FakeClock


class Silent:
    """The publisher's wire, not connected: feedback upstream goes nowhere."""

    connected = False

    def send_rtcp(self, packet: bytes) -> bool:
        return False


@dataclass
class SimulcastDowntrack:
    """What simulcast forwarding's downtrack offers adaptation (LayerControl) and the
    subscription (start, stop, the REMB estimate)."""

    estimate: int | None = None
    ceiling: int | None = None
    targets: list[int] = field(default_factory=list)
    active: bool = False

    def layer_bitrates(self) -> list[int]:
        return [150_000, 500_000, 1_500_000]

    def set_target(self, layer: int) -> None:
        self.targets.append(layer)

    def start(self) -> None:
        self.active = True

    def stop(self) -> None:
        self.active = False


def _subscription(downtrack: object) -> Subscription:
    uplink = TrackUplink("video", Silent(), 1, ForwardingStats())
    track = PublishedTrack("alice", "cam", "video", "0", None, uplink)
    subscription = Subscription("bob", track, lambda s: None)
    subscription.downtrack = downtrack  # type: ignore[assignment]
    track.subscriptions.append(subscription)
    return subscription


def test_a_simulcast_subscription_is_driven_while_it_is_active() -> None:
    clock = FakeClock()
    adaptation = CallAdaptation(AdaptationDriver(clock), QualityMonitor(clock))
    downtrack = SimulcastDowntrack(estimate=600_000)
    assert is_layer_control(downtrack)
    subscription = _subscription(downtrack)

    def changed(sub: Subscription) -> None:
        adaptation.follow("r", sub)

    subscription.on_state_change = changed
    assert not adaptation.follow("r", subscription)  # pending: not yet
    subscription.activate()
    assert subscription.state is SubscriptionState.ACTIVE
    assert downtrack.targets == [1]  # 500 k fits 85 % of 600 k, 1.5 M does not
    assert adaptation.cap_for("r", "cam") == int(650_000 * 1.25)  # nobody needs the top
    downtrack.estimate = 100_000
    clock.advance(1.0)
    assert downtrack.targets == [1, 0]
    subscription.end(None)
    assert adaptation.driver.layer_of(("r", "bob", "cam")) is None
    assert adaptation.cap_for("r", "cam") is None and clock.pending == 0
    adaptation.close()


def test_a_single_layer_downtrack_is_left_alone() -> None:
    clock = FakeClock()
    adaptation = CallAdaptation(AdaptationDriver(clock))

    class Plain:
        estimate = 1_000_000

        def start(self) -> None: ...
        def stop(self) -> None: ...

    subscription = _subscription(Plain())
    subscription.activate()
    assert not is_layer_control(Plain()) and not adaptation.follow("r", subscription)
    assert clock.pending == 0
