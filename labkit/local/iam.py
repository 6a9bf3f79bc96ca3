"""IAM engine: AWS managed policies exist, as in every real account.

moto 5.2.5 ships AWS's managed policies (``moto/iam/aws_managed_policies.py``) but loads them only
when ``MOTO_IAM_LOAD_MANAGED_POLICIES`` is set, so attaching
``arn:aws:iam::aws:policy/service-role/AWSGlueServiceRole`` fails with NoSuchEntity. This engine
(hook point: ``moto.iam.models.load_iam_aws_managed_policies``) turns that loading on for every
IAM backend, without touching the process environment.
"""

from __future__ import annotations


def install() -> None:
    from moto.iam import models

    models.load_iam_aws_managed_policies = lambda: True
