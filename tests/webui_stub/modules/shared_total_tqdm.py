# ruff: noqa: N802
"""mirrors modules/shared_total_tqdm.py: TotalTQDM, the console's "Total progress" bar (v1.10.1).

Its total is ``state.job_count * state.sampling_steps`` when it first counts, unless ``updateTotal``
set it; the sampler's callback counts one step (``sd_samplers_common.callback_state``). Instead of
printing (and without ``opts.multiple_tqdm``, on by default), ``clear`` keeps the closed bar's count
and total in ``closed``.
"""

from modules import shared


class TotalTQDM:  # mirrors modules/shared_total_tqdm.py: TotalTQDM
    def __init__(self):
        self._bar = None
        self.closed = []
        """(count, total) of every bar ``clear`` closed."""

    def reset(self):
        self._bar = {"n": 0, "total": shared.state.job_count * shared.state.sampling_steps}

    def update(self):
        if self._bar is None:
            self.reset()
        self._bar["n"] += 1

    def updateTotal(self, new_total):
        if self._bar is None:
            self.reset()
        self._bar["total"] = new_total

    def clear(self):
        if self._bar is not None:
            self.closed.append((self._bar["n"], self._bar["total"]))
            self._bar = None
