"""The "heartbeats but no progress" flag of a running job, computed when the job is read.

A RUNNING job keeps its lease only while its worker heartbeats (the reaper ends it otherwise), so
a running job is alive by definition; it is *stalled* when its last sign of progress (a progress
report, a phase starting, reporting progress or ending, or else the attempt's start) is older than
the threshold. Nothing is written per job: every input is in the job as read.
"""

from __future__ import annotations

from datetime import timedelta

from jobs.v1 import job_pb2


def last_progress_ms(job: job_pb2.Job) -> int:
    """When the job last showed progress: its latest progress or phase change, else its start."""
    times = [job.start_time.ToMilliseconds(), job.progress.update_time.ToMilliseconds()]
    for phase in job.phases:
        if phase.attempt == job.attempt:
            times += (
                phase.start_time.ToMilliseconds(),
                phase.finish_time.ToMilliseconds(),
                phase.progress.update_time.ToMilliseconds(),
            )
    return max(times)


def stall_of(job: job_pb2.Job, *, now_ms: int, after: timedelta) -> job_pb2.Stall | None:
    """The job's stall when it is RUNNING and quiet for longer than `after`; else None."""
    if job.state != job_pb2.Job.STATE_RUNNING:
        return None
    since_ms = last_progress_ms(job)
    quiet_ms = now_ms - since_ms
    if quiet_ms <= after.total_seconds() * 1000:
        return None
    if since_ms > job.start_time.ToMilliseconds():
        since = "since its last progress report or phase change"
    else:
        since = "since its attempt started; it reported none"
    stall = job_pb2.Stall(message=f"running but no progress for {_span(quiet_ms)} ({since})")
    stall.since_time.FromMilliseconds(since_ms)
    return stall


def _span(ms: int) -> str:
    seconds = ms // 1000
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds // 60 % 60} min"
