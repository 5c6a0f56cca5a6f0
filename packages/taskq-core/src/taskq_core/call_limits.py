"""How long one outbound call may take: one rule for the delivery, the executors and the fetcher.

A call waits up to its timeout for the answer (connect, then each read), and
then up to the same again for the body: so at most twice its timeout. A
message must stay hidden in its queue at least that long, or it would be shown
to another worker while its call is still running.
"""

from __future__ import annotations

from taskq_core.models import DeliveryDefaults, QueuedCall


def call_timeout(
    call: QueuedCall | None, default: float, type_defaults: DeliveryDefaults | None = None
) -> float:
    """Seconds the call may wait: the batch's timeout, else its type's, else TIMEOUT (`default`)."""
    if call is not None and call.timeout_ms is not None:
        return call.timeout_ms / 1000.0
    if type_defaults is not None and type_defaults.timeout_ms is not None:
        return type_defaults.timeout_ms / 1000.0
    return default


def longest_call(timeout: float) -> float:
    """The longest a call with `timeout` can last: the answer, then the body budget."""
    return 2 * timeout
