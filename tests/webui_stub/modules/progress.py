# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/progress.py: pending_tasks, create_task_id, add_task_to_queue, start_task, finish_task."""

import random
import string
import time
from collections import OrderedDict

current_task = None
pending_tasks = OrderedDict()  # mirrors modules/progress.py: pending_tasks (id -> time queued)
finished_tasks = []


def create_task_id(task_type):  # mirrors modules/progress.py: create_task_id
    return f"task({task_type}-{''.join(random.choices(string.ascii_uppercase + string.digits, k=7))})"


def add_task_to_queue(id_job):  # mirrors modules/progress.py: add_task_to_queue
    pending_tasks[id_job] = time.time()


def start_task(id_task):  # mirrors modules/progress.py: start_task (only this takes a task out of pending_tasks)
    global current_task
    current_task = id_task
    pending_tasks.pop(id_task, None)


def finish_task(id_task):  # mirrors modules/progress.py: finish_task
    global current_task
    if current_task == id_task:
        current_task = None
    finished_tasks.append(id_task)
    if len(finished_tasks) > 16:
        finished_tasks.pop(0)
