"""The `taskq` command: global options, then one sub-command per job.

`taskq --help` lists them; every command has its own `--help` with examples.
"""

from __future__ import annotations

import click

from taskq_cli.client import DEFAULT_URL, ApiClient
from taskq_cli.dlq import dlq
from taskq_cli.hosts import hosts
from taskq_cli.services import api, dev, migrate, worker
from taskq_cli.status import status
from taskq_cli.submit import submit
from taskq_cli.task_types import types
from taskq_cli.tasks import cancel, tasks


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="""\b
Examples:
  export TASKQ_URL=http://127.0.0.1:8080 TASKQ_API_KEY=…
  taskq submit records.ndjson --url https://api.example.com/sync --task-type sync
  taskq status 7c0e… --watch
  taskq dlq list --task-type sync
  taskq types set sync --max-rps 20
  taskq hosts                     # circuit breakers: which target hosts are open
  taskq dev                       # run everything locally, as `make run` does
""",
)
@click.option(
    "--url",
    envvar="TASKQ_URL",
    default=DEFAULT_URL,
    show_default=True,
    show_envvar=True,
    help="Base URL of the taskq API.",
)
@click.option(
    "--api-key",
    envvar="TASKQ_API_KEY",
    show_envvar=True,
    help="API key (sent as Authorization: Bearer); prefer the variable to the flag.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds to wait for each API reply.",
)
@click.version_option(package_name="taskq-cli")
@click.pass_context
def cli(context: click.Context, url: str, api_key: str | None, timeout: float) -> None:
    """taskq: submit and follow outbound REST calls, manage the DLQ and task types, run services.

    Commands that read print tables, or JSON with --json. Errors print the API's
    detail and exit 1 (2 for usage errors or a route the server does not have).
    """
    client = ApiClient(url, api_key, timeout)
    context.call_on_close(client.close)
    context.obj = client


for command in (submit, status, tasks, cancel, dlq, types, hosts, migrate, api, worker, dev):
    cli.add_command(command)
