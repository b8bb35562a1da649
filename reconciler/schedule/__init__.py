"""Scheduled workflows: CronWorkflows in the store fired by APScheduler (see docs/SCHEDULE.md).

The daemon starts one `CronScheduler`; everything else here is the deterministic core it uses.
"""

from reconciler.spec.cron import Schedule, ScheduleError, parse_expression, parse_schedule

from .firing import CRON_LABEL, SCHEDULED_ANNOTATION, FireResult, build_scheduled_workflow, fire, workflow_name
from .history import beyond_limits, delete_workflow_data, enforce_history
from .scheduler import CronScheduler
from .triggers import CronSpec, ScheduleTrigger, due_fire, due_fires, next_fire_time, parse_cron_spec

__all__ = [
    "CRON_LABEL",
    "SCHEDULED_ANNOTATION",
    "CronScheduler",
    "CronSpec",
    "FireResult",
    "Schedule",
    "ScheduleError",
    "ScheduleTrigger",
    "beyond_limits",
    "build_scheduled_workflow",
    "delete_workflow_data",
    "due_fire",
    "due_fires",
    "enforce_history",
    "fire",
    "next_fire_time",
    "parse_cron_spec",
    "parse_expression",
    "parse_schedule",
    "workflow_name",
]
