"""The viewer's Find panel: the moments of a replayed run (`rollout.viewer.moments`), one button
each; a click calls `on_pick(moment)` (the viewer seeks there and selects the env).

    with server.gui.add_folder("Find") as folder:
        panel = FindPanel(server.gui, folder, on_pick=viewer.show_moment, on_scope=...)
    panel.show(moments, "env 3")                                 # again when the scope changes
    panel.show_run(run, selected_env=3)                          # the moments of `run` in the scope set
    panel.scope_all                                              # the "all envs" choice is set

It only shows what it is given; the Viewer decides when (a Timeline, another env, another scope).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rollout.viewer.moments import Moment, RunSeries, find_moments

SCOPES = ("selected env", "all envs")


class FindPanel:
    """A scope dropdown, a line saying what is listed, and one button per moment."""

    def __init__(
        self, gui: Any, folder: Any, *, on_pick: Callable[[Moment], Any], on_scope: Callable[[], Any]
    ) -> None:
        self._gui = gui
        self._folder = folder  # buttons made later go in it too
        self._on_pick = on_pick
        self.scope = gui.add_dropdown("Find in", SCOPES, initial_value=SCOPES[0])
        self.scope.on_update(lambda _: on_scope())
        self.markdown = gui.add_markdown("*moments are listed on a replay*")
        self._buttons: list[Any] = []
        self.moments: tuple[Moment, ...] = ()

    @property
    def scope_all(self) -> bool:
        return self.scope.value == SCOPES[1]

    def show_run(self, run: RunSeries, selected_env: int) -> None:
        """The moments of `run` in the selected env, or in every env when that scope is chosen."""
        if self.scope_all:
            self.show(find_moments(run, None), f"all {run.num_envs} envs")
        else:
            self.show(find_moments(run, selected_env), f"env {selected_env}")

    def show(self, moments: Sequence[Moment], where: str) -> None:
        """List `moments` (found in `where`, e.g. "env 3" or "all 16 envs"); no-op if unchanged."""
        moments = tuple(moments)
        if moments == self.moments and self._buttons:
            return
        self.moments = moments
        for b in self._buttons:
            b.remove()
        self._buttons = []
        self.markdown.content = f"{len(moments)} moments in {where}" if moments else f"*nothing found in {where}*"
        with self._folder:
            for m in moments:
                button = self._gui.add_button(m.label)
                button.on_click(lambda _, m=m: self._on_pick(m))
                self._buttons.append(button)
