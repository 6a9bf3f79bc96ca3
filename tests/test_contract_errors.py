"""Contract test: an internal failure of the local AWS answers as AWS does when it fails inside
(the common error ``InternalFailure``, HTTP 500; S3's ``InternalError``), in the protocol of the
request, so the SDK parses it. Never werkzeug's HTML error page (boto3 code "500", or a
ResponseParserError for query-protocol services)."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


def _explode(*_args, **_kwargs):
    raise RuntimeError("an engine bug")


CASES = [  # (service, protocol, moto backend method to break, the call, AWS's error code)
    ("budgets", "json", "moto.budgets.models.BudgetsBackend.describe_budgets",
     lambda c, h: c.describe_budgets(AccountId=h.account_id), "InternalFailure"),
    ("sns", "query", "moto.sns.models.SNSBackend.list_topics",
     lambda c, h: c.list_topics(), "InternalFailure"),
    ("cloudwatch", "smithy-rpc-v2-cbor", "moto.cloudwatch.models.CloudWatchBackend.list_dashboards",
     lambda c, h: c.list_dashboards(), "InternalFailure"),
    ("s3", "rest-xml", "moto.s3.models.S3Backend.list_buckets",
     lambda c, h: c.list_buckets(), "InternalError"),
]


@pytest.mark.parametrize("service, protocol, target, call, code", CASES, ids=[c[0] for c in CASES])
def test_internal_engine_error_is_an_aws_internal_failure(local_aws, monkeypatch, service, protocol,
                                                          target, call, code):
    client = boto3.client(service, config=NO_RETRIES)
    assert client.meta.service_model.protocol == protocol
    call(client, local_aws)                      # the healthy call answers
    monkeypatch.setattr(target, _explode)
    with pytest.raises(ClientError) as err:
        call(client, local_aws)
    response = err.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert response["Error"]["Code"] == code
    assert "RuntimeError: an engine bug" in response["Error"]["Message"]
    assert "<html" not in response["Error"]["Message"].lower()
