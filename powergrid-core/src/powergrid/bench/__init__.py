"""The benchmark suite: five tasks on real CAISO 2023 days, reference baselines, a perfect-foresight
oracle (HiGHS) and trained policies, scored on fixed test days (``powergrid bench TASK|all``).

Modules: :mod:`~powergrid.bench.tasks` (the tasks and their test days), :mod:`~powergrid.bench.play`
(one day under a policy, scored on the whole system), :mod:`~powergrid.bench.oracle` (the
optimum of a day as a linear program), :mod:`~powergrid.bench.train` (SB3, RLlib, MAPPO) and
:mod:`~powergrid.bench.leaderboard` (the Markdown table and figures).

Your own policy is scored as the baselines are: ``powergrid bench TASK --policy NAME=module:factory`` (the module
imported only when named), or ``evaluate_task(task, days, {NAME: factory})`` then ``write(rows, lp, …)``.
"""

from powergrid.bench.tasks import TASKS, Task, task_named

__all__ = ["TASKS", "Task", "task_named"]
