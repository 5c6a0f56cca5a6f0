"""The console's forms that change state: rate limits, pause/resume, DLQ reprocess and purge.

Each checks the CSRF token first, then calls the same repository methods and
checks as the API routes, so the console can do nothing the API would refuse.
DLQ actions go through a confirmation page that repeats what will happen.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, post
from litestar.response import Redirect

from taskq_api.console.access import checked_form
from taskq_api.console.rendering import render
from taskq_api.dependencies import DeadLetters, Operations, Repository, RequestLimits
from taskq_core.errors import InvalidFieldError, NotFoundError
from taskq_core.models import DlqOverrides, MaxRps, MessageIds, TaskTypeName
from taskq_core.repository.dlq import DlqSelection
from taskq_core.submission import redrive_rewriter

Form = dict[str, list[str]]
AnyRequest = Request[Any, Any, Any]
DLQ_ACTIONS = ("reprocess", "purge")


def _one(form: Form, name: str) -> str:
    return (form.get(name) or [""])[0].strip()


def _task_type(form: Form) -> str:
    try:
        return msgspec.convert(_one(form, "task_type"), TaskTypeName)
    except msgspec.ValidationError as error:
        raise InvalidFieldError("task_type", f"task_type: {error}") from None


def _max_rps(form: Form) -> float | None:
    """The rate limit typed in (empty: unlimited), under the API's own rule for max_rps."""
    text = _one(form, "max_rps")
    if not text:
        return None
    try:
        return msgspec.convert(float(text), MaxRps)
    except (ValueError, msgspec.ValidationError) as error:
        raise InvalidFieldError("max_rps", f"max_rps (empty: unlimited): {error}") from None


def _message_ids(form: Form) -> list[int]:
    """The selected dead letters, under the API's own rule for message_ids."""
    try:
        ids = sorted({int(value) for value in form.get("message_id", [])})
    except ValueError:
        raise InvalidFieldError("message_id", "message ids are whole numbers") from None
    if not ids:
        raise InvalidFieldError("message_id", "select at least one dead letter")
    try:
        return msgspec.convert(ids, MessageIds)
    except msgspec.ValidationError as error:
        raise InvalidFieldError("message_id", f"message ids: {error}") from None


def _overrides(form: Form) -> DlqOverrides | None:
    """The edit of a redrive; None when nothing was edited."""
    fields: dict[str, Any] = {}
    if url := _one(form, "override_url"):
        fields["url"] = url
    if data := _one(form, "override_data"):
        try:
            fields["data"] = json.loads(data)
        except ValueError as error:
            raise InvalidFieldError("override_data", f"data is not JSON: {error}") from None
    if retries := _one(form, "override_max_retries"):
        fields["max_retries"] = retries
    if not fields:
        return None
    try:
        return msgspec.convert(fields, DlqOverrides, strict=False)
    except msgspec.ValidationError as error:
        raise InvalidFieldError("overrides", f"overrides: {error}") from None


async def _set_paused(
    request: AnyRequest, operations: Operations, *, paused: bool
) -> Response[Any]:
    """Pause or resume the form's task type, then back to the types page saying which."""
    task_type = _task_type(await checked_form(request))
    await operations.set_paused(task_type, paused=paused)
    return _back("/types", done=f"{task_type}: {'paused' if paused else 'resumed'}")


def _back(path: str, **query: object) -> Response[Any]:
    return Redirect(f"/ui{path}?{urlencode(query)}", status_code=303)


class ConsoleActions(Controller):
    path = "/"
    include_in_schema = False

    @post("/types/rate", status_code=303)
    async def set_rate(self, request: AnyRequest, repository: Repository) -> Response[Any]:
        form = await checked_form(request)
        task_type, max_rps = _task_type(form), _max_rps(form)
        try:
            await repository.set_max_rps(task_type, max_rps)
        except NotFoundError:
            await repository.configure_task_type(task_type, max_rps)
        limit = "unlimited" if max_rps is None else f"{max_rps:g} rps"
        return _back("/types", done=f"{task_type}: rate limit set to {limit}")

    @post("/types/pause", status_code=303)
    async def pause(self, request: AnyRequest, operations: Operations) -> Response[Any]:
        return await _set_paused(request, operations, paused=True)

    @post("/types/resume", status_code=303)
    async def resume(self, request: AnyRequest, operations: Operations) -> Response[Any]:
        return await _set_paused(request, operations, paused=False)

    @post("/dlq/confirm", status_code=200)
    async def confirm(self, request: AnyRequest, limits: RequestLimits) -> Response[str]:
        form = await checked_form(request)
        action = _one(form, "action")
        if action not in DLQ_ACTIONS:
            raise InvalidFieldError("action", "action is reprocess or purge")
        ids = _message_ids(form)
        overrides = _overrides(form) if action == "reprocess" else None
        if overrides is not None:
            redrive_rewriter(overrides, limits.egress)  # refuse a bad edit before confirming
        return render(
            request,
            "dlq_confirm.html",
            action=action,
            message_ids=ids,
            override_url=_one(form, "override_url"),
            override_data=_one(form, "override_data"),
            override_max_retries=_one(form, "override_max_retries"),
            overrides=overrides,
        )

    @post("/dlq/apply", status_code=303)
    async def apply(
        self, request: AnyRequest, dead_letters: DeadLetters, limits: RequestLimits
    ) -> Response[Any]:
        form = await checked_form(request)
        action = _one(form, "action")
        selection = DlqSelection(message_ids=_message_ids(form))
        if action == "reprocess":
            overrides = _overrides(form)
            rewrite = None if overrides is None else redrive_rewriter(overrides, limits.egress)
            done = await dead_letters.reprocess(selection, rewrite)
            return _back("/dlq", done=f"reprocessed {done.reprocessed_count} message(s)")
        if action == "purge":
            purged = await dead_letters.purge(selection)
            return _back("/dlq", done=f"purged {purged} dead letter(s)")
        raise InvalidFieldError("action", "action is reprocess or purge")
