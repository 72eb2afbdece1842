"""The one place where the integration's own errors become Home Assistant's.

Actions, entities and repair flows call the parts through :func:`ha_errors` (a context manager)
or :func:`translated` (a decorator for entity methods), so every refusal reaches the user
translated, and nothing below this edge imports Home Assistant's exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
import contextlib
import functools
from typing import Any

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .const import DOMAIN
from .errors import InvalidRequestError, PetnetError


def as_ha_error(err: PetnetError) -> HomeAssistantError:
    """Home Assistant's exception for one of ours, with its translation key."""
    kind = (
        ServiceValidationError
        if isinstance(err, InvalidRequestError)
        else HomeAssistantError
    )
    return kind(
        translation_domain=DOMAIN,
        translation_key=err.translation_key,
        translation_placeholders=err.placeholders,
    )


@contextlib.contextmanager
def ha_errors() -> Iterator[None]:
    """Re-raise the integration's errors as Home Assistant's, chained to the original."""
    try:
        yield
    except PetnetError as err:
        raise as_ha_error(err) from err


def translated[**P, R](
    method: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Decorate an async entity method so that it raises Home Assistant's errors."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with ha_errors():
            return await method(*args, **kwargs)

    return wrapper
