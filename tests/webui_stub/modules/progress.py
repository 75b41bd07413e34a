# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/progress.py: create_task_id, add_task_to_queue, start_task, finish_task."""

import random
import string

current_task = None
finished_tasks = []


def create_task_id(task_type):  # mirrors modules/progress.py: create_task_id
    return f"task({task_type}-{''.join(random.choices(string.ascii_letters, k=7))})"


def add_task_to_queue(id_job):
    pass


def start_task(id_task):  # mirrors modules/progress.py: start_task
    global current_task
    current_task = id_task


def finish_task(id_task):  # mirrors modules/progress.py: finish_task
    global current_task
    if current_task == id_task:
        current_task = None
    finished_tasks.append(id_task)
