"""labkit.connect() and `python -m labkit serve`: the contract in DESIGN.md."""

from __future__ import annotations

import socket
import subprocess
import sys

from conftest import REPO, clean_env, run_python

ROUND_TRIP = """
import boto3, labkit
h = labkit.connect()
s3 = boto3.client("s3")            # plain boto3, no endpoint argument
s3.create_bucket(Bucket=h.bucket)
print("MODE", h.mode, h.region, h.account_id, h.bucket)
print("BUCKETS", [b["Name"] for b in s3.list_buckets()["Buckets"]])
print("SAME", labkit.connect() is h)
"""


def test_local_is_the_default_and_plain_boto3_reaches_it():
    result = run_python(ROUND_TRIP)
    assert result.returncode == 0, result.stderr
    assert "labkit: LOCAL mode" in result.stdout  # the banner says which backend and how to switch
    assert "LABKIT_BACKEND=aws" in result.stdout
    assert "MODE local us-east-1 123456789012 mlaws-labs-123456789012-us-east-1" in result.stdout
    assert "BUCKETS ['mlaws-labs-123456789012-us-east-1']" in result.stdout
    assert "SAME True" in result.stdout


def test_env_switch_selects_aws_mode_and_back():
    # AWS mode with fake credentials and STS pointed at a closed local port: it must try AWS
    # (and fail with one clear message), proving the switch was honoured without network.
    closed_port = _free_port()
    env = clean_env(LABKIT_BACKEND="aws", AWS_ACCESS_KEY_ID="AKIAFAKE", AWS_SECRET_ACCESS_KEY="x",
                    AWS_DEFAULT_REGION="eu-west-1", AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed_port}",
                    AWS_MAX_ATTEMPTS="1")
    result = run_python("import labkit\ntry:\n    labkit.connect()\nexcept labkit.LabkitError as e:\n"
                        "    print('ERR', e)", env)
    assert result.returncode == 0, result.stderr
    assert "ERR AWS mode needs credentials" in result.stdout
    assert "LOCAL mode" not in result.stdout
    back = run_python("import labkit; print(labkit.connect().mode)", clean_env(LABKIT_BACKEND="local"))
    assert back.stdout.strip().endswith("local"), back.stderr
    explicit = run_python("import labkit; print(labkit.connect('local').mode)",
                          clean_env(LABKIT_BACKEND="aws"))
    assert explicit.stdout.strip().endswith("local"), explicit.stderr


def test_grading_forces_local_scrubs_credentials_and_refuses_aws():
    env = clean_env(LABKIT_GRADING="1", LABKIT_BACKEND="aws", AWS_ACCESS_KEY_ID="AKIAREALLOOKING",
                    AWS_SECRET_ACCESS_KEY="real-secret", AWS_SESSION_TOKEN="tok",
                    AWS_PROFILE="prod")
    code = """
import os, labkit
try:
    labkit.connect()
except labkit.LabkitError as e:
    print("REFUSED", e)
h = labkit.connect("local")
print("MODE", h.mode)
print("KEY", os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SESSION_TOKEN"),
      os.environ.get("AWS_PROFILE"))
creds = h.session.get_credentials()
print("SESSION", creds.access_key)
try:
    labkit.connect("aws")
except labkit.LabkitError as e:
    print("REFUSED2", e)
"""
    result = run_python(code, env)
    assert result.returncode == 0, result.stderr
    assert "REFUSED grading runs in local mode only" in result.stdout
    assert "MODE local" in result.stdout
    assert "KEY testing None None" in result.stdout
    assert "SESSION testing" in result.stdout
    assert "AKIAREALLOOKING" not in result.stdout
    assert "REFUSED2" in result.stdout


def test_unknown_backend_is_one_clear_message():
    result = run_python("import labkit\ntry:\n    labkit.connect('azure')\nexcept labkit.LabkitError as e:"
                        "\n    print('ERR', e)\n    print('TB', len(e._render_traceback_()))")
    assert "ERR unknown backend 'azure': use 'local'" in result.stdout
    assert "TB 1" in result.stdout  # Jupyter shows the message, not a traceback


def test_serve_prints_endpoint_first_and_other_process_reuses_it():
    server = subprocess.Popen([sys.executable, "-m", "labkit", "serve", "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=clean_env(), cwd=REPO)
    try:
        first = server.stdout.readline().strip()
        assert first.startswith("endpoint: http://127.0.0.1:"), first
        endpoint = first.split(" ", 1)[1]
        code = ROUND_TRIP + "print('ENDPOINT', h.endpoint)\n"
        result = run_python(code, clean_env(AWS_ENDPOINT_URL=endpoint))
        assert result.returncode == 0, result.stderr
        assert f"ENDPOINT {endpoint}" in result.stdout  # reused, not a second server
        # state lives in the server: a third process sees the bucket the second one made
        seen = run_python("import boto3, labkit; labkit.connect(quiet=True);"
                          "print([b['Name'] for b in boto3.client('s3').list_buckets()['Buckets']])",
                          clean_env(AWS_ENDPOINT_URL=endpoint))
        assert "mlaws-labs-123456789012-us-east-1" in seen.stdout, seen.stderr
    finally:
        server.terminate()
        server.wait(10)


def test_serve_on_a_port_in_use_is_one_clear_message():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "labkit", "serve", "--port", str(port)],
                                capture_output=True, text=True, env=clean_env(), timeout=60, cwd=REPO)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_non_loopback_host():
    result = subprocess.run([sys.executable, "-m", "labkit", "serve", "--host", "0.0.0.0"],
                            capture_output=True, text=True, env=clean_env(), timeout=60, cwd=REPO)
    assert result.returncode == 2
    assert "loopback only" in result.stderr and "Traceback" not in result.stderr


def test_clock_fast_forward(local_aws):
    before = local_aws.now()
    after = local_aws.fast_forward(hours=3)
    assert (after - before).total_seconds() >= 3 * 3600


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
