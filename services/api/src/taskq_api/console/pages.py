"""The console's pages (GET): overview, task types, tasks, a task, the DLQ, the login form."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect

from taskq_api.console.access import KEY_COOKIE, LOGIN_OPT, checked_form, cookie, key_is_valid
from taskq_api.console.dependencies import ApiKeys, Console
from taskq_api.console.rendering import render
from taskq_api.console.views import CHART_MINUTES, overview_rows
from taskq_api.dependencies import DeadLetters, Operations, Repository
from taskq_core.errors import InvalidFieldError
from taskq_core.repository.dlq import DlqSelection
from taskq_core.repository.operations import TaskFilters
from taskq_core.status import TaskStatus

PAGE_SIZE = 25
KEY_LIFETIME = 8 * 3600
"""Seconds a console login lasts."""
Text = Annotated[str | None, QueryParameter(max_length=1024)]
AnyRequest = Request[Any, Any, Any]


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


class ConsolePages(Controller):
    path = "/"
    include_in_schema = False

    @get("/", name="console-overview")
    async def overview(
        self, request: AnyRequest, operations: Operations, console: Console
    ) -> Response[str]:
        return render(request, "overview.html", **await _overview(operations, console))

    @get("/overview/fragment")
    async def overview_fragment(
        self, request: AnyRequest, operations: Operations, console: Console
    ) -> Response[str]:
        return render(request, "_overview_table.html", **await _overview(operations, console))

    @get("/types")
    async def task_types(
        self, request: AnyRequest, operations: Operations, done: Text = None
    ) -> Response[str]:
        return render(
            request,
            "types.html",
            types=await operations.task_types(),
            hosts=await operations.hosts(),
            done=done,
        )

    @get("/tasks")
    async def tasks(
        self,
        request: AnyRequest,
        *,
        operations: Operations,
        task_id: Text = None,
        item_id: Text = None,
        task_type: Text = None,
        status: Text = None,
        cursor: Text = None,
    ) -> Response[Any]:
        task_id, item_id, task_type, status = map(
            _blank_to_none, (task_id, item_id, task_type, status)
        )
        query: dict[str, Any] = {
            "item_id": item_id,
            "task_type": task_type,
            "status": status,
            "task_id": task_id,
        }
        try:
            if task_id is not None:
                return Redirect(f"/ui/tasks/{UUID(task_id)}")
            filters = TaskFilters(
                task_type=task_type,
                status=TaskStatus(status) if status else None,
                item_id=item_id,
            )
            page = await operations.list_tasks(filters, limit=PAGE_SIZE, cursor=cursor)
        except ValueError:
            error = "task_id is not a UUID" if task_id else f"unknown status {status!r}"
            return render(request, "tasks.html", status_code=400, page=None, error=error, **query)
        except InvalidFieldError as error:
            return render(
                request, "tasks.html", status_code=400, page=None, error=error.message, **query
            )
        return render(request, "tasks.html", page=page, error=None, **query)

    @get("/tasks/{task_id:uuid}")
    async def task(
        self, request: AnyRequest, task_id: FromPath[UUID], repository: Repository
    ) -> Any:
        return render(request, "task.html", task=await repository.task_status(task_id))

    @get("/dlq")
    async def dlq(
        self,
        request: AnyRequest,
        *,
        dead_letters: DeadLetters,
        task_type: Text = None,
        task_id: Text = None,
        cursor: Text = None,
        done: Text = None,
    ) -> Response[str]:
        task_type, task_id = _blank_to_none(task_type), _blank_to_none(task_id)
        try:
            selection = DlqSelection(
                task_type=task_type, task_id=UUID(task_id) if task_id else None
            )
        except ValueError:
            raise InvalidFieldError("task_id", "task_id is not a UUID") from None
        page = await dead_letters.page(selection, limit=PAGE_SIZE, cursor=cursor)
        return render(
            request, "dlq.html", page=page, task_type=task_type, task_id=task_id, done=done
        )

    @get("/login", opt={LOGIN_OPT: True})
    async def login_form(self, request: AnyRequest) -> Response[str]:
        return render(request, "login.html", error=None)

    @post("/login", opt={LOGIN_OPT: True}, status_code=303)
    async def login(self, request: AnyRequest, api_keys: ApiKeys) -> Response[Any]:
        form = await checked_form(request)
        presented = (form.get("api_key") or [""])[0].strip()
        if not key_is_valid(presented, api_keys):
            return render(request, "login.html", status_code=401, error="This key is not valid.")
        response: Response[Any] = Redirect("/ui/", status_code=303)
        response.set_cookie(cookie(request, KEY_COOKIE, presented, max_age=KEY_LIFETIME))
        return response

    @post("/logout", opt={LOGIN_OPT: True}, status_code=303)
    async def logout(self, request: AnyRequest) -> Response[Any]:
        await checked_form(request)
        response: Response[Any] = Redirect("/ui/login", status_code=303)
        response.delete_cookie(KEY_COOKIE, path="/ui")
        return response


async def _overview(operations: Operations, console: Console) -> dict[str, Any]:
    figures = await operations.task_types()
    outcomes = await console.outcomes(CHART_MINUTES)
    return {"rows": overview_rows(figures, outcomes), "minutes": CHART_MINUTES}
