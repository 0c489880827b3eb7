"""Every operation in /openapi.json, fuzzed: no request gets a 5xx, whatever it sends.

Schemathesis reads the server's own OpenAPI document and, per operation, sends
the values at its schema's edges and past them (its "coverage" phase), then
generated parameters, headers and bodies, valid and not ("fuzzing"). The seed
is fixed, so a failure repeats: the output has a curl command for each one,
and the server's log the traceback. What it found so far is in test_bad_input.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from server import RunningServer, admin_server

# Schemathesis, started so that Hypothesis never parses a lambda's source to describe a
# strategy: on CPython 3.11.7 that ast.parse, deep in the stack of a nested JSON body,
# fails with "SystemError: AST constructor recursion depth mismatch" (gh-106905, fixed in
# 3.11.8) and stops the whole run as a "Runtime Error". The description is only a repr.
ST_WITHOUT_LAMBDA_SOURCES = (
    "import sys\n"
    "from hypothesis.internal import lambda_sources\n"
    "lambda_sources.lambda_description = lambda f: 'lambda'\n"
    "from schemathesis.cli import schemathesis\n"
    "sys.argv[0] = 'st'\n"
    "sys.exit(schemathesis())\n"
)


def fuzz(running: RunningServer, document: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            ST_WITHOUT_LAMBDA_SOURCES,
            "run",
            str(document),
            "--url",
            running.url,
            "--tls-verify",
            running.ca,
            "--header",
            f"Authorization: Bearer {running.admin_token}",
            "--checks",
            "not_a_server_error",
            "--exclude-path",
            "/v1-auth/logout",  # it would end the run's own session
            "--phases",
            "coverage,fuzzing",
            "--max-examples",
            "5",
            "--seed",
            "1",
            "--generation-database",
            "none",
            "--workers",
            "2",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        cwd=cwd,  # where it keeps its state (.schemathesis/)
        timeout=900,
        check=False,
    )


@pytest.mark.timeout(600)  # a run takes about 4 minutes here
def test_no_request_gets_a_server_error(tmp_path: Path) -> None:
    with admin_server(tmp_path / "data") as running:
        with running.admin_client() as admin:
            spec = admin.get("/openapi.json").raise_for_status().json()
        # A watch stays open until the client leaves, by design (tests/watching.py follows them):
        # here it would only read as the fuzzer's time-out.
        for operation in (op for path in spec["paths"].values() for op in path.values()):
            if isinstance(operation, dict) and "parameters" in operation:
                operation["parameters"] = [
                    p for p in operation["parameters"] if p.get("name") != "watch"
                ]
        document = tmp_path / "openapi.json"
        document.write_text(json.dumps(spec))
        run = fuzz(running, document, tmp_path)
        crashes = [line for line in running.log().splitlines() if "unhandled error" in line]
        tested = re.search(r"Tested: (\d+)", run.stdout)
        generated = re.search(r"(\d+) generated", run.stdout)
    assert run.returncode == 0 and not crashes, run.stdout[-20000:] + "\n".join(crashes)
    assert tested and int(tested.group(1)) >= 150, run.stdout[-5000:]
    assert generated and int(generated.group(1)) >= 10_000, run.stdout[-5000:]
    # It may end its own session (it learns token names from replies), but it cannot lock
    # the admin out: still active, still an admin (read from the store, the server stopped).
    with sqlite3.connect(tmp_path / "data" / "llmos.db") as db:
        (data,) = db.execute(
            "SELECT data FROM objects WHERE resource = ? AND name = 'admin'",
            ("users.management.llmos.ai",),
        ).fetchone()
    spec = json.loads(data)["spec"]
    assert spec["active"] and "admin" in spec["globalRoles"], spec
