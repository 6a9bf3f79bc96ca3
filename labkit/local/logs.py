"""CloudWatch Logs on the virtual clock.

moto accepts log events only from 14 days before to 2 hours after *real* time, as AWS does. Engines
stamp their logs (training jobs, Glue jobs, crawlers) with the virtual clock, so once a lab has
fast-forwarded, moto silently rejected every new event. Here moto's notion of "now" for Logs is the
virtual clock, which keeps AWS's acceptance window relative to the emulated time.
"""

from __future__ import annotations

from labkit.local import clock


def _virtual_utcnow():
    return clock.now().replace(tzinfo=None)  # moto works in naive UTC


def install() -> None:
    import moto.logs.models as logs_models

    logs_models.utcnow = _virtual_utcnow
