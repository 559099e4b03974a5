"""The KPA autoscaler on a simulated clock: one record and one decision per simulated second."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from modelport.control.autoscaler import Autoscaler
from modelport.control.scaling_policy import ScalingPolicy, parse_duration

K = "autoscaling.knative.dev/"


class Sim:
    """A revision whose replicas become ready at once, driven one second at a time."""

    def __init__(self, policy: ScalingPolicy, *, ready: int = 1, start: float = 1000.0) -> None:
        self.scaler = Autoscaler(policy)
        self.now = start
        self.ready = ready
        self.history: list[tuple[float, int, bool]] = []

    def run(self, seconds: int, load: float | Callable[[float], float]) -> int:
        for _ in range(seconds):
            self.now += 1.0
            value = load(self.now) if callable(load) else load
            self.scaler.record(self.now, value)
            self.ready = self.scaler.desired(self.now, self.ready)
            self.history.append((self.now, self.ready, self.scaler.in_panic))
        return self.ready


# ---- steady load ---------------------------------------------------------------------------


@pytest.mark.parametrize("load", [1, 10, 70, 71, 140, 250, 1000])
def test_steady_concurrency_gives_load_over_target_times_utilization(load: float) -> None:
    sim = Sim(ScalingPolicy())
    assert sim.run(180, load) == math.ceil(load / (100 * 0.7))
    assert not sim.scaler.in_panic


def test_container_concurrency_sets_the_target() -> None:
    policy = ScalingPolicy.from_spec("concurrency", None, 10, 1, 0)
    assert policy.target == 10
    assert Sim(policy).run(180, 35) == math.ceil(35 / 7)


def test_target_float_noise_does_not_add_a_replica() -> None:
    # 3 * 0.7 is 2.0999999999999996 in floating point; 21 / that is just above 10.
    policy = ScalingPolicy(target=3)
    assert Sim(policy).run(180, 21) == 10


def test_rps_metric_uses_the_rps_default_target_and_utilization() -> None:
    policy = ScalingPolicy.from_spec("rps", None, 5, 1, 0)
    assert (policy.metric, policy.target, policy.target_utilization) == ("rps", 200, 0.7)
    # containerConcurrency does not cap an rps target.
    assert Sim(policy).run(180, 1000) == math.ceil(1000 / 140)
    scaled = ScalingPolicy.from_spec("rps", 50, 0, 1, 0)
    assert Sim(scaled).run(180, 1000) == math.ceil(1000 / 35)


def test_records_within_one_second_are_averaged() -> None:
    scaler = Autoscaler(ScalingPolicy())
    for i in range(100):
        scaler.record(1000 + i * 0.1, 0 if i % 2 else 140)
    stable, panic = scaler.observed(1009.95)
    assert stable == pytest.approx(70)
    assert panic == pytest.approx(70)
    assert scaler.desired(1009.95, 1) == 1


def test_a_skipped_second_takes_the_next_value() -> None:
    # Sampling every 2 s must not read as half the load.
    scaler = Autoscaler(ScalingPolicy())
    ready = 1
    for t in range(0, 180, 2):
        scaler.record(5000.0 + t, 280)
        ready = scaler.desired(5000.0 + t, ready)
    assert scaler.observed(5178.0)[0] == pytest.approx(280)
    assert ready == 4


def test_no_data_keeps_the_ready_count_within_bounds() -> None:
    scaler = Autoscaler(ScalingPolicy(min_replicas=1, max_replicas=3))
    assert scaler.desired(0.0, 2) == 2
    assert scaler.desired(1.0, 5) == 3
    assert scaler.desired(2.0, 0) == 1


# ---- panic ---------------------------------------------------------------------------------


def burst_sim() -> Sim:
    sim = Sim(ScalingPolicy())
    assert sim.run(120, 50) == 1
    assert not sim.scaler.in_panic
    return sim


def test_burst_panics_and_scales_up_within_the_panic_window() -> None:
    sim = burst_sim()
    start = sim.now
    sim.run(6, 700)  # the default panic window: 10 % of 60 s
    assert sim.scaler.in_panic
    assert sim.ready == 10  # ceil(700 / 70), from the panic window alone
    stable, _ = sim.scaler.observed(sim.now)
    assert math.ceil(stable / 70) < 10  # the stable window alone would not be there yet
    first_panic = next(t for t, _, panic in sim.history if panic)
    assert first_panic - start <= 2


def test_panic_never_scales_down_and_ends_a_stable_window_after_the_burst() -> None:
    sim = burst_sim()
    sim.run(10, 700)
    peak = sim.ready
    burst_end = sim.now
    sim.run(300, 0)
    in_panic = [(t, n) for t, n, panic in sim.history if panic and t > burst_end]
    assert in_panic, "panic mode must outlast the burst"
    assert all(n == peak for _, n in in_panic)
    entered = min(t for t, _, panic in sim.history if panic)
    left = min(t for t, _, panic in sim.history if not panic and t > burst_end)
    # Panic is extended while the panic window is over the threshold for the ready count
    # and ends a whole stable window after that.
    assert left > entered + 60
    assert left <= burst_end + 6 + 60 + 2
    after = [n for t, n, _ in sim.history if t >= left]
    assert after[0] < peak
    assert sim.ready == 1  # min_replicas


def test_panic_threshold_is_relative_to_ready_replicas() -> None:
    policy = ScalingPolicy(panic_threshold_pct=300)
    sim = Sim(policy)
    sim.run(120, 50)
    sim.run(6, 190)  # 3 replicas' worth on 1 replica: exactly 300 %
    assert sim.scaler.in_panic
    sim2 = Sim(policy)
    sim2.run(120, 50)
    sim2.run(6, 130)  # 2 replicas' worth: under 300 %
    assert not any(panic for _, _, panic in sim2.history)


def test_a_new_decider_over_several_replicas_starts_in_panic() -> None:
    scaler = Autoscaler(ScalingPolicy())
    scaler.record(1.0, 0)
    assert scaler.desired(1.0, 5) == 5
    assert scaler.in_panic


# ---- rate limits and bounds ----------------------------------------------------------------


def test_scale_down_is_limited_by_the_rate() -> None:
    sim = Sim(ScalingPolicy())
    sim.run(180, 50)  # one replica's worth, not panicking
    assert sim.scaler.desired(sim.now, 20) == 10
    assert sim.scaler.desired(sim.now + 0.1, 10) == 5
    assert sim.scaler.desired(sim.now + 0.2, 5) == 2
    assert sim.scaler.desired(sim.now + 0.3, 2) == 1

    fast = Sim(ScalingPolicy(max_scale_down_rate=4))
    fast.run(180, 50)
    assert fast.scaler.desired(fast.now, 20) == 5


def test_scale_up_is_limited_by_the_rate() -> None:
    sim = Sim(ScalingPolicy(max_scale_up_rate=2))
    sim.run(1, 1000)
    assert sim.ready == 2
    sim.run(1, 1000)
    assert sim.ready == 4
    sim.run(30, 1000)
    assert sim.ready == 15


def test_max_replicas_caps_and_min_replicas_floors() -> None:
    assert Sim(ScalingPolicy(max_replicas=5)).run(180, 1000) == 5
    floor = Sim(ScalingPolicy(min_replicas=3), ready=0)
    assert floor.run(1, 0) == 3
    assert floor.run(400, 0) == 3


def test_scale_down_delay_holds_the_highest_recent_decision() -> None:
    sim = Sim(ScalingPolicy(scale_down_delay_s=30))
    sim.run(180, 50)
    assert sim.scaler.desired(sim.now, 20) == 10
    # Within the delay the earlier 10 still stands although 20/2 would be allowed lower.
    assert sim.scaler.desired(sim.now + 1, 10) == 10
    assert sim.scaler.desired(sim.now + 31, 10) == 5


# ---- scale to zero -------------------------------------------------------------------------


def zero_time(sim: Sim, after: float) -> float:
    return min(t for t, n, _ in sim.history if n == 0 and t > after)


def test_scale_to_zero_after_stable_window_and_grace() -> None:
    sim = Sim(ScalingPolicy(min_replicas=0))
    sim.run(30, 20)
    last_traffic = sim.now
    sim.run(200, 0)
    assert sim.ready == 0
    gone = zero_time(sim, last_traffic)
    assert last_traffic + 60 + 30 <= gone <= last_traffic + 60 + 30 + 2
    assert all(n >= 1 for t, n, _ in sim.history if t < gone)


def test_pod_retention_longer_than_grace_delays_zero() -> None:
    sim = Sim(ScalingPolicy(min_replicas=0, scale_to_zero_retention_s=120))
    sim.run(30, 20)
    last_traffic = sim.now
    sim.run(300, 0)
    assert last_traffic + 60 + 120 <= zero_time(sim, last_traffic) <= last_traffic + 182


def test_never_scales_to_zero_with_min_one() -> None:
    sim = Sim(ScalingPolicy(min_replicas=1))
    sim.run(30, 20)
    sim.run(1000, 0)
    assert min(n for _, n, _ in sim.history) == 1


def test_at_zero_stays_zero_without_traffic_and_wakes_on_a_request() -> None:
    sim = Sim(ScalingPolicy(min_replicas=0), ready=0)
    assert sim.run(5, 0) == 0  # nothing to keep: no replica is started for no traffic
    assert sim.run(1, 1) == 1


def test_activation_scale_is_the_first_step_from_zero() -> None:
    policy = ScalingPolicy.from_spec("", None, 0, 0, 0, {K + "activation-scale": "3"})
    sim = Sim(policy, ready=0)
    assert sim.run(1, 1) == 3
    assert sim.run(300, 0) == 0


# ---- live policy changes -------------------------------------------------------------------


def test_set_policy_keeps_history() -> None:
    sim = Sim(ScalingPolicy())
    assert sim.run(180, 250) == 4
    sim.scaler.set_policy(ScalingPolicy(target=50))
    assert sim.scaler.policy.target == 50
    assert sim.scaler.desired(sim.now, 4) == math.ceil(250 / 35)
    sim.scaler.set_policy(ScalingPolicy(target=50, max_replicas=6))
    assert sim.scaler.desired(sim.now, 8) == 6


def test_changing_the_window_keeps_the_recent_buckets() -> None:
    sim = Sim(ScalingPolicy())
    sim.run(60, 0)
    sim.run(30, 140)
    assert sim.scaler.observed(sim.now)[0] == pytest.approx(70)
    sim.scaler.set_policy(ScalingPolicy(stable_window_s=120))
    assert sim.scaler.observed(sim.now)[0] == pytest.approx(70)
    sim.run(60, 0)
    assert sim.scaler.observed(sim.now)[0] == pytest.approx(35)
    sim.run(30, 140)
    sim.scaler.set_policy(ScalingPolicy(stable_window_s=30))
    assert sim.scaler.observed(sim.now)[0] == pytest.approx(140)


def test_changing_the_metric_drops_the_history() -> None:
    sim = Sim(ScalingPolicy())
    sim.run(60, 500)
    sim.scaler.set_policy(ScalingPolicy(metric="rps", target=200))
    assert sim.scaler.observed(sim.now) == (0.0, 0.0)


def test_invalid_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="target"):
        Autoscaler(ScalingPolicy(target=0))
    scaler = Autoscaler(ScalingPolicy())
    with pytest.raises(ValueError, match="min_replicas"):
        scaler.set_policy(ScalingPolicy(min_replicas=3, max_replicas=2))
    with pytest.raises(ValueError, match="metric"):
        scaler.set_policy(ScalingPolicy(metric="cpu"))
    with pytest.raises(ValueError):
        scaler.record(1.0, -1)


# ---- from_spec and annotations -------------------------------------------------------------


def test_from_spec_defaults_are_knatives() -> None:
    p = ScalingPolicy.from_spec("", None, 0, 1, 0)
    assert p == ScalingPolicy()
    assert (p.metric, p.target, p.target_utilization, p.target_value) == (
        "concurrency",
        100,
        0.7,
        pytest.approx(70),
    )
    assert (p.stable_window_s, p.panic_window_s, p.panic_threshold_pct) == (60, 6, 200)
    assert (p.max_scale_up_rate, p.max_scale_down_rate, p.scale_to_zero_grace_s) == (1000, 2, 30)


def test_scale_target_and_container_concurrency() -> None:
    assert ScalingPolicy.from_spec("concurrency", 50, 0, 1, 0).target == 50
    # Knative aims no higher than containerConcurrency.
    assert ScalingPolicy.from_spec("concurrency", 50, 10, 1, 0).target == 10
    assert ScalingPolicy.from_spec("concurrency", 5, 10, 1, 0).target == 5
    assert (
        ScalingPolicy.from_spec("concurrency", None, 0, 1, 0, {K + "target": "7.5"}).target == 7.5
    )
    # A spec field overwrites the annotation, as KServe's SetAutoScalingAnnotations does.
    assert ScalingPolicy.from_spec("concurrency", 20, 0, 1, 0, {K + "target": "7"}).target == 20
    assert ScalingPolicy.from_spec("", None, 0, 1, 0, {K + "metric": "rps"}).metric == "rps"
    assert ScalingPolicy.from_spec("concurrency", None, 0, 1, 0, {K + "metric": "rps"}).metric == (
        "concurrency"
    )


def test_annotations_are_read() -> None:
    p = ScalingPolicy.from_spec(
        "concurrency",
        None,
        0,
        0,
        0,
        {
            K + "window": "2m",
            K + "panic-window-percentage": "20",
            K + "panic-threshold-percentage": "150.0",
            K + "target-utilization-percentage": "85",
            K + "max-scale": "9",
            K + "scale-to-zero-pod-retention-period": "1m30s",
            K + "scale-down-delay": "15s",
            K + "activation-scale": "2",
        },
    )
    assert p.stable_window_s == 120
    assert p.panic_window_s == 24
    assert p.panic_threshold_pct == 150
    assert p.target_utilization == pytest.approx(0.85)
    assert p.max_replicas == 9
    assert p.scale_to_zero_retention_s == 90
    assert p.scale_down_delay_s == 15
    assert p.activation_scale == 2


def test_legacy_camel_case_keys_are_read_and_canonical_keys_win() -> None:
    p = ScalingPolicy.from_spec(
        "",
        None,
        0,
        1,
        0,
        {
            K + "panicWindowPercentage": "50",
            K + "maxScale": "4",
            K + "targetUtilizationPercentage": "60",
        },
    )
    assert (p.panic_window_pct, p.max_replicas, p.target_utilization) == (50, 4, 0.6)
    both = {K + "max-scale": "3", K + "maxScale": "4"}
    assert ScalingPolicy.from_spec("", None, 0, 1, 0, both).max_replicas == 3


def test_replica_fields_win_over_scale_annotations_as_in_kserve() -> None:
    ann = {K + "min-scale": "0", K + "max-scale": "7"}
    p = ScalingPolicy.from_spec("", None, 0, 2, 0, ann)
    assert (p.min_replicas, p.max_replicas) == (2, 7)
    p = ScalingPolicy.from_spec("", None, 0, 2, 5, ann)
    assert (p.min_replicas, p.max_replicas) == (2, 5)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("window", "5s"),
        ("window", "2h"),
        ("window", "90.5s"),
        ("window", "sixty"),
        ("target", "0"),
        ("target", "lots"),
        ("target-utilization-percentage", "0"),
        ("target-utilization-percentage", "101"),
        ("panic-window-percentage", "0.5"),
        ("panic-window-percentage", "nan"),
        ("panic-threshold-percentage", "100"),
        ("panic-threshold-percentage", "2000"),
        ("max-scale", "-1"),
        ("max-scale", "1.5"),
        ("scale-to-zero-pod-retention-period", "-1s"),
        ("scale-to-zero-pod-retention-period", "3"),
        ("scale-down-delay", "1.5s"),
        ("activation-scale", "1"),
        ("activation-scale", "x"),
        ("metric", "memory"),
    ],
)
def test_bad_annotation_values_raise_naming_the_key(key: str, value: str) -> None:
    with pytest.raises(ValueError, match=K + key):
        ScalingPolicy.from_spec("", None, 0, 1, 0, {K + key: value})


def test_activation_scale_must_sit_between_min_and_max() -> None:
    with pytest.raises(ValueError, match="activation-scale"):
        ScalingPolicy.from_spec("", None, 0, 3, 0, {K + "activation-scale": "2"})
    with pytest.raises(ValueError, match="activation-scale"):
        ScalingPolicy.from_spec("", None, 0, 0, 2, {K + "activation-scale": "3"})


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("cpu", None, 0, 1, 0), "scaleMetric 'cpu'"),
        (("concurrency", 0, 0, 1, 0), "scaleTarget"),
        (("concurrency", None, -1, 1, 0), "containerConcurrency"),
        (("concurrency", None, 0, -1, 0), "minReplicas"),
        (("concurrency", None, 0, 1, -2), "maxReplicas"),
        (("concurrency", None, 0, 3, 2), "minReplicas"),
    ],
)
def test_bad_spec_values_raise(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ScalingPolicy.from_spec(*args)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("60s", 60),
        ("2m", 120),
        ("1m30s", 90),
        ("1.5h", 5400),
        ("500ms", 0.5),
        ("-1s", -1),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "60", "s", "1d", "1m 30s", "--1s"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
