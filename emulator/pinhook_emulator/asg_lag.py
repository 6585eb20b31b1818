"""Auto Scaling's read lag: each instance's lifecycle-state history on the emulator's clock, and
the listings DescribeAutoScalingInstances and DescribeAutoScalingGroups give when their reads
lag (the state each instance had `asg_lag` seconds ago). Writes and lifecycle actions are never
lagged: only these reads."""

from __future__ import annotations

from typing import Any

from moto.autoscaling import models as asg_models

from .state import current

STATE_KEY = "_pinhook_lifecycle_state"
HISTORY_KEY = "_pinhook_lifecycle_history"


class AsgHistory:
    def __init__(self) -> None:
        # Every Auto Scaling instance seen, in the order they appeared.
        self.tracked: list[Any] = []
        self.stale_answers = 0

    def saw(self, state: Any, value: str, now: float) -> None:
        history = state.__dict__.setdefault(HISTORY_KEY, [])
        if not history:
            self.tracked.append(state)
        if not history or history[-1][1] != value:
            history.append((now, value))

    def gone(self, instance: Any) -> None:
        """The instance left every listing now (it terminated)."""
        now = current().now()
        for state in self.tracked:
            if state.instance is instance:
                history = state.__dict__[HISTORY_KEY]
                if history[-1][1] is not None:
                    history.append((now, None))

    def lagged(self, live: list[Any], now: float, lag: float, unlisted: bool) -> list[Any]:
        """Every instance as a read `lag` seconds late shows it: the latest state at or before
        now - lag. One that appeared since is shown in its first state (or left out with
        `unlisted`); one gone by then is left out. `live` is every instance listed now (of every
        group and warm pool): an instance that left the listings without terminating leaves
        them now."""
        live_ids = {id(s) for s in live}
        horizon = now - lag
        views = []
        for state in self.tracked:
            history = state.__dict__[HISTORY_KEY]
            if id(state) not in live_ids and history[-1][1] is not None:
                history.append((now, None))
            if history[0][0] > horizon:
                if unlisted:
                    continue
                value = history[0][1]
            else:
                value = None
                for at, seen in history:
                    if at > horizon:
                        break
                    value = seen
                if value is None:
                    continue
            views.append(view_of(state, value))
        return views


def view_of(state: Any, value: str) -> Any:
    """A copy of the instance's record showing another lifecycle state (its history untouched)."""
    view = object.__new__(type(state))
    view.__dict__.update(state.__dict__)
    view.__dict__[STATE_KEY] = value
    return view


def live_instances(backend: Any) -> list[Any]:
    st = current()
    return [
        s
        for group in backend.autoscaling_groups.values()
        for s in group.instance_states + st.warm_pool(group.name)
    ]


def instances_as_read(backend: Any, instance_ids: list[str]) -> list[Any]:
    """DescribeAutoScalingInstances' listing: warm pool instances included, lagged when asked."""
    st = current()
    live = live_instances(backend)
    wanted = [s for s in live if not instance_ids or s.instance.id in instance_ids]
    if st.settings.asg_lag <= 0:
        return wanted
    views = st.asg_history.lagged(live, st.now(), st.settings.asg_lag, st.settings.asg_lag_unlisted)
    groups = set(backend.autoscaling_groups)
    views = [
        v
        for v in views
        if v.auto_scaling_group_name in groups and (not instance_ids or v.instance.id in instance_ids)
    ]
    count_if_stale(wanted, views)
    return views


def groups_as_read(backend: Any, found: list[Any]) -> list[Any]:
    """DescribeAutoScalingGroups' groups, each listing its instances as a lagging read shows
    them (warm pool instances are not the group's)."""
    import copy

    st = current()
    if st.settings.asg_lag <= 0:
        return found
    live = live_instances(backend)
    views = st.asg_history.lagged(live, st.now(), st.settings.asg_lag, st.settings.asg_lag_unlisted)
    answer = []
    stale = False
    for group in found:
        shown = copy.copy(group)
        shown.instance_states = [
            v
            for v in views
            if v.auto_scaling_group_name == group.name and not v.lifecycle_state.startswith("Warmed:")
        ]
        stale = stale or summary(shown.instance_states) != summary(group.instance_states)
        answer.append(shown)
    if stale:
        st.asg_history.stale_answers += 1
    return answer


def summary(states: list[Any]) -> list[tuple[str, str]]:
    return sorted((s.instance.id, s.lifecycle_state) for s in states)


def count_if_stale(live: list[Any], views: list[Any]) -> None:
    if summary(live) != summary(views):
        current().asg_history.stale_answers += 1


def _get_state(self: Any) -> Any:
    return self.__dict__.get(STATE_KEY)


def _set_state(self: Any, value: Any) -> None:
    self.__dict__[STATE_KEY] = value
    current().asg_history.saw(self, value, current().now())


def install() -> None:
    asg_models.InstanceState.lifecycle_state = property(_get_state, _set_state)
