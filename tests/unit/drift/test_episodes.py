"""Alert episodes: one open, at most one escalation, one resolution, then a cooldown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.drift.domain.episodes import Episode, EpisodeRules, Signal, advance

START = datetime(2026, 1, 1, tzinfo=UTC)
RULES = EpisodeRules(quiet_events=2, cooldown_seconds=60)


def signal(statistic: float, *, method: str = "cusum", severity: str = "warning") -> Signal:
    return Signal(
        kind="data",
        subject="x1",
        method=method,
        statistic=statistic,
        threshold=10.0,
        firing=statistic >= 10.0,
        quiet=statistic < 5.0,
        severity=severity,  # type: ignore[arg-type]
    )


def run(statistics: list[float], *, step_seconds: float = 1.0) -> list[str]:
    episode = Episode()
    transitions = []
    for index, statistic in enumerate(statistics):
        now = START + timedelta(seconds=index * step_seconds)
        episode, change = advance(episode, [signal(statistic)], RULES, now)
        if change is not None:
            transitions.append(change.transition)
    return transitions


def test_a_drifting_subject_opens_one_episode_however_long_it_drifts() -> None:
    assert run([1, 2, 12, 30, 50, 80, 120]) == ["open"]


def test_a_statistic_hovering_between_the_thresholds_neither_resolves_nor_reopens() -> None:
    assert run([12, 7, 11, 6, 9, 12]) == ["open"]


def test_resolution_needs_enough_quiet_events_in_a_row() -> None:
    assert run([12, 1, 7, 1, 1]) == ["open", "resolved"]


def test_the_cooldown_mutes_a_new_episode_until_it_has_passed() -> None:
    # resolved at t=2; the cooldown of 60 s mutes firing at t=3..62
    assert run([12, 1, 1, 12, 12]) == ["open", "resolved"]
    assert run([12, 1, 1, 12, 12], step_seconds=40) == ["open", "resolved", "open"]


def test_escalation_happens_once_and_only_upwards() -> None:
    episode, change = advance(Episode(), [signal(12)], RULES, START)
    assert change is not None and change.transition == "open"
    episode, change = advance(episode, [signal(40, severity="critical")], RULES, START)
    assert change is not None and change.transition == "escalated"
    episode, change = advance(episode, [signal(80, severity="critical")], RULES, START)
    assert change is None and episode.severity == "critical"


def test_any_firing_detector_keeps_the_episode_open() -> None:
    episode, _ = advance(Episode(), [signal(12)], RULES, START)
    for _ in range(5):
        episode, change = advance(episode, [signal(1), signal(11, method="psi")], RULES, START)
        assert change is None
    assert episode.open and episode.firing_methods == ("psi",)


def test_ids_are_stable_per_episode_and_distinct_between_episodes() -> None:
    first, change = advance(Episode(), [signal(12)], RULES, START)
    assert change is not None
    again = advance(Episode(), [signal(30)], RULES, START)[1]
    assert again is not None and again.episode_id("m/1") == change.episode_id("m/1")
    assert change.episode_id("m/1") != change.episode_id("m/2")
    closed = advance(advance(first, [signal(1)], RULES, START)[0], [signal(1)], RULES, START)
    later = START + timedelta(hours=1)
    reopened = advance(closed[0], [signal(12)], RULES, later)[1]
    assert reopened is not None
    assert reopened.episode_id("m/1") != change.episode_id("m/1")
    assert reopened.alert_id("m/1").endswith("-open")


def test_state_survives_a_json_round_trip() -> None:
    episode, _ = advance(Episode(), [signal(12)], RULES, START)
    episode, _ = advance(episode, [signal(1)], RULES, START)
    assert Episode.from_json(episode.to_json()) == episode


def test_quiet_is_counted_in_events_not_evaluations() -> None:
    rules = EpisodeRules(quiet_events=100, cooldown_seconds=0)
    episode, _ = advance(Episode(), [signal(12)], rules, START)
    episode, change = advance(episode, [signal(1)], rules, START, events=60)
    assert change is None and episode.open
    episode, change = advance(episode, [signal(7)], rules, START, events=60)  # not quiet
    episode, change = advance(episode, [signal(1)], rules, START, events=60)
    assert change is None and episode.open
    episode, change = advance(episode, [signal(1)], rules, START, events=40)
    assert change is not None and change.transition == "resolved"
