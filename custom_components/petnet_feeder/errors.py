"""What the integration refuses or cannot do, in its own terms (no Home Assistant import).

The parts raise these; ``translate.py`` turns them into Home Assistant's exceptions, with the
translation key each one carries, at the edge where an action or an entity was called.
"""

from __future__ import annotations


class PetnetError(Exception):
    """A failure with a translation key and its placeholders."""

    translation_key = "unknown_error"

    def __init__(
        self, translation_key: str | None = None, **placeholders: object
    ) -> None:
        """Keep the key (or the class's) and the placeholders as strings."""
        if translation_key is not None:
            self.translation_key = translation_key
        self.placeholders = {key: str(value) for key, value in placeholders.items()}
        super().__init__(self.translation_key, self.placeholders)


class InvalidRequestError(PetnetError):
    """The caller asked for something that cannot be (bad value, unknown feeder or meal)."""


class FeederUnreachableError(PetnetError):
    """The feeder could not be reached, or did not take the command."""

    translation_key = "feeder_offline"


class FeedFailedError(PetnetError):
    """The feeder reported that a dispense failed."""

    translation_key = "feed_failed"


def invalid(translation_key: str, **placeholders: object) -> InvalidRequestError:
    """The error for a refused value, ready to raise."""
    return InvalidRequestError(translation_key, **placeholders)
