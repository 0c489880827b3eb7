"""Waiting for a Ray job submitted through LLMOS's proxy (embedded and cluster mode)."""

from __future__ import annotations

import time

from ray.job_submission import JobStatus, JobSubmissionClient

DONE = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}


def succeeded(jobs: JobSubmissionClient, job: str, timeout: float = 120.0) -> str:
    """The job's logs once it has finished; fails unless it SUCCEEDED within ``timeout``."""
    deadline = time.monotonic() + timeout
    while (state := jobs.get_job_status(job)) not in DONE:
        assert time.monotonic() < deadline, f"job {job} still {state}"
        time.sleep(0.5)
    logs: str = jobs.get_job_logs(job)
    assert state == JobStatus.SUCCEEDED, logs
    return logs
